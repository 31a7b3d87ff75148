"""What a run trains on and asks: the release's files, the base model's own general answers, the tokenized and mixed
training set, and the questions the facts probe asks (dev, retain and trained facts)."""
from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from datasets import Dataset

from ziglora.common.io import read_jsonl
from ziglora.data.manifest import DataError, load_manifest, outputs_of_kind
from ziglora.evaluate.questions import FactTask, load_facts
from ziglora.serve.contract import THINKING_OFF
from ziglora.train import examples as ds
from ziglora.train.backend import TrainingError
from ziglora.train.mix import mix, split_eval, token_table
from ziglora.train.report import log
from ziglora.train.settings import REPO, Settings
from ziglora.train.teacher import DistillItem, TeacherOutput, TeacherPlan

# The base model's general answers stop at this many tokens and a cut one is left out: an answer that stops
# mid-sentence would teach stopping there. Most answers finish well within it (docs/RESULTS.md).
GENERAL_TOKENS = 384
# The teacher's own fact answers (--distill-answers teacher) stop here; a cut one leaves the reference answer.
TEACHER_ANSWER_TOKENS = 256
# Padded tokens per teacher forward pass: a forward without gradients, so far more than a training micro-batch.
TEACHER_BATCH_TOKENS, CPU_TEACHER_BATCH_TOKENS = 32768, 4096
# Trained cloze questions the facts probe asks back: with the dev and retain questions they fit one generation batch.
TRAINED_PROBE = 64


class Release(NamedTuple):
    """A release directory as a run reads it, once, before the model loads (so bad data fails fast)."""

    manifest: dict  # verified: every output's sha256 checked
    prompts: list[dict]  # the hand-written prompt records
    prompts_file: str | None
    focus: frozenset[tuple[str, ...]] | None = None  # --focus-sections: the only sections trained and asked

    def in_focus(self, section) -> bool:
        """Whether a record of this section (a title path; None or empty: of no section) is trained or asked."""
        return self.focus is None or tuple(section or ()) in self.focus

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
    focus = focus_sections(s, manifest["zig_version"])
    prompts_path = s.prompts or str(REPO / "prompts" / f"zig-{manifest['zig_version']}.jsonl")
    if prompts_path == "none" or focus is not None:  # hand-written prompts belong to no section
        return Release(manifest, [], None, focus)
    if not Path(prompts_path).is_file():
        raise TrainingError(f"prompts file {prompts_path} not found: pass --prompts FILE, or --prompts none")
    return Release(manifest, list(read_jsonl(Path(prompts_path))), prompts_path)


def _dev_file(s: Settings, version: str) -> Path:
    return Path(s.facts_eval) if s.facts_eval != "auto" else REPO / "evals" / f"zig-{version}" / "natural.jsonl"


def focus_sections(s: Settings, version: str) -> frozenset[tuple[str, ...]] | None:
    """The --focus-sections release-notes sections the most dev questions ask about (ties: the file's order), or
    None for the whole release."""
    if not s.focus_sections:
        return None
    path = _dev_file(s, version)
    if s.facts_eval == "none" or not path.is_file():
        raise TrainingError(f"--focus-sections picks the sections the dev questions ask about most: no dev "
                            f"questions ({path}); pass --facts-eval FILE")
    asked = Counter(t.section for t in load_facts(path, split="dev") if t.section)
    chosen = [section for section, _ in asked.most_common(s.focus_sections)]
    log(f"focused on {len(chosen)} release-notes sections ({sum(asked[c] for c in chosen)} dev questions): "
        + "; ".join(" > ".join(c) for c in chosen))
    return frozenset(chosen)


def release_outputs(s: Settings, release: Release, kind: str) -> list[tuple[str, list[dict]]]:
    """The release's (path, records) outputs of a manifest kind, as this run reads them: with --focus-sections only
    the records of the focused sections, release-notes sections and chat records (code examples, the std lib and
    whatever has no section are left out)."""
    outputs = outputs_of_kind(Path(s.data), release.manifest, kind)
    if release.focus is None:
        return outputs

    def kept(r: dict) -> bool:
        if kind == "doc_sections":
            return r.get("source") == "release-notes" and release.in_focus(r["title_path"])
        return kind == "chat" and release.in_focus(r.get("section"))

    return [(path, [r for r in records if kept(r)]) for path, records in outputs]


def general_prompts(s: Settings) -> tuple[list[str], str | None]:
    """(prompts, file) the base model answers for the `general` source; none with --general-prompts none or when
    --sources leaves the source out (the answers would cost time for nothing)."""
    if s.general_prompts == "none" or not s.trains_on("general"):
        return [], None
    path = REPO / "prompts" / "general.jsonl" if s.general_prompts == "auto" else Path(s.general_prompts)
    if not path.is_file():
        raise TrainingError(f"--general-prompts {path}: no such file (`none` trains without general answers)")
    return [r["prompt"] for r in read_jsonl(path)], str(path)


