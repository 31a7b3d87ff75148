"""While training: does the model know the release's facts yet, and does it still know what it knew?

A TrainerCallback that, before the first step and then every epoch (or every N steps), answers the dev questions
(facts of the release asked in a user's own words, never trained on) and the retain questions (general knowledge
and unchanged Zig) greedily, with the same prompt and pass rule as evaluate.py (ziglora/evaluate/questions.py). It
keeps a copy of the LoRA weights of the best evaluation and puts them back at the end, so the adapter saved is the best
one, and it stops training once dev accuracy reaches the target or has not improved for `patience` evaluations of a
model that has memorized what it trains on (while it has not, a better dev score can still come).

Why this exists: loss says how well the model reproduces the training text, not whether it can answer a question
about a fact in other words (docs/RESULTS.md). Knowledge injection needs many passes (Allen-Zhu & Li, Physics of
LMs 3.1), and passes beyond what is needed cost time and raise hallucination (Gekhman et al., 2024): so train until
the facts are known, then stop.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import TrainerCallback

from ziglora.evaluate.questions import FactTask, fact_passes, fact_prompt, passes_on_provenance_alone
from ziglora.train.generate import generating, greedy_answers, rank_slices
from ziglora.train.memory import GenerationPlanner


@dataclass
class Evaluation:
    step: int
    epoch: float
    dev_passed: int
    retain_kept: int  # of the retain questions the model answered before training
    trained_passed: int  # trained cloze questions whose value the answer names: memorized
    seconds: float
    dev_on_provenance: int = 0  # dev answers that failed but whose provenance line alone names the accepted words

    def key(self) -> tuple[int, int]:
        """Better = more dev facts; between equals, more of the old knowledge kept."""
        return self.dev_passed, self.retain_kept

    def memorized(self, trained_total: int) -> bool:
        """At least half the trained questions asked back are answered (True when none are asked: nothing to
        wait for)."""
        return 2 * self.trained_passed >= trained_total


class FactsProbe(TrainerCallback):
    def __init__(self, dev: list[FactTask], retain: list[FactTask], tokenizer, zig_version: str, *,
                 every_steps: int, target: float, patience: int, max_new_tokens: int,
                 modes: tuple[Callable, Callable], trained: list[FactTask] = (),
                 planner: GenerationPlanner | None = None):
        """`modes`: (to inference, back to training), each called with the model (model.inference_modes).
        `planner`: sizes the batches from the GPU memory the run has (ziglora/train/memory.py; None: fixed batches).
        `trained`: questions the run trains on, asked as they were trained: are the facts memorized at all? (A dev
        question fails either because the fact is not memorized or because it does not carry over to the user's
        words.)"""
        self.dev, self.retain, self.tokenizer, self.version = dev, retain, tokenizer, zig_version
        self.trained = list(trained)
        self.every_steps, self.target, self.patience = every_steps, target, patience
        self.max_new_tokens = max_new_tokens
        self.modes, self.planner = modes, planner
        self.base_retain: list[bool] = []  # which retain questions the model answered before training
        self.before: Evaluation | None = None
        self.history: list[Evaluation] = []
        self.best: Evaluation | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stop_reason = ""
        self.seconds = 0.0

    # ------------------------------------------------------------------ asking

    def _passes(self, model, tasks: list[FactTask]) -> list[tuple[bool, bool]]:
        """(passed, failed but its provenance line alone matches) per task, all asked in one batch. Under data
        parallel each rank asks its slice and the results are gathered."""
        def judge(mine: list[FactTask]) -> list[tuple[bool, bool]]:
            said = greedy_answers(model, self.tokenizer, [fact_prompt(t, self.version) for t in mine],
                                  self.max_new_tokens, self.planner, "facts_probe")
            return [(fact_passes(t, a), passes_on_provenance_alone(t, a)) for t, a in zip(mine, said, strict=True)]

        return rank_slices(judge, tasks)

    def _ask(self, model, state) -> Evaluation:
        t0 = time.perf_counter()
        # after the first evaluation only the retain questions the model answered then: one it could not answer
        # cannot be kept, and a smaller batch is quicker
        retain = [t for t, known in zip(self.retain, self.base_retain, strict=True) if known] \
            if self.base_retain else self.retain
        with generating(model, self.modes):
            judged = self._passes(model, self.dev + self.trained + retain)
        passed = [ok for ok, _ in judged]
        dev, trained = passed[:len(self.dev)], passed[len(self.dev):len(self.dev) + len(self.trained)]
        on_provenance = sum(carried for _, carried in judged[:len(self.dev)])
        retain_passed = passed[len(self.dev) + len(self.trained):]
        if not self.base_retain:
            self.base_retain = retain_passed
        kept = sum(retain_passed)  # the first time: what it knows before training, all kept by definition
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        return Evaluation(state.global_step, round(state.epoch or 0.0, 3), sum(dev), kept, sum(trained),
                          round(seconds, 2), on_provenance)

    def line(self, e: Evaluation) -> str:
        known = sum(self.base_retain)
        trained = f", trained facts {e.trained_passed}/{len(self.trained)}" if self.trained else ""
        carried = f" (+{e.dev_on_provenance} on the provenance line alone)" if e.dev_on_provenance else ""
        return (f"facts probe at step {e.step} (epoch {e.epoch:g}): dev {e.dev_passed}/{len(self.dev)} "
                f"({e.dev_passed / max(1, len(self.dev)):.0%}){carried}{trained}, retain kept {e.retain_kept}/{known} "
                f"[{e.seconds:.1f}s]")

    # ------------------------------------------------------------------ Trainer events

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.before is None:
            self.before = self._ask(model, state)
            self._log(state, self.before)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._evaluate(model, state, control)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if not self.every_steps and (not self.history or self.history[-1].step != state.global_step):
            self._evaluate(model, state, control)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.stop_reason:
            self.stop_reason = "reached the end of training (--max-epochs / --max-steps)"
        if self.best_state is not None and self.history and self.best is not self.history[-1]:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in self.best_state:
                        p.copy_(self.best_state[name].to(p.device))

    def _log(self, state, e: Evaluation) -> None:
        if state.is_world_process_zero:
            print(self.line(e), flush=True)

    def _evaluate(self, model, state, control) -> None:
        e = self._ask(model, state)
        self.history.append(e)
        self._log(state, e)
        if self.best is None or e.key() > self.best.key():
            self.best = e
            self.best_state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
                               if p.requires_grad}
        if not self.target:
            return
        # patience counts only evaluations of a model that has memorized its facts: before that, a noisy early dev
        # score would stop a run that is still learning (docs/RESULTS.md)
        stale = sum(h.memorized(len(self.trained)) for h in self.history[self.history.index(self.best) + 1:])
        if e.dev_passed >= self.target * len(self.dev):
            self.stop_reason = f"dev accuracy reached --until-facts {self.target:g} at step {e.step}"
        elif stale >= self.patience:
            self.stop_reason = (f"dev accuracy did not improve for {self.patience} evaluations"
                                + (" with the trained facts memorized" if self.trained else ""))
        if self.stop_reason:  # only ever set: another callback (a signal, --max-steps) may have asked to stop too
            control.should_training_stop = True

    # ------------------------------------------------------------------ report

    def report(self) -> dict:
        def row(e: Evaluation) -> dict:
            return {"step": e.step, "epoch": e.epoch, "dev_passed": e.dev_passed, "dev_total": len(self.dev),
                    "dev_accuracy": round(e.dev_passed / max(1, len(self.dev)), 4), "retain_kept": e.retain_kept,
                    "trained_passed": e.trained_passed, "dev_on_provenance_alone": e.dev_on_provenance,
                    "seconds": e.seconds}

        known = sum(self.base_retain)
        out = {"dev_questions": len(self.dev), "trained_questions": len(self.trained),
               "retain_questions": len(self.retain), "retain_known_before": known,
               "before": row(self.before) if self.before else None, "history": [row(e) for e in self.history],
               "best": row(self.best) if self.best else None, "stop_reason": self.stop_reason,
               "seconds": round(self.seconds, 1)}
        out["verdict"] = verdict(self.before, self.best, len(self.dev), known, len(self.trained))
        return out


def verdict(before: Evaluation | None, best: Evaluation | None, dev_total: int, retain_known: int,
            trained_total: int = 0) -> str:
    """One line a user reads at the end of training: did it learn the facts, and did it keep what it knew? With
    trained questions, whether it memorized what it trained on, which says where a weak dev score comes from."""
    if before is None or best is None or not dev_total:
        return "not measured: no dev questions were asked"
    gained = best.dev_passed - before.dev_passed
    learned = "LEARNED" if gained >= max(2, 0.1 * dev_total) else "DID NOT LEARN"
    kept = f"retain kept {best.retain_kept}/{retain_known}" if retain_known else "no retain questions"
    memorized = ""
    if trained_total:
        memorized = f"; trained facts recalled {best.trained_passed}/{trained_total}"
        if not best.memorized(trained_total):
            memorized += " (under half of what it trained on: not yet memorized)"
    return (f"{learned}: dev facts {best.dev_passed}/{dev_total} ({best.dev_passed / dev_total:.0%}) after "
            f"training vs {before.dev_passed}/{dev_total} before (best at step {best.step}); {kept}{memorized}")
