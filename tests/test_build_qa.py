"""build_qa.py: questions from release-notes sections, a seeded held-out share, and accept regexes that mean something.

Fixture sections are written here in our own words, shaped like build_release_notes.py's records; the
last test runs on the real 0.14.0 notes built from the mirror.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import load_script, run_script

from ziglora.io import read_jsonl, write_jsonl

build_qa = load_script("build_qa")


def section(title_path: list[str], text: str, level: int = 6, code: list[str] | None = None) -> dict:
    anchor = re.sub(r"[^A-Za-z0-9]+", "-", title_path[-1]).strip("-")
    return {"source": "release-notes", "title_path": title_path, "level": level, "anchor": anchor,
            "text": text, "code_blocks": [{"file": None, "code": c} for c in code or []], "notes_version": "0.14.0"}


HINT_CODE = "fn rare() void {\n    @branchHint(.cold);\n}\nconst std = @import(\"std\");\n"
FIXTURE = [
    section(["0.14.0 Release Notes"], "# 0.14.0 Release Notes\n\nThis release took many months of work and "
            "focuses on faster builds and better `ReleaseFast` code.\n", level=1),
    section(["Language Changes"], "###### Language Changes\n"),  # heading only: skipped
    section(["Language Changes", "Hints For The Optimizer"],
            "###### Hints For The Optimizer\n\nA block may now start with a hint about how likely it runs, via "
            "`@branchHint`, which takes a `std.builtin.BranchHint`. The old `@setCold` is removed.\n\n"
            f"```zig\n{HINT_CODE}```\n", code=[HINT_CODE]),
    section(["Standard Library", "Leak Checking Allocator"],
            "###### Leak Checking Allocator\n\nThe allocator formerly called `GeneralPurposeAllocator` is now "
            "`DebugAllocator`; initialize it with `.init`.\n"),
    section(["Build System", "Watching Files"],
            "###### Watching Files\n\nThe build runner can stay alive and rebuild on changes:\n\n"
            "```\n  --watch            rebuild when inputs change\n  --debounce <ms>    wait before rebuilding\n```\n"),
    section(["Build System", "Overview"], "###### Overview\n\nThe build system gained several conveniences "
            "in this cycle, described below.\n"),
    section(["Toolchain", "Overview"], "###### Overview\n\nThe bundled C toolchain pieces were all updated "
            "to newer upstream versions.\n"),  # same title: qualified with its parent; no key term
    section(["Compiler", "Panic Handler"], "###### Panic Handler\n\n22594\n"),  # a bare PR number: skipped
]
KEY_TERM_SECTIONS = 4  # intro (ReleaseFast), hints, allocator, watching


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "zig-0.14.0" / "release_notes_sections.jsonl", FIXTURE)
    return tmp_path


def run(raw: Path, *extra: str) -> tuple[list[dict], list[dict]]:
    assert run_script("build_qa", "--zig-version", "0.14.0", "--out-root", str(raw), *extra) == 0
    release = raw / "zig-0.14.0"
    return list(read_jsonl(release / "qa_train.jsonl")), list(read_jsonl(release / "qa_heldout.jsonl"))


def questions(train: list[dict]) -> list[str]:
    return [m["content"] for r in train for m in r["messages"] if m["role"] == "user"]


def test_same_seed_same_files_other_seed_other_choice(raw):
    release = raw / "zig-0.14.0"
    run(raw, "--seed", "3")
    first = {f: (release / f).read_bytes() for f in ("qa_train.jsonl", "qa_heldout.jsonl")}
    run(raw, "--seed", "3")
    assert {f: (release / f).read_bytes() for f in first} == first
    _, other = run(raw, "--seed", "4")
    assert {h["q"] for h in other} != {json.loads(line)["q"] for line in first["qa_heldout.jsonl"].splitlines()}


@pytest.mark.parametrize("share, per_section", [("0.25", 2), ("0.5", 4), ("0", 0)])
def test_held_out_share_per_section(raw, share, per_section):
    train, heldout = run(raw, "--heldout-share", share)
    per = {}
    for h in heldout:
        per[tuple(h["section"])] = per.get(tuple(h["section"]), 0) + 1
    assert len(heldout) == per_section * KEY_TERM_SECTIONS
    assert all(n == per_section for n in per.values())
    used_sections = len(FIXTURE) - 2  # the heading-only and the bare-number sections are skipped
    assert len(train) + len(heldout) == len(build_qa.SECTION_TEMPLATES) * used_sections


def held_out_text_in(train_file: Path, heldout: list[dict]) -> list[str]:
    text = train_file.read_text(encoding="utf-8")
    return [h["q"] for h in heldout if json.dumps(h["q"], ensure_ascii=False)[1:-1] in text]


def test_no_held_out_question_is_trained_on(raw):
    train, heldout = run(raw)
    asked = questions(train)
    assert heldout and not held_out_text_in(raw / "zig-0.14.0" / "qa_train.jsonl", heldout)
    # nor any phrasing of it, with other whitespace or case
    norm = {" ".join(q.lower().split()) for q in asked}
    assert not any(" ".join(h["q"].lower().split()) in norm for h in heldout)


def test_records_follow_the_data_contract(raw):
    train, heldout = run(raw)
    assert len({r["id"] for r in train}) == len(train)
    for r in train:
        assert r["source"] == "qa" and [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert r["messages"][1]["content"] and not r["messages"][1]["content"].startswith("#")
        assert isinstance(r["section"], list)
    for h in heldout:
        assert set(h) == {"q", "accept", "answer", "section"}
    stage = json.loads((raw / "zig-0.14.0" / "stages" / "build_qa.json").read_text())
    assert stage["sources"] == []
    recall = list(read_jsonl(raw / "zig-0.14.0" / "qa_recall.jsonl"))
    assert {(o["path"], o["kind"], o["records"]) for o in stage["outputs"]} == {
        ("qa_train.jsonl", "chat", len(train)), ("qa_heldout.jsonl", "eval_facts", len(heldout)),
        ("qa_recall.jsonl", "eval_facts", len(recall))}


def test_recall_asks_each_held_out_section_once_in_a_trained_phrasing(raw):
    train, heldout = run(raw)
    recall = list(read_jsonl(raw / "zig-0.14.0" / "qa_recall.jsonl"))
    accept_of = {tuple(h["section"]): h["accept"] for h in heldout}
    assert sorted(tuple(r["section"]) for r in recall) == sorted(accept_of)
    assert all(r["accept"] == accept_of[tuple(r["section"])] for r in recall)
    assert {r["q"] for r in recall} <= set(questions(train))


def test_sections_without_text_or_key_term_are_counted_not_held_out(raw, capsys):
    train, heldout = run(raw)
    out = capsys.readouterr().out
    assert "sections_skipped_no_text 2" in out and "sections_without_key_term 2" in out
    asked = questions(train)
    # the duplicated title is qualified with its parent, so both sections keep distinct questions
    assert any("Overview (Toolchain)" in q for q in asked) and any("Overview (Build System)" in q for q in asked)
    assert not any("Panic Handler" in q for q in asked + [h["q"] for h in heldout])
    assert not any("Overview" in h["q"] for h in heldout)


def test_accept_regexes_are_specific(raw):
    _, heldout = run(raw)
    by_title = {h["section"][-1]: h["accept"] for h in heldout}
    for h in heldout:
        pattern = re.compile(h["accept"])  # compiles, carries its own case-insensitivity
        assert pattern.flags & re.IGNORECASE
        assert pattern.search(h["answer"]), h
        assert not pattern.search(h["q"]), "a term the question names is matched by any echo of it"
        for trivial in ("", "Zig is a general-purpose programming language.", "I don't know."):
            assert not pattern.search(trivial)
    hints = re.compile(by_title["Hints For The Optimizer"])
    assert hints.search("Use @BRANCHHINT(.cold) as the first statement") and not hints.search("use branchHint")
    assert re.compile(by_title["Leak Checking Allocator"]).search("std.heap.debugallocator(.{})")
    watch = re.compile(by_title["Watching Files"])
    assert watch.search("run zig build --watch") and not watch.search("a stopwatch")


def test_missing_sections_file_is_a_clear_error(tmp_path, capsys):
    assert run_script("build_qa", "--zig-version", "0.14.0", "--out-root", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "release_notes_sections.jsonl not found" in err and "build_release_notes.py" in err
    assert not (tmp_path / "zig-0.14.0" / "qa_train.jsonl").exists()


def test_bad_share_is_refused(raw, capsys):
    with pytest.raises(SystemExit):
        run(raw, "--heldout-share", "1.5")
    assert "--heldout-share: must be a number in [0, 1)" in capsys.readouterr().err


def test_real_release_notes(built_014):
    out_root = built_014.parent
    train, heldout = run(out_root)
    sections = list(read_jsonl(built_014 / "release_notes_sections.jsonl"))
    assert len(sections) == 89
    assert len(heldout) >= 60 and len(train) >= 400
    assert not held_out_text_in(built_014 / "qa_train.jsonl", heldout)
    for h in heldout:
        assert re.search(h["accept"], h["answer"]) and not re.search(h["accept"], h["q"])
    accepts = {h["section"][-1]: h["accept"] for h in heldout}
    assert re.search(accepts["DebugAllocator"], "it used to be called GeneralPurposeAllocator")
    assert re.search(accepts["File System Watching"], "zig build --watch")
