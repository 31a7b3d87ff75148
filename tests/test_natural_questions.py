"""evals/: the hand-written question sets (docs/DATA.md, "Evaluation sets") are well-formed, judge what they claim to
judge, and stay apart from everything the Q&A generator produces.

An accept pattern that matches its own question passes any answer that repeats the question; a natural question
that names its section's title is the template question again; a dev/test overlap lets choices made on dev leak
into the test score.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO

from ziglora.common.io import read_jsonl
from ziglora.data.questions.build import build_qa
from ziglora.evaluate.questions import fact_passes, load_facts

EVALS = REPO / "evals"
EVAL_FILES = sorted(EVALS.rglob("*.jsonl"))
NATURAL_014 = EVALS / "zig-0.14.0" / "natural.jsonl"
# Every release's natural questions, and the fixture that builds that release's notes to check them against.
NATURAL = {p.parent.name.removeprefix("zig-"): p for p in sorted(EVALS.glob("zig-*/natural.jsonl"))}
BUILT = {"0.14.0": "built_014", "0.15.2": "built_0152"}
RETAIN = EVALS / "retain.jsonl"
# Fields each kind of file must carry, with the values allowed (None: any non-empty value).
SCHEMAS = {
    "natural.jsonl": {"section": None, "direction": {"forward", "reverse"}, "split": {"dev", "test"}},
    "retain.jsonl": {"topic": {"general", "arithmetic", "programming", "zig"}},
}


def test_evals_hold_both_sets() -> None:
    assert NATURAL_014 in EVAL_FILES and RETAIN in EVAL_FILES


@pytest.mark.parametrize("path", EVAL_FILES, ids=lambda p: str(p.relative_to(EVALS)))
def test_records_are_well_formed(path: Path) -> None:
    records = list(read_jsonl(path))
    assert records, f"{path} is empty"
    tasks = load_facts(path)  # the loader every evaluation uses accepts the file
    assert len(tasks) == len(records)
    # the reference answer (evaluate.py's stub answers with it) passes the same judge a model's answer meets
    assert [t.id for t in tasks if t.answer and not fact_passes(t, t.answer)] == []
    ids = [r.get("id") for r in records]
    assert all(isinstance(i, str) and i for i in ids), "every record needs an id"
    assert len(set(ids)) == len(ids), "ids repeat"
    questions = [r["q"].strip().lower() for r in records]
    assert len(set(questions)) == len(questions), "a question is asked twice"
    schema = SCHEMAS.get(path.name, {})
    for rec in records:
        assert isinstance(rec["q"], str) and rec["q"].strip(), rec["id"]
        accept = re.compile(rec["accept"], re.IGNORECASE)
        assert not accept.search(rec["q"]), f"{rec['id']}: accept {rec['accept']!r} matches its own question"
        for key, allowed in schema.items():
            assert rec.get(key), f"{rec['id']}: no {key!r}"
            assert allowed is None or rec[key] in allowed, f"{rec['id']}: {key}={rec[key]!r}"


@pytest.fixture(params=sorted(NATURAL))
def release(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def built(request: pytest.FixtureRequest, release: str) -> Path:
    assert release in BUILT, f"add a fixture building the Zig {release} notes to BUILT"
    return request.getfixturevalue(BUILT[release])


def natural(release: str) -> list[dict]:
    return list(read_jsonl(NATURAL[release]))


def test_natural_splits_are_disjoint_and_both_used(release: str) -> None:
    records = natural(release)
    assert len(records) >= 100
    dev, test = load_facts(NATURAL[release], "dev"), load_facts(NATURAL[release], "test")
    assert dev and test and len(dev) + len(test) == len(records)
    assert {t.id for t in dev} & {t.id for t in test} == set()
    assert {t.q.strip().lower() for t in dev} & {t.q.strip().lower() for t in test} == set()
    assert 0.25 <= len(dev) / len(records) <= 0.5  # dev guides choices; most questions stay for the test


def test_natural_reverse_share(release: str) -> None:
    records = natural(release)
    reverse = sum(r["direction"] == "reverse" for r in records)
    assert 0.15 <= reverse / len(records) <= 0.30
    for split in ("dev", "test"):  # the reversal curse shows in both splits, not only one
        assert any(r["direction"] == "reverse" and r["split"] == split for r in records)


def test_natural_sections_exist_and_titles_stay_unnamed(release: str, built: Path) -> None:
    titles = {tuple(r["title_path"]) for r in read_jsonl(built / "release_notes_sections.jsonl")}
    covered = set()
    for rec in natural(release):
        path = tuple(rec["section"])
        assert path in titles, f"{rec['id']}: no release-notes section {list(path)}"
        covered.add(path)
        title = path[-1]
        if len(title.split()) > 1:
            assert title.lower() not in rec["q"].lower(), f"{rec['id']} names its section title {title!r}"
    assert len(covered) >= len(titles) // 2, "questions should spread over the notes, not cluster"


def test_generator_never_sees_natural_questions(release: str, built: Path, tmp_path: Path) -> None:
    """build_qa.py on the real notes: none of its questions or answers contains a natural question."""
    out = tmp_path / built.name
    out.mkdir()
    shutil.copy(built / "release_notes_sections.jsonl", out)
    build_qa(release, tmp_path)
    produced = []
    for name in ("qa_train.jsonl", "qa_heldout.jsonl", "qa_recall.jsonl"):
        for rec in read_jsonl(out / name):
            produced += [m["content"] for m in rec.get("messages", [])] + [rec.get("q", ""), rec.get("answer", "")]
    text = "\n".join(produced).lower()
    assert len(text) > 10_000  # the generator did produce its Q&A
    leaked = [r["id"] for r in natural(release) if r["q"].strip().lower() in text]
    assert not leaked, f"natural questions found in the generator's output: {leaked}"