def teacher_plan(s: Settings, release: Release, cuda: bool) -> TeacherPlan:
    """What the teacher pass of this run computes: the general answers (when the run trains on them) and, with
    --distill facts, the fact Q&A of the run with each fact's release-notes section as the teacher's context."""
    prompts, _ = general_prompts(s)
    facts = fact_items(s, release) if "facts" in s.distilled() and s.trains_on("qa-facts") else []
    return TeacherPlan(prompts, GENERAL_TOKENS, facts, "general" in s.distilled() and bool(prompts),
                       s.distill_answers == "teacher", TEACHER_ANSWER_TOKENS, s.teacher_top_k,
                       TEACHER_BATCH_TOKENS if cuda else CPU_TEACHER_BATCH_TOKENS)


def fact_items(s: Settings, release: Release) -> list[DistillItem]:
    """The fact Q&A records that train, each with its section's text (a record whose section is missing from the
    release notes stays plain cross-entropy)."""
    sections = {tuple(r["title_path"]): r["text"] for _, records in release_outputs(s, release, "doc_sections")
                for r in records if r.get("source") == "release-notes"}
    return [DistillItem(r["id"], r["messages"][0]["content"], r["messages"][1]["content"],
                        sections[tuple(r["section"])])
            for _, records in release_outputs(s, release, "chat") for r in records
            if r.get("source") == "qa-facts" and tuple(r.get("section") or ()) in sections
            and not ds.failed_validation(r)]


def _teacher_answered(chat: list[tuple[str, list[dict]]], answers: dict[str, str]) -> list[tuple[str, list[dict]]]:
    """The chat outputs with each fact answer the teacher gave in place of the reference (sequence-level)."""
    def swap(r: dict) -> dict:
        if r.get("id") not in answers:
            return r
        return {**r, "messages": [r["messages"][0], {"role": "assistant", "content": answers[r["id"]]}]}

    return [(path, [swap(r) for r in records]) for path, records in chat]


def load_training_set(s: Settings, tokenizer, release: Release, teacher: TeacherOutput | None = None
                      ) -> TrainingSet:
    """Train and eval datasets of pre-tokenized sequences, plus the data part of the report, in one pass:
    release (+ what the teacher pass gave: the general answers, the teacher's fact answers, its top-k table) ->
    examples -> chosen sources -> eval split -> oversampled mix."""
    teacher = teacher or TeacherOutput([], {}, None, {})
    root = Path(s.data)
    by_kind = {kind: release_outputs(s, release, kind) for kind in ("doc_sections", "examples", "stdlib", "chat")}
    by_kind["chat"] = _teacher_answered(by_kind["chat"], teacher.fact_answers)
    examples, stats = ds.build_examples(release.version, by_kind, release.prompts, tokenizer, s.max_seq_len,
                                        s.stdlib_tokens, THINKING_OFF, teacher.general, teacher.table)
    if s.sources != "all":
        examples = _chosen_sources(s.sources, examples)
    train, evals = split_eval(examples, s.eval_share, s.seed)
    train = mix(train, s.oversample_shares(), s.seed)
    table = token_table(train, stats, s.max_seq_len)

    columns = ("input_ids", "labels", "teacher_row") if teacher.table is not None else ("input_ids", "labels")

    def to_dataset(rows: list[dict]) -> Dataset:
        return Dataset.from_dict({c: [r[c] for r in rows] for c in columns})

    info = {"zig_version": release.version, "release_dir": str(root), "prompts_file": release.prompts_file,
            "focus_sections": None if release.focus is None else sorted(" > ".join(f) for f in release.focus),
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


def probe_questions(s: Settings, release: Release) -> ProbeQuestions:
    """The dev facts (of the focused sections only, with --focus-sections) and retain questions of the facts
    probe; none when --facts-eval none or no file."""
    if s.facts_eval == "none":
        return ProbeQuestions([], [], None)
    version, path = release.version, _dev_file(s, release.version)
    if not path.is_file():
        if s.facts_eval != "auto":
            raise TrainingError(f"--facts-eval {path}: no such file")
        log(f"no dev questions for Zig {version} ({path}): training without the facts probe")
        return ProbeQuestions([], [], None)
    dev = [t for t in load_facts(path, split="dev") if release.in_focus(t.section)]
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
    records = [r for _, recs in release_outputs(s, release, "chat") for r in recs
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
