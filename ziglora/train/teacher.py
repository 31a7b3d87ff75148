"""The teacher pass: what the frozen base model says, computed once per (model, training set) and cached beside the
training set (<release>/teacher/<key>/), so a rerun, a resumed run or a run with other training settings reuses it.

It holds three things, each only when the run needs it:
- the base model's greedy answers to the general prompts (trained as source `general`: what it said before);
- with --distill-answers teacher, the base model's greedy answers to the fact questions with the fact's section in
  its prompt (sequence-level distillation);
- the teacher's top-k log-probabilities on every distilled answer token: the fact answers seen with the section
  (context distillation), the general answers seen as they were asked (self-distillation, for retain).
The key is the sha256 of everything the outputs depend on: the model (its config and weight files), the tokenizer's
chat template, the settings of the pass, and every question, answer and section it reads.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ziglora.common.io import usual_permissions, write_json
from ziglora.common.progress import Progress
from ziglora.evaluate.questions import with_docs
from ziglora.serve.contract import THINKING_OFF
from ziglora.train.distill import captured_output, final_norm, unsloth_hidden_states
from ziglora.train.examples import IGNORE, NO_TEACHER, chat_example, general_key
from ziglora.train.generate import generate, generating, rank_slices
from ziglora.train.memory import GenerationPlanner
from ziglora.train.report import log

CACHE_FORMAT = 1  # bumped when what the cache holds or how it is computed changes
TOPK_ROWS_AT_ONCE = 1024  # answer positions projected to the vocabulary at once


@dataclass(frozen=True)
class DistillItem:
    """One answer the teacher scores: the student sees `question`; the teacher sees it after `context` (None: the
    same question alone, as for the general answers)."""

    key: str
    question: str
    answer: str
    context: str | None = None


@dataclass
class TeacherTable:
    """Top-k ids [rows, k] (int32) and log-probabilities [rows, k] (fp16) of every distilled answer token, and where
    each item's rows start and how many answer tokens it has."""

    ids: torch.Tensor
    logprobs: torch.Tensor
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def rows_for(self, key: str, labels: list[int]) -> list[int] | None:
        """The teacher_row column of a training sequence: the table row of each answer token, NO_TEACHER elsewhere;
        None when the teacher did not score it (or scored another number of answer tokens)."""
        span = self.spans.get(key)
        answer = [i for i, label in enumerate(labels) if label != IGNORE]
        if span is None or span[1] != len(answer):
            return None
        rows = [NO_TEACHER] * len(labels)
        for j, position in enumerate(answer):
            rows[position] = span[0] + j
        return rows

    @property
    def nbytes(self) -> int:
        return self.ids.numel() * self.ids.element_size() + self.logprobs.numel() * self.logprobs.element_size()


def teacher_messages(item: DistillItem, version: str) -> list[dict]:
    user = item.question if item.context is None else with_docs(item.question, version, item.context)
    return [{"role": "user", "content": user}, {"role": "assistant", "content": item.answer}]


def _hidden_states(model, input_ids: torch.Tensor, unsloth: bool) -> torch.Tensor:
    """The final (normed) hidden states of a causal forward, no gradients. Rows are right-padded, and causal
    attention never looks ahead, so a pad changes no real position's state and no mask is needed."""
    if unsloth:
        with unsloth_hidden_states():
            return model(input_ids=input_ids).logits
    with captured_output(final_norm(model)) as seen:
        model(input_ids=input_ids, logits_to_keep=1)
    return seen[-1]


