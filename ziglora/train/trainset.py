"""What a run trains on and asks: the release's files, the base model's own general answers, the tokenized and mixed
training set, and the questions the facts probe asks (dev, retain and trained facts)."""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from datasets import Dataset

from ziglora.common.io import read_jsonl
from ziglora.data.manifest import DataError, load_manifest, outputs_of_kind
from ziglora.evaluate.questions import FactTask, load_facts
from ziglora.serve.contract import THINKING_OFF
from ziglora.train import examples as ds
from ziglora.train.backend import TrainingError
from ziglora.train.generate import generate, generating, rank_slices
from ziglora.train.memory import GenerationPlanner
from ziglora.train.mix import mix, split_eval, token_table
from ziglora.train.report import log
from ziglora.train.settings import REPO, Settings

# The base model's general answers stop at this many tokens and a cut one is left out: an answer that stops
# mid-sentence would teach stopping there. Most answers finish well within it (docs/RESULTS.md).
GENERAL_TOKENS = 384
# Trained cloze questions the facts probe asks back: with the dev and retain questions they fit one generation batch.
TRAINED_PROBE = 64


class Release(NamedTuple):
    """A release directory as a run reads it, once, before the model loads (so bad data fails fast)."""

    manifest: dict  # verified: every output's sha256 checked
    prompts: list[dict]  # the hand-written prompt records
    prompts_file: str | None

    @property
    def version(self) -> str:
        return self.manifest["zig_version"]


class TrainingSet(NamedTuple):
    train: Dataset  # pre-tokenized sequences with labels, before packing
    eval: Dataset | None  # held out for the eval loss
    info: dict  # the data part of the report: token table, what was dropped, ...


class ProbeQuestions(NamedTuple):
    dev: list[FactTask]
    retain: list[FactTask]
    dev_file: str | None


def read_release(s: Settings) -> Release:
    try:
        manifest = load_manifest(Path(s.data))
    except DataError as e:
        raise TrainingError(f"training data: {e}") from None
    prompts_path = s.prompts or str(REPO / "prompts" / f"zig-{manifest['zig_version']}.jsonl")
    if prompts_path == "none":
        return Release(manifest, [], None)
    if not Path(prompts_path).is_file():
        raise TrainingError(f"prompts file {prompts_path} not found: pass --prompts FILE, or --prompts none")
    return Release(manifest, list(read_jsonl(Path(prompts_path))), prompts_path)


def general_prompts(s: Settings) -> tuple[list[str], str | None]:
    """(prompts, file) the base model answers for the `general` source; none with --general-prompts none or when
    --sources leaves the source out (the answers would cost time for nothing)."""
    if s.general_prompts == "none" or not s.trains_on("general"):
        return [], None
    path = REPO / "prompts" / "general.jsonl" if s.general_prompts == "auto" else Path(s.general_prompts)
    if not path.is_file():
        raise TrainingError(f"--general-prompts {path}: no such file (`none` trains without general answers)")
    return [r["prompt"] for r in read_jsonl(path)], str(path)


def general_answers(model, tokenizer, prompts: list[str], modes: tuple[Callable, Callable],
                    planner: GenerationPlanner | None = None) -> tuple[list[dict], dict]:
    """The base model's own greedy answers to `prompts`, as {prompt, completion} records: trained beside the
    release, they pull the adapter back towards what the model said before on everything that is not Zig
    (self-distillation, Yang et al. 2024, "Self-Distillation Bridges Distribution Gap in Language Model
    Fine-Tuning"). Asked before the first step, while the LoRA weights are still zero: the base model's answers.
    Under data parallel each rank answers its slice and every rank gets all answers (the same training set)."""
    t0 = time.perf_counter()
    with generating(model, modes):
        said = rank_slices(lambda mine: generate(model, tokenizer, mine, GENERAL_TOKENS, planner, "general_answers"),
                           prompts)
    records = [{"prompt": p, "completion": text.strip()} for p, (text, finished) in zip(prompts, said, strict=True)
               if finished and text.strip()]
    return records, {"prompts": len(prompts), "answers_kept": len(records),
                     "answers_cut": sum(1 for _, finished in said if not finished),
                     "seconds": round(time.perf_counter() - t0, 1)}


