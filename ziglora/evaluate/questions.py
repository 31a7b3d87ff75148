"""Fact questions: one contract for every place that asks them (evaluate.py against a server, train_lora.py
during training), so a question is asked and judged the same way everywhere.

A facts file is JSONL of `{"q", "accept", ...}` (docs/DATA.md, kind eval_facts): `accept` is a case-insensitive
regex a correct answer contains. Optional fields: `answer` (a reference answer), `section` (the release-notes
title path the fact comes from, for the open-book baseline), `split` (dev | test), `direction`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import read_jsonl


@dataclass(frozen=True)
class FactTask:
    id: str
    q: str
    accept: str
    answer: str = ""
    section: tuple[str, ...] = ()
    about_release: bool = True  # False for retain questions (records with a `topic`): asked without the framing


def load_facts(path: Path, split: str | None = None) -> list[FactTask]:
    """The questions of a facts file (only those of `split` when given); a malformed record fails here, before
    any model is asked."""
    tasks = []
    for i, rec in enumerate(read_jsonl(path)):
        if "q" not in rec or "accept" not in rec:
            raise ValueError(f"{path}: record {i + 1} lacks 'q' or 'accept' (eval_facts records, docs/DATA.md)")
        re.compile(rec["accept"])  # a broken regex fails here, before any request is sent
        if split is not None and rec.get("split") != split:
            continue
        tasks.append(FactTask(id=rec.get("id") or f"q{i + 1:04d}", q=rec["q"], accept=rec["accept"],
                              answer=rec.get("answer", ""), section=tuple(rec.get("section") or ()),
                              about_release="topic" not in rec))
    return tasks


def framed(question: str, zig_version: str | None) -> str:
    """`question` in the frame every fact question is asked in; `zig_version` None for a question not about the
    release. A retain question (general knowledge, arithmetic) is asked without the release: with it, a small base
    model drifts into Zig-flavoured stories on general questions."""
    about = f" about Zig {zig_version}" if zig_version else ""
    return f"Answer this question{about} briefly and precisely.\n\n{question}"


def provenance(zig_version: str, section_title: str, level: int) -> str:
    """The line a trained fact answer ends with (scripts/build_qa.py), naming the section the fact is from (level
    1: the notes' introduction). A trained model's answer that names the question's own section found the right
    part of the notes, whether or not it then got the detail right (bench/facts_sweep.py counts both)."""
    if level == 1:
        return f"This is from the introduction of the Zig {zig_version} release notes."
    return f"This is part of the Zig {zig_version} release notes on {section_title}."


def fact_prompt(task: FactTask, zig_version: str, context: str | None = None) -> str:
    """The user turn for one question. `context` (open book): the docs text pasted before the question."""
    ask = framed(task.q, zig_version if task.about_release else None)
    return ask if context is None else with_docs(ask, zig_version, context)


def with_docs(question: str, zig_version: str, context: str) -> str:
    """`question` after the docs text it may be answered from: the open book, and what a distillation teacher reads."""
    return f"Here is part of the Zig {zig_version} documentation:\n\n{context.strip()}\n\n{question}"


_THINK = re.compile(r"<think>.*?</think>", re.S)


def strip_think(answer: str) -> str:
    return _THINK.sub("", answer)


# The provenance line (above) names the section, not the fact: a title that holds the accepted word would pass an
# answer that states another fact, so it is left out of what the accept pattern sees.
_PROVENANCE = re.compile(r"This is (?:part of the Zig \S+ release notes on [^\n]*|from the introduction of the Zig "
                         r"\S+ release notes\.)")


def judged_text(answer: str) -> str:
    """What the accept pattern sees of an answer: no think block, no provenance line."""
    return _PROVENANCE.sub("", strip_think(answer))


def fact_passes(task: FactTask, answer: str) -> bool:
    return re.search(task.accept, judged_text(answer), re.IGNORECASE) is not None


def passes_on_provenance_alone(task: FactTask, answer: str) -> bool:
    """Would the answer pass only because its provenance line names the question's words? (Reported, not passed.)"""
    return not fact_passes(task, answer) and re.search(task.accept, strip_think(answer), re.IGNORECASE) is not None