def score_items(model, tokenizer, items: list[DistillItem], version: str, k: int, batch_tokens: int,
                unsloth: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(top-k ids, top-k log-probs) of the teacher for each item's answer tokens, in item order."""
    rendered = []
    for item in items:
        ids, labels = chat_example(teacher_messages(item, version), tokenizer, THINKING_OFF)
        rendered.append((ids, [i - 1 for i, label in enumerate(labels) if label != IGNORE]))
    order = sorted(range(len(items)), key=lambda i: -len(rendered[i][0]))
    device = next(p.device for p in model.parameters())
    weight = model.get_output_embeddings().weight
    out: list = [None] * len(items)
    with Progress("teacher pass", total=len(items), unit="answers") as progress, torch.no_grad():
        start = 0
        while start < len(order):
            width = len(rendered[order[start]][0])
            batch = order[start:start + max(1, batch_tokens // width)]
            start += len(batch)
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :len(rendered[i][0])] = torch.tensor(rendered[i][0])
            hidden = _hidden_states(model, input_ids.to(device), unsloth)
            states = torch.cat([hidden[row, rendered[i][1]] for row, i in enumerate(batch)])
            top_ids, top_lp = [], []
            for j in range(0, len(states), TOPK_ROWS_AT_ONCE):
                logits = states[j:j + TOPK_ROWS_AT_ONCE].to(weight.dtype) @ weight.T
                lp, ids = F.log_softmax(logits.float(), dim=-1).topk(k, dim=-1)
                top_ids.append(ids.to(torch.int32).cpu())
                top_lp.append(lp.to(torch.float16).cpu())
            top_ids, top_lp = torch.cat(top_ids), torch.cat(top_lp)
            offset = 0
            for i in batch:
                n = len(rendered[i][1])
                out[i] = (top_ids[offset:offset + n], top_lp[offset:offset + n])
                offset += n
            progress.update(len(batch))
    return out


def build_table(items: list[DistillItem], scored: list[tuple[torch.Tensor, torch.Tensor]]) -> TeacherTable:
    spans, first = {}, 0
    for item, (ids, _) in zip(items, scored, strict=True):
        spans[item.key] = (first, len(ids))
        first += len(ids)
    return TeacherTable(torch.cat([ids for ids, _ in scored]), torch.cat([lp for _, lp in scored]), spans)


def model_identity(model_path: str) -> dict:
    """What names the base model's weights without reading them all: where they are, the config, and each weight
    file's name, size and modification time (a copy or a new download is a new teacher); a hub id: the id."""
    root = Path(model_path)
    if not (root / "config.json").is_file():
        return {"model": model_path}
    files = sorted(p for p in root.iterdir() if p.suffix in (".safetensors", ".bin"))
    return {"path": str(root.resolve()), "config": hashlib.sha256((root / "config.json").read_bytes()).hexdigest(),
            "weights": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}


def cache_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_cached(directory: Path) -> tuple[dict, TeacherTable | None] | None:
    """(the pass's json, its table or None) from a complete cache directory, else None."""
    meta_path = directory / "teacher.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    table = None
    if meta.get("spans") is not None:
        from safetensors.torch import load_file

        arrays = load_file(directory / "topk.safetensors")
        table = TeacherTable(arrays["ids"], arrays["logprobs"], {k: tuple(v) for k, v in meta["spans"].items()})
    return meta, table


def save_cached(directory: Path, meta: dict, table: TeacherTable | None) -> None:
    """Written next to its place and renamed into it: a killed pass never leaves a half cache."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        if table is not None:
            from safetensors.torch import save_file

            save_file({"ids": table.ids.contiguous(), "logprobs": table.logprobs.contiguous()},
                      str(work / "topk.safetensors"))
            meta = {**meta, "spans": table.spans}
        write_json(work / "teacher.json", meta)
        usual_permissions(work)
        shutil.rmtree(directory, ignore_errors=True)
        try:
            os.replace(work, directory)
        except OSError:
            if not (directory / "teacher.json").is_file():
                raise
            shutil.rmtree(work)  # a run beside this one wrote the same pass first: same key, same content
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@dataclass
class TeacherPlan:
    """What one run asks of the teacher: the general prompts it answers, the fact items it scores (with the
    reference answers; replaced by its own under sequence-level distillation), and how."""

    general_prompts: list[str]
    general_tokens: int
    facts: list[DistillItem]
    distill_general: bool
    teacher_answers: bool
    answer_tokens: int
    top_k: int
    batch_tokens: int

    def inputs(self, version: str, model_path: str, tokenizer) -> dict:
        return {"format": CACHE_FORMAT, "version": version, "model": model_identity(model_path),
                "chat_template": tokenizer.chat_template, "vocab": len(tokenizer),
                "general": [self.general_prompts, self.general_tokens, self.distill_general],
                "facts": [[i.key, i.question, i.answer, hashlib.sha256((i.context or "").encode()).hexdigest()]
                          for i in self.facts],
                "teacher_answers": [self.teacher_answers, self.answer_tokens], "top_k": self.top_k}


@dataclass
class TeacherOutput:
    general: list[dict]  # {prompt, completion}: the base model's own answers that finished
    fact_answers: dict[str, str]  # record id -> the teacher's answer (sequence-level distillation only)
    table: TeacherTable | None  # None: nothing is distilled
    info: dict  # the report's `teacher`: sizes, seconds, cache directory, whether it was reused


def answer(model, tokenizer, prompts: list[str], max_new_tokens: int, modes, planner: GenerationPlanner | None,
           purpose: str) -> list[tuple[str, bool]]:
    """Greedy answers of the base model (adapter off) shared over the data-parallel ranks."""
    with generating(model, modes), _adapter_off(model):
        return rank_slices(lambda mine: generate(model, tokenizer, mine, max_new_tokens, planner, purpose), prompts)


@contextmanager
def _evaluating(model):
    """The training forward without dropout or gradients: what scoring needs (no generation mode, no cache)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _adapter_off(model):
    """The base model's own weights for the block (LoRA is zero before training anyway; this says so)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()


def run_teacher(plan: TeacherPlan, model, tokenizer, version: str, model_path: str, cache_root: Path, modes,
                unsloth: bool, planner: GenerationPlanner | None = None) -> TeacherOutput:
    """The teacher pass of `plan`, from its cache when an earlier run made it with the same inputs; a plan with
    nothing to answer or score (no general prompts, nothing distilled) runs nothing and caches nothing."""
    if not plan.general_prompts and not plan.facts:
        return TeacherOutput([], {}, None, {"items": 0, "rows": 0, "general_cut": 0, "reused": False})
    key = cache_key(plan.inputs(version, model_path, tokenizer))
    directory = cache_root / key[:16]
    cached = load_cached(directory)
    if cached is not None:
        meta, table = cached
        log(f"teacher pass: reused {directory} ({meta['info']['items']} answers scored, "
            f"{meta['info']['rows']} rows)")
        return TeacherOutput(meta["general"], meta["fact_answers"], table, {**meta["info"], "reused": True})
    t0 = time.perf_counter()
    said = (answer(model, tokenizer, plan.general_prompts, plan.general_tokens, modes, planner, "general_answers")
            if plan.general_prompts else [])
    general = [{"prompt": p, "completion": text.strip()}
               for p, (text, done) in zip(plan.general_prompts, said, strict=True) if done and text.strip()]
    general_cut = sum(1 for _, done in said if not done)
    facts, fact_answers = plan.facts, {}
    if plan.teacher_answers and facts:
        said = answer(model, tokenizer, [with_docs(i.question, version, i.context) for i in facts],
                      plan.answer_tokens, modes, planner, "teacher_answers")
        fact_answers = {i.key: text.strip() for i, (text, done) in zip(facts, said, strict=True)
                        if done and text.strip()}
        facts = [DistillItem(i.key, i.question, fact_answers.get(i.key, i.answer), i.context) for i in facts]
    items = facts + ([DistillItem(general_key(g["prompt"]), g["prompt"], g["completion"]) for g in general]
                     if plan.distill_general else [])
    table = None
    if items:
        with _evaluating(model), _adapter_off(model):
            scored = rank_slices(lambda mine: score_items(model, tokenizer, mine, version, plan.top_k,
                                                          plan.batch_tokens, unsloth), items)
        table = build_table(items, scored)
        if planner is not None and planner.meter is not None:
            planner.meter.close("teacher_topk")
    info = {"items": len(items), "rows": 0 if table is None else len(table.ids), "top_k": plan.top_k,
            "bytes": 0 if table is None else table.nbytes, "general_prompts": len(plan.general_prompts),
            "general_kept": len(general), "general_cut": general_cut, "teacher_answers": len(fact_answers),
            "seconds": round(time.perf_counter() - t0, 1), "directory": str(directory)}
    if int(os.environ.get("RANK", "0")) == 0:
        save_cached(directory, {"info": info, "general": general, "fact_answers": fact_answers}, table)
    log(f"teacher pass: {info['items']} answers scored ({info['rows']} answer tokens, top {plan.top_k}, "
        f"{info['bytes'] / 2**20:.1f} MiB), {len(general)} general answers, {len(fact_answers)} teacher answers "
        f"[{info['seconds']}s] -> {directory}")
    return TeacherOutput(general, fact_answers, table, {**info, "reused": False})