def load_training_set(s: Settings, tokenizer, release: Release, general: Sequence[dict] = ()) -> TrainingSet:
    """Train and eval datasets of pre-tokenized sequences, plus the data part of the report, in one pass:
    release (+ the base model's general answers) -> examples -> chosen sources -> eval split -> oversampled mix."""
    root = Path(s.data)
    by_kind = {kind: outputs_of_kind(root, release.manifest, kind)
               for kind in ("doc_sections", "examples", "stdlib", "chat")}
    examples, stats = ds.build_examples(release.version, by_kind, release.prompts, tokenizer, s.max_seq_len,
                                        s.stdlib_tokens, THINKING_OFF, general)
    if s.sources != "all":
        examples = _chosen_sources(s.sources, examples)
    train, evals = split_eval(examples, s.eval_share, s.seed)
    train = mix(train, s.oversample_shares(), s.seed)
    table = token_table(train, stats, s.max_seq_len)

    def to_dataset(rows: list[dict]) -> Dataset:
        return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})

    info = {"zig_version": release.version, "release_dir": str(root), "prompts_file": release.prompts_file,
            "train_sequences": len(train), "eval_sequences": len(evals), "token_table": table,
            "train_tokens": sum(r["tokens"] for r in table), "truncated_tokens": sum(r["truncated"] for r in table),
            "dropped": {src: {"failed_validation": st.failed_validation, "too_long": st.too_long}
                        for src, st in stats.items() if (st.failed_validation or st.too_long) and s.trains_on(src)}}
    return TrainingSet(to_dataset(train), to_dataset(evals) if evals else None, info)


def _chosen_sources(sources: str, examples: list[dict]) -> list[dict]:
    """The examples of --sources. A source this release lacks (no cookbook after `make data SKIP=build_cookbook`)
    is said and skipped; a name no release has is a mistake."""
    wanted, present = set(sources.split(",")), {e["source"] for e in examples}
    unknown = wanted - present - set(ds.SOURCES)
    if unknown or not wanted & present:
        raise TrainingError(f"--sources {sources}: no {', '.join(sorted(unknown or wanted))} in this release; "
                            f"it has {', '.join(sorted(present))}")
    if wanted - present:
        log(f"--sources: this release has no {', '.join(sorted(wanted - present))}; training on the others")
    return [e for e in examples if e["source"] in wanted]


def probe_questions(s: Settings, version: str) -> ProbeQuestions:
    """The dev facts and retain questions of the facts probe; none when --facts-eval none or no file."""
    if s.facts_eval == "none":
        return ProbeQuestions([], [], None)
    path = Path(s.facts_eval) if s.facts_eval != "auto" else REPO / "evals" / f"zig-{version}" / "natural.jsonl"
    if not path.is_file():
        if s.facts_eval != "auto":
            raise TrainingError(f"--facts-eval {path}: no such file")
        log(f"no dev questions for Zig {version} ({path}): training without the facts probe")
        return ProbeQuestions([], [], None)
    dev = load_facts(path, split="dev")
    if not dev:
        raise TrainingError(f"--facts-eval {path}: no questions with split dev")
    retain_path = REPO / "evals" / "retain.jsonl" if s.retain_eval == "auto" else Path(s.retain_eval)
    retain = [] if s.retain_eval == "none" or not retain_path.is_file() else load_facts(retain_path)
    return ProbeQuestions(dev, retain, str(path))


def trained_questions(s: Settings, release: Release, tokenizer) -> list[FactTask]:
    """A seeded sample of the fact Q&A's cloze records this run trains on (those the data builder keeps,
    ds.trainable_chat), each judged by whether the answer names the value the cloze asks for (of at least 3
    characters, so a stray "1" or "S" in an answer does not count)."""
    if not s.trains_on("qa-facts"):
        return []
    records = [r for _, recs in outputs_of_kind(Path(s.data), release.manifest, "chat") for r in recs
               if r.get("source") == "qa-facts" and r.get("kind") == "cloze" and len(r.get("term", "")) >= 3]
    rng = random.Random(s.seed)
    chosen = []
    for r in rng.sample(records, len(records)):
        if len(chosen) == TRAINED_PROBE:
            break
        if ds.trainable_chat(r, tokenizer, THINKING_OFF, s.max_seq_len).left_out is None:
            chosen.append(FactTask(id=r["id"], q=r["messages"][0]["content"],
                                   accept=rf"(?<![\w]){re.escape(r['term'])}(?![\w])"))
    return chosen
