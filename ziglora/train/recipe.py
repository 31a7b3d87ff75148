"""The training recipe behind train_lora.py, step by step: release files -> model -> training set -> trainer ->
train (with the facts probe) -> report + save.

The libraries do the work: Unsloth (4-bit on CUDA) or transformers + PEFT load the model and add LoRA
(ziglora/train/model.py), TRL packs the pre-tokenized sequences and transformers' Trainer trains
(ziglora/train/trainer.py); ziglora/train/examples.py decides what the tokens and labels are, ziglora/train/probe.py
asks the facts. Import this only after ziglora.train.backend.prepare() (Unsloth must be imported before
transformers): ziglora/train/run.py does both.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import Trainer, TrainerCallback

from ziglora.train.backend import Backend
from ziglora.train.callbacks import MemoryPhases, ProgressLine, StopOnSignal, Throughput
from ziglora.train.memory import RunMemory
from ziglora.train.mix import format_table
from ziglora.train.model import inference_modes, load_model
from ziglora.train.probe import FactsProbe
from ziglora.train.report import log, save_adapter
from ziglora.train.settings import Settings
from ziglora.train.teacher import TeacherTable, run_teacher
from ziglora.train.trainer import Fit, build_trainer, fit, packing_stats
from ziglora.train.trainset import (
    ProbeQuestions,
    Release,
    TrainingSet,
    general_prompts,
    load_training_set,
    probe_questions,
    read_release,
    teacher_plan,
    trained_questions,
)


@dataclass(frozen=True)
class Meters:
    """The callbacks whose findings the report records."""

    throughput: Throughput
    stopper: StopOnSignal
    probe: FactsProbe | None
    dev_file: str | None
    gpu: RunMemory

    def callbacks(self) -> list[TrainerCallback]:
        phases = [MemoryPhases(self.gpu.meter)] if self.gpu.meter else []
        return [self.throughput, ProgressLine(), self.stopper, *phases, *([self.probe] if self.probe else [])]


def train(s: Settings, be: Backend, recipe: Path | None = None, extra_callbacks: Sequence[TrainerCallback] = ()
          ) -> dict:
    """The whole run on resolved settings; returns the report (also written to <output>/train_report.json by the
    main process)."""
    release = read_release(s)  # first: bad data fails before the model loads
    questions = probe_questions(s, release)
    model, tokenizer, gpu, load_s = setup_model(s, be)
    data, teacher = setup_data(s, be, model, tokenizer, release, gpu)
    meters = setup_meters(s, be, tokenizer, release, questions, gpu)
    trainer = setup_trainer(s, be, model, tokenizer, data, teacher, [*meters.callbacks(), *extra_callbacks])
    result = fit(trainer, s, be)
    report = training_report(s, be, recipe, trainer, data.info, result, meters, load_s)
    if trainer.is_world_process_zero():
        save_adapter(s, trainer.model, tokenizer, report)
    return report


def setup_model(s: Settings, be: Backend) -> tuple:
    """(model with LoRA, tokenizer, its GPU memory plan, seconds it took to load)."""
    t0 = time.perf_counter()
    model, tokenizer, gpu = load_model(s, be)
    load_s = time.perf_counter() - t0
    log(f"model {be.model_path} ({be.params / 1e9:.2f}B parameters) via {be.name}, loaded in {load_s:.1f}s; "
        f"lr {s.learning_rate:g}, at most {s.max_epochs:g} epochs, {s.max_seq_len} x {s.batch_size} x {s.grad_accum}")
    return model, tokenizer, gpu, load_s


def setup_data(s: Settings, be: Backend, model, tokenizer, release: Release, gpu: RunMemory
               ) -> tuple[TrainingSet, TeacherTable | None]:
    """The training set: the release's sequences and what the teacher pass gives (the base model's own answers to
    the general prompts and, when distilling, its top-k on the distilled answers), computed before the first step
    or reused from the release's teacher cache."""
    plan = teacher_plan(s, release, be.cuda)
    teacher = run_teacher(plan, model, tokenizer, release.version, be.model_path, Path(s.data) / "teacher",
                          inference_modes(be), be.unsloth, gpu.planner)
    data = load_training_set(s, tokenizer, release, teacher)
    data.info["teacher"] = teacher.info
    data.info["general"] = {"file": general_prompts(s)[1], "prompts": len(plan.general_prompts),
                            "answers_kept": len(teacher.general), "answers_cut": teacher.info["general_cut"]}
    return data, teacher.table


def setup_meters(s: Settings, be: Backend, tokenizer, release: Release, questions: ProbeQuestions,
                 gpu: RunMemory) -> Meters:
    """Throughput, the stop on a signal, the memory phases on a GPU, and the facts probe when there are dev
    questions."""
    probe = None
    if questions.dev:
        probe = FactsProbe(questions.dev, questions.retain, tokenizer, release.version,
                           every_steps=s.facts_eval_steps, target=s.until_facts, patience=s.facts_patience,
                           max_new_tokens=s.facts_eval_tokens, modes=inference_modes(be),
                           trained=trained_questions(s, release, tokenizer), planner=gpu.planner)
    return Meters(Throughput(s.warmup_steps_excluded, tokenizer.pad_token_id), StopOnSignal(), probe,
                  questions.dev_file, gpu)


def setup_trainer(s: Settings, be: Backend, model, tokenizer, data: TrainingSet, teacher: TeacherTable | None,
                  callbacks: Sequence[TrainerCallback]) -> Trainer:
    """The Trainer, and the token table of what it trains on, logged."""
    trainer = build_trainer(s, be, model, tokenizer, data, teacher, callbacks)
    data.info.update(packing_stats(trainer, s, data.info["train_tokens"]))
    log(format_table(data.info["token_table"], data.info["padding_share"]))
    for source, dropped in data.info["dropped"].items():
        log(f"left out of {source}: {dropped['failed_validation']} records that failed compile validation, "
            f"{dropped['too_long']} chat records longer than --max-seq-len {s.max_seq_len}")
    return trainer


def training_report(s: Settings, be: Backend, recipe: Path | None, trainer: Trainer, data_info: dict,
                    result: Fit, meters: Meters, load_s: float) -> dict:
    """What the run did and found, as train_report.json records it."""
    state = trainer.state
    report = {
        "settings": asdict(s), "recipe": str(recipe) if recipe else None, "model_path": be.model_path,
        "model_params": be.params, "backend": be.name,
        "unsloth": "used" if be.unsloth else f"not used ({be.note})",
        "world_size": trainer.args.world_size, "data": data_info,
        "steps": state.global_step, "max_steps": state.max_steps, "epochs": round(state.epoch or 0.0, 3),
        "resumed_from": result.resumed_from, "train_loss": result.train_loss, "eval_loss": result.eval_loss,
        "loss_log": [{k: v for k, v in e.items() if k in ("step", "loss", "eval_loss", "learning_rate")}
                     for e in state.log_history if "loss" in e or "eval_loss" in e],
        "load_s": round(load_s, 1), "train_s": round(result.seconds, 1),
        **meters.throughput.result(trainer.args.world_size),
    }
    if meters.stopper.reason:
        report["interrupted"] = f"{meters.stopper.reason} at step {state.global_step}"
    if meters.probe is not None:
        probe = meters.probe
        probe.stop_reason = report.get("interrupted") or probe.stop_reason
        report["facts"] = {"dev_file": meters.dev_file, **probe.report(),
                           "share_of_train_time": round(probe.seconds / result.seconds, 4) if result.seconds else None}
    report.update(meters.gpu.report())  # on a GPU: the whole run's peaks, and each phase's
    return report
