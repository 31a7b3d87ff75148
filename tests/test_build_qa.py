"""build_qa.py (ziglora/data/questions/): template questions per release-notes section (a seeded held-out share,
accept regexes that mean something) and fact questions per sentence (both directions, never naming the section
title).

Fixture sections are written here in our own words, shaped like build_release_notes.py's records; the
tests named *real* run on the real 0.14.0 notes built from the mirror.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, run_script

from ziglora.common.io import read_jsonl, write_jsonl
from ziglora.data.questions.build import build_facts, build_qa
from ziglora.data.questions.facts import directions
from ziglora.data.questions.forms import FACT_FORMS, NEW_FORMS, OLD_FORMS
from ziglora.data.questions.sections import INTRO_TEMPLATES, SECTION_TEMPLATES


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


def run(raw: Path, **settings: float) -> tuple[list[dict], list[dict]]:
    """(template train records, held-out records)."""
    train, heldout = run_all(raw, **settings)
    return templates_of(train), heldout


def run_all(raw: Path, **settings: float) -> tuple[list[dict], list[dict]]:
    """(every train record: template and fact, held-out records); `settings`: build_qa's keyword arguments."""
    build_qa("0.14.0", raw, **settings)
    return outputs(raw)


def outputs(raw: Path) -> tuple[list[dict], list[dict]]:
    release = raw / "zig-0.14.0"
    return list(read_jsonl(release / "qa_train.jsonl")), list(read_jsonl(release / "qa_heldout.jsonl"))


def templates_of(train: list[dict]) -> list[dict]:
    return [r for r in train if r["source"] == "qa"]


def run_cli(raw: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_script("build_qa", "--zig-version", "0.14.0", "--out-root", str(raw), *extra)


def questions(train: list[dict]) -> list[str]:
    return [m["content"] for r in train for m in r["messages"] if m["role"] == "user"]


def test_same_seed_same_files_other_seed_other_choice(raw):
    release = raw / "zig-0.14.0"
    run(raw, seed=3)
    first = {f: (release / f).read_bytes() for f in ("qa_train.jsonl", "qa_heldout.jsonl")}
    run(raw, seed=3)
    assert {f: (release / f).read_bytes() for f in first} == first
    _, other = run(raw, seed=4)
    assert {h["q"] for h in other} != {json.loads(line)["q"] for line in first["qa_heldout.jsonl"].splitlines()}


@pytest.mark.parametrize("share, per_section", [(0.25, 2), (0.5, 4), (0.0, 0)])
def test_held_out_share_per_section(raw, share, per_section):
    train, heldout = run(raw, heldout_share=share)
    per = {}
    for h in heldout:
        per[tuple(h["section"])] = per.get(tuple(h["section"]), 0) + 1
    assert len(heldout) == per_section * KEY_TERM_SECTIONS
    assert all(n == per_section for n in per.values())
    used_sections = len(FIXTURE) - 2  # the heading-only and the bare-number sections are skipped
    assert len(train) + len(heldout) == len(SECTION_TEMPLATES) * used_sections


def held_out_text_in(train_file: Path, heldout: list[dict]) -> list[str]:
    text = train_file.read_text(encoding="utf-8")
    return [h["q"] for h in heldout if json.dumps(h["q"], ensure_ascii=False)[1:-1] in text]


def test_no_held_out_question_is_trained_on(raw):
    train, heldout = run_all(raw)  # neither as a template question nor as a fact question
    asked = questions(train)
    assert heldout and not held_out_text_in(raw / "zig-0.14.0" / "qa_train.jsonl", heldout)
    # nor any phrasing of it, with other whitespace or case
    norm = {" ".join(q.lower().split()) for q in asked}
    assert not any(" ".join(h["q"].lower().split()) in norm for h in heldout)


def test_records_follow_the_data_contract(raw):
    train, heldout = run_all(raw)
    assert len({r["id"] for r in train}) == len(train)
    assert {r["source"] for r in train} == {"qa", "qa-facts"}
    for r in train:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert r["messages"][1]["content"] and not r["messages"][1]["content"].startswith("#")
        assert isinstance(r["section"], list)
        if r["source"] == "qa-facts":
            assert set(r) == {"id", "source", "messages", "section", "fact", "kind", "term", "direction"}
            q = r["messages"][0]["content"]
            assert r["direction"] in {"old", "new", "about"}
            if r["kind"] == "term":  # asked by its name
                assert r["term"] in q
            elif r["kind"] == "cloze":  # asked for: the answer names it, the question asks "what"
                assert re.search(r"\b(what|which|how many)\b", q, re.I) and r["term"] in r["messages"][1]["content"]
            else:
                assert r["kind"] == "keywords" and r["term"] is None
    for h in heldout:
        assert set(h) == {"q", "accept", "answer", "section"}
    stage = json.loads((raw / "zig-0.14.0" / "stages" / "build_qa.json").read_text())
    assert stage["sources"] == []
    recall = list(read_jsonl(raw / "zig-0.14.0" / "qa_recall.jsonl"))
    assert stage["stats"]["train"] == len([r for r in train if r["source"] == "qa"])
    assert stage["stats"]["fact_questions"] == len([r for r in train if r["source"] == "qa-facts"])
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


def test_sections_without_text_or_key_term_are_counted_not_held_out(raw):
    proc = run_cli(raw)
    assert proc.returncode == 0, proc.stderr
    train, heldout = outputs(raw)
    train = templates_of(train)
    out = proc.stdout
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


def test_missing_sections_file_is_a_clear_error(tmp_path):
    proc = run_cli(tmp_path)
    assert proc.returncode == 2
    err = proc.stderr
    assert "release_notes_sections.jsonl not found" in err and "build_release_notes.py" in err
    assert not (tmp_path / "zig-0.14.0" / "qa_train.jsonl").exists()


def test_bad_share_is_refused(raw):
    proc = run_cli(raw, "--heldout-share", "1.5")
    assert proc.returncode == 2
    assert "--heldout-share: must be a number in [0, 1)" in proc.stderr


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


# ------------------------------------------------------------------------------------------- fact questions

OLD_CODE = "fn rare() void {\n    @setCold(true);\n}\n"
NEW_CODE = "fn rare() void {\n    @branchHint(.cold);\n}\n"
FACT_FIXTURE = [
    section(["Standard Library", "Renamed Containers"], "### Renamed Containers\n\nThe doubly linked list "
            "`std.TailQueue` has been renamed to `std.DoublyLinkedList` without other changes.\n", level=3),
    section(["Language Changes", "Cold Functions"], "### Cold Functions\n\nThe `@setCold` builtin has been "
            "removed in favor of `@branchHint`, which also marks likely and unlikely branches.\n\n"
            f"```zig\n{OLD_CODE}```\n\n```zig\n{NEW_CODE}```\n", level=3, code=[OLD_CODE, NEW_CODE]),
    section(["Build System", "Quick Rebuilds"], "### Quick Rebuilds\n\n"
            "Pass [the watch flag](https://example.invalid/w) `--watch` to **keep** the build runner alive, "
            "e.g. while editing. It then rebuilds when an input changes.\n\n"
            "Nothing else about the runner changed in this release.\n", level=3),
    section(["Standard Library", "Retired Names"], "### Retired Names\n\nThese names are compile errors now:\n\n"
            "  * `std.oldThing` (renamed to `std.newThing`)\n  * `std.bare`\n\nTherefore, code that uses "
            "`std.oldThing` has to move.\n", level=3),
]


@pytest.fixture
def fact_raw(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "facts" / "zig-0.14.0" / "release_notes_sections.jsonl", FACT_FIXTURE)
    return tmp_path / "facts"


def fact_records(raw: Path, **settings: float) -> list[dict]:
    return [r for r in run_all(raw, **settings)[0] if r["source"] == "qa-facts"]


def asked(records: list[dict], term: str) -> list[dict]:
    return [r for r in records if r["kind"] == "term" and r["term"] == term]


def forms_used(records: list[dict], forms: tuple[str, ...]) -> set[str]:
    return {f for f in forms for r in records if r["messages"][0]["content"] == f.format(t=r["term"], ver="0.14.0")}


def test_a_sentence_with_two_terms_is_asked_from_both_sides(fact_raw):
    records = fact_records(fact_raw)
    old, new = asked(records, "std.TailQueue"), asked(records, "std.DoublyLinkedList")
    assert old and new and {r["fact"] for r in old} == {r["fact"] for r in new}
    assert {r["direction"] for r in old} == {"old"} and {r["direction"] for r in new} == {"new"}
    assert all("std.DoublyLinkedList" in r["messages"][1]["content"] for r in old)  # asked old, answered new
    assert all("std.TailQueue" in r["messages"][1]["content"] for r in new)  # and the other way round
    assert forms_used(old, OLD_FORMS) and forms_used(new, NEW_FORMS)
    assert not forms_used(old, NEW_FORMS) and not forms_used(new, OLD_FORMS)


def test_the_answer_states_the_fact_first_then_where_then_new_code_only(fact_raw):
    records = fact_records(fact_raw)
    cold = asked(records, "@branchHint")[0]["messages"][1]["content"]
    fact = "The `@setCold` builtin has been removed in favor of `@branchHint`, which also marks likely and unlikely"
    assert cold.startswith(fact)
    assert "This is part of the Zig 0.14.0 release notes on Cold Functions." in cold
    assert cold.endswith(f"```zig\n{NEW_CODE}```")  # the block with @setCold shows what was replaced: not shown
    assert all("@setCold(true)" not in r["messages"][1]["content"] for r in records)
    watch = asked(records, "--watch")[0]["messages"][1]["content"]
    # link and emphasis cleaned, not split after "e.g.", and "It then …" kept with the sentence it refers to
    assert watch.startswith("Pass the watch flag `--watch` to keep the build runner alive, e.g. while editing. "
                            "It then rebuilds when an input changes.\n\n")
    assert "Nothing else" not in watch and "```" not in watch


def test_list_items_keep_their_lead_in_and_sentences_drop_a_leading_connective(fact_raw):
    records = fact_records(fact_raw)
    answers = {r["messages"][1]["content"].split("\n\n")[0] for r in records
               if r["section"][-1] == "Retired Names" and r["kind"] != "cloze"}  # a cloze's answer leads with a value
    assert answers == {"These names are compile errors now: `std.oldThing` (renamed to `std.newThing`)",
                       "Code that uses `std.oldThing` has to move."}  # `std.bare` alone says nothing: no fact
    assert {r["direction"] for r in asked(records, "std.newThing")} == {"new"}


def test_no_fact_question_names_its_section_title(fact_raw, raw):
    """A question by name (or by keywords) is reachable from the name, not from the title a template question
    names; a cloze quotes its sentence, whatever words that has."""
    for records in (fact_records(fact_raw), fact_records(raw)):
        assert records
        for r in records:
            if r["kind"] == "cloze" or len(r["section"]) == 1:  # the intro's "title" is the notes' own
                continue
            q = r["messages"][0]["content"].replace(r["term"] or "", "")
            assert r["section"][-1].lower() not in q.lower(), r


@pytest.mark.parametrize("phrasings", [2, 4, 16])
def test_phrasings_gives_that_many_distinct_questions_per_fact_and_term(raw, phrasings):
    records = fact_records(raw, phrasings=phrasings)
    per = Counter((r["fact"], r["term"]) for r in records if r["kind"] == "term")
    assert per and set(per.values()) == {phrasings}
    clozes = Counter((r["fact"], r["term"]) for r in records if r["kind"] == "cloze")
    assert clozes and max(clozes.values()) == phrasings // 2
    assert len({r["messages"][0]["content"] for r in records}) == len(records)  # one question, one answer


def test_fact_questions_are_seeded(fact_raw):
    first = fact_records(fact_raw, seed=5)
    assert fact_records(fact_raw, seed=5) == first
    assert [r["messages"][0]["content"] for r in fact_records(fact_raw, seed=6)] != [
        r["messages"][0]["content"] for r in first]


def test_bad_phrasings_are_refused(raw):
    proc = run_cli(raw, "--phrasings", str(len(FACT_FORMS) + 1))
    assert proc.returncode == 2
    assert "--phrasings: must be a whole number from 1 to" in proc.stderr


@pytest.mark.parametrize("sentence, expected", [
    ("`a.Old` has been removed in favor of `a.New`.", {"a.Old": "old", "a.New": "new"}),
    ("`b.New` is a new builtin, replacing `b.Old`.", {"b.New": "new", "b.Old": "old"}),
    ("Just replace `c.Old(true)` with `c.New(.x)`.", {"c.Old": "old", "c.New": "new"}),
    ("`d.Old` (split into `d.NewA`, `d.NewB`)", {"d.Old": "old", "d.NewA": "new", "d.NewB": "new"}),
    ("`e.Old` was renamed to `e.New` to be in line with `e.Other`.", {"e.Old": "old", "e.New": "new",
                                                                    "e.Other": "about"}),
    ("In addition, instead of an enum, `f.Thing` is now a tagged union.", {"f.Thing": "about"}),
    ("The old `g.Old` builtin becomes redundant next to `g.Hint`.", {"g.Old": "old", "g.Hint": "about"}),
    ("`h.Gone` was deleted.", {"h.Gone": "old"}),
])
def test_directions_follow_where_the_sentence_turns(sentence, expected):
    assert directions(sentence, list(expected)) == expected


def test_a_term_of_many_topics_is_not_asked_but_one_topic_with_subsections_is():
    records = [section([f"Topic {n}", "Details"], f"### Details\n\nThe helper `std.everywhere` is used by {n} "
                       "parts of this release.\n", level=3) for n in "ABCD"]
    records += [section(["Removal", *(["Part"] * n)], f"### Part\n\nThe `@gone` builtin is removed, part {n} "
                        "of the story.\n", level=3) for n in range(1, 5)]
    facts, stats = build_facts(records, "0.14.0", 2, 0)
    assert {r["term"] for r in facts if r["kind"] == "term"} == {"@gone"} and stats["facts"] == 8
    assert {r["term"] for r in facts if r["kind"] == "cloze"} >= {"std.everywhere"}  # asked for, not by name


def test_the_generator_never_reads_evals(fact_raw, tmp_path, monkeypatch):
    """evals/ holds hand-written natural questions kept apart from everything the generator sees."""
    evals = tmp_path / "evals"
    evals.mkdir()
    (evals / "natural.jsonl").write_text('{"q": "What did std.TailQueue become?"}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    opened: list[str] = []
    recording = [True]  # the hook stays for the whole session (audit hooks cannot be removed): switch it off
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and recording[0] else None)
    fact_records(fact_raw)
    recording[0] = False
    assert opened and not [p for p in opened if "evals" in Path(p).parts]
    for module in [REPO / "scripts" / "build_qa.py", *(REPO / "ziglora" / "data" / "questions").glob("*.py")]:
        assert "evals" not in module.read_text(encoding="utf-8"), module


# sha256 of the template outputs of the real 0.14.0 notes with --seed 0, as they were before fact questions
# were added: held-out, recall and the template part of qa_train.jsonl stay byte-identical, so the template
# measure keeps meaning what it meant. (A change in build_release_notes.py's sections changes them.)
TEMPLATE_SHA256 = {
    "qa_heldout.jsonl": "9f360b217168efa13cbced99124105097615d1121e74ab9138f7a379639af29d",
    "qa_recall.jsonl": "0d658de42b0e216ef4c59f012a432375183698ae05efd4a09326cbe65d541972",
    "qa_train.jsonl (source qa)": "9157894671bc088d4574ecda9edb9fe440e2e4fd5f32265b17ee6c0ee2f1494a",
}


def test_real_template_outputs_are_unchanged(built_014):
    run_all(built_014.parent, seed=0)
    lines = (built_014 / "qa_train.jsonl").read_bytes().splitlines(keepends=True)
    template = b"".join(line for line in lines if json.loads(line)["source"] == "qa")
    got = {f: hashlib.sha256((built_014 / f).read_bytes()).hexdigest() for f in ("qa_heldout.jsonl",
                                                                                  "qa_recall.jsonl")}
    got["qa_train.jsonl (source qa)"] = hashlib.sha256(template).hexdigest()
    assert got == TEMPLATE_SHA256


def test_real_fact_questions_cover_what_users_ask(built_014):
    records = list(read_jsonl(built_014 / "release_notes_sections.jsonl"))
    facts, stats = build_facts(records, "0.14.0", 8, 0)
    assert stats["facts"] >= 150 and stats["facts_with_two_terms"] >= 50
    assert stats["questions_old_to_new"] >= 200 and stats["questions_new_to_old"] >= 150
    by_term: dict[str, list[str]] = {}
    for r in facts:
        by_term.setdefault(r["term"], []).append(r["messages"][1]["content"])
    # "Which builtin took over the job of @setCold?", "What replaced std.meta.FieldType?",
    # "What is the new default allocator for release builds?", "What does -fincremental do?"
    assert any("`@branchHint`" in a for a in by_term["@setCold"])
    assert any("`@FieldType`" in a for a in by_term["std.meta.FieldType"])
    assert any("`std.meta.FieldType`" in a for a in by_term["@FieldType"])  # and the reverse
    assert any("ReleaseFast" in a for a in by_term["SmpAllocator"])
    assert any("zig build" in a for a in by_term["-fincremental"])
    assert any("`@fence` has been removed" in a for a in by_term["@fence"])  # one topic, though in 4 sections
    assert any("`std.Random`" in a for a in by_term["std.rand"])
    assert any("`std.rand`" in a for a in by_term["std.Random"])
    # every form of the pool is used somewhere
    assert forms_used(facts, FACT_FORMS) == set(FACT_FORMS)
    assert forms_used(facts, OLD_FORMS) == set(OLD_FORMS)
    assert forms_used(facts, NEW_FORMS) == set(NEW_FORMS)
    # short answers: a fact and its code, never a whole section
    assert max(len(r["messages"][1]["content"]) for r in facts) < 2500
    # asked from the description too: "Which allocator is designed for ReleaseFast with multithreading?"; a count,
    # a table row ("which tier is riscv64-linux in?") and a --help line are facts as well
    assert stats["questions_cloze"] >= 1000 and stats["questions_keywords"] >= 1000
    clozes = {r["term"]: r["messages"][0]["content"] for r in facts if r["kind"] == "cloze"}
    assert "SmpAllocator" not in clozes["SmpAllocator"] and "3467" not in clozes["3467"]
    answers = {r["messages"][1]["content"].split("\n\n")[0] for r in facts}
    assert any(a.startswith("Target `riscv64-linux`: Tier 3") for a in answers)
    assert "`--watch`: Continuously rebuild when source files are modified." in answers


def test_no_fact_form_is_a_template_form():
    """A fact question about a name that is also a section title (DebugAllocator) must not be word for word a
    held-out template question about that section."""
    templates = {t.replace("{topic}", "{t}") for t in (*SECTION_TEMPLATES, *INTRO_TEMPLATES)}
    forms = (*FACT_FORMS, *OLD_FORMS, *NEW_FORMS)
    assert len(set(forms)) == len(forms) and not templates & set(forms)


# ------------------------------------------------------------------------------------------- cloze and keywords

KIND_FIXTURE = [
    section(["0.14.0 Release Notes"], "# 0.14.0 Release Notes\n\nThis release brings 4321 commits from 99 "
            "different people.\n\n* Alice Example\n* Bob Example\n", level=1),
    section(["Standard Library", "Faster Threads"], "### Faster Threads\n\nThe new `std.heap.FastThreadAllocator` "
            "is designed for release builds, where many threads allocate at once.\n", level=3),
    section(["Target Support", "Target Table"], "### Target Table\n\nEach target and its level:\n\n"
            "| Target | Level | Tests |\n| --- | --- | --- |\n| `alpha-linux` | 1 | yes |\n| * * * |  |  |\n"
            "| `beta-wasi` | 3 | no |\n", level=3),
    section(["Build System", "Watching"], "### Watching\n\n```\n  --keep-going     Rebuild whenever an input "
            "file changes\n```\n", level=3),
    section(["Language Changes", "@fooCast Allows Changing Slice Length"],
            "### @fooCast Allows Changing Slice Length\n\n#12345\n", level=3),
    section(["Language Changes", "Tags Renamed"], "### Tags Renamed\n\nUpgrading is simple:\n\n```\n"
            "const x = switch (info) {\n    .ComptimeThing => 1,\n    .Struct => 2,\n};\n```\n\n⬇️\n\n```\n"
            "const x = switch (info) {\n    .comptime_thing => 1,\n    .@\"struct\" => 2,\n};\n```\n", level=3),
    section(["Target Support", "Tiers"], "### Tiers\n\nSupport for targets is sorted into five tiers with "
            "Tier 1 being the highest.\n", level=3),
]


@pytest.fixture
def kind_facts() -> list[dict]:
    return build_facts(KIND_FIXTURE, "0.14.0", 8, 0)[0]


def of_kind(records: list[dict], kind: str, answer_has: str) -> list[dict]:
    return [r for r in records if r["kind"] == kind and answer_has in r["messages"][1]["content"]]


def test_a_cloze_asks_for_a_name_from_what_the_sentence_says_of_it(kind_facts):
    """The reverse of a question by name: "what is designed for release builds …?" is answered by the name."""
    clozes = of_kind(kind_facts, "cloze", "FastThreadAllocator")
    asked_for = [r for r in clozes if r["term"] == "std.heap.FastThreadAllocator"]
    assert len(asked_for) == 4  # half of --phrasings 8 per blank
    for r in asked_for:
        q = r["messages"][0]["content"]
        assert "FastThreadAllocator" not in q and re.search(r"\bwhat\b", q, re.I) and q.endswith("?")
        # the value asked for first, then the sentence (not the sentence alone, whose words the question quotes)
        assert r["messages"][1]["content"].startswith(
            "`std.heap.FastThreadAllocator`: The new `std.heap.FastThreadAllocator` is designed for")
    assert any("many threads" not in r["messages"][0]["content"] for r in asked_for)  # crops leave parts out


def test_a_count_is_asked_with_how_many_and_a_list_of_names_is_no_fact(kind_facts):
    intro = [r for r in kind_facts if r["section"] == ["0.14.0 Release Notes"]]
    counts = [r["messages"][0]["content"] for r in intro if r["kind"] == "cloze" and r["term"] == "4321"]
    assert counts and all("how many commits" in q and "4321" not in q for q in counts)
    assert not [r for r in intro if "Alice" in r["messages"][1]["content"]]


def test_table_rows_are_facts_asked_by_their_first_cell(kind_facts):
    rows = [r for r in kind_facts if r["section"][-1] == "Target Table"]
    answers = {r["messages"][1]["content"].split("\n\n")[0] for r in rows}
    assert answers == {"Target `alpha-linux`: Level 1, Tests yes.", "Target `beta-wasi`: Level 3, Tests no."}
    assert {r["term"] for r in rows if r["kind"] == "term"} == {"alpha-linux", "beta-wasi"}
    assert not [r for r in rows if r["kind"] == "cloze"]  # "which target is level 3?" has many answers


def test_help_lines_are_facts_asked_from_their_description(kind_facts):
    rows = [r for r in kind_facts if r["section"][-1] == "Watching"]
    assert {r["messages"][1]["content"].split("\n\n")[0] for r in rows} == {
        "`--keep-going`: Rebuild whenever an input file changes."}
    clozes = [r["messages"][0]["content"] for r in rows if r["kind"] == "cloze"]
    assert clozes and all(q.endswith(" is this: Rebuild whenever an input file changes?") for q in clozes)
    # asked as users ask for a flag, as well as "what is this"
    assert {re.search(r"(?i)(what|which flag) is this", q).group(1).lower() for q in clozes} == {"what", "which flag"}


def test_keyword_questions_name_a_few_of_the_rarer_words_of_their_fact(kind_facts):
    questions = of_kind(kind_facts, "keywords", "FastThreadAllocator")
    assert questions
    sentence = questions[0]["messages"][1]["content"].split("\n\n")[0]
    for r in questions:
        named = re.search(r"about (.+?)\?| regarding (.+?)\?|with (.+?) in Zig|about (.+?) in the Zig|says about "
                          r"(.+?)\?|How do (.+?) fit", r["messages"][0]["content"])
        words = re.split(r", | and ", next(g for g in named.groups() if g))
        assert 2 <= len(words) <= 3 and all(w in sentence for w in words), r["messages"][0]["content"]
        assert not {"the", "for", "that", "new"} & {w.lower() for w in words}


def test_a_title_that_states_a_change_is_a_fact(kind_facts):
    """A section whose text is a link number says its fact only in its title."""
    rows = [r for r in kind_facts if r["section"][-1].startswith("@fooCast")]
    assert {r["messages"][1]["content"].split("\n\n")[0] for r in rows} == {
        "`@fooCast` allows changing slice length."}
    clozes = [r["messages"][0]["content"] for r in rows if r["kind"] == "cloze"]
    assert clozes and all("@fooCast" not in q and q.endswith("allows changing slice length?") for q in clozes)


def test_a_before_and_after_example_is_asked_name_by_name_both_ways(kind_facts):
    """"⬇️" between two blocks: each name the second writes differently is a fact, asked from the old name (what is
    it called now?) and from the new one (what was it called before?)."""
    rows = [r for r in kind_facts if r["section"][-1] == "Tags Renamed"]
    facts = {r["messages"][1]["content"].split("\n\n")[0].removeprefix("`ComptimeThing`: ") for r in rows}
    assert {"In code, `.ComptimeThing` is now written `.comptime_thing`.",
            'In code, `.Struct` is now written `.@"struct"`.'} <= facts
    asked = {(r["term"], r["direction"]): r["messages"][0]["content"] for r in rows if r["kind"] == "term"}
    questions = [q for r in rows if r["kind"] == "term" for q in [r["messages"][0]["content"]]]
    assert ("ComptimeThing", "old") in asked and ("comptime_thing", "new") in asked
    assert any(re.search(r"called now|new name", q) for q in questions if "ComptimeThing" in q)
    assert any(re.search(r"called before|old name", q) for q in questions if "comptime_thing" in q)
    clozes = [r for r in rows if r["kind"] == "cloze" and r["term"] == ".Struct"]
    assert clozes and all(r["messages"][1]["content"].startswith("`.Struct`:") for r in clozes)


def test_a_count_in_words_is_asked_with_how_many(kind_facts):
    counts = [r["messages"][0]["content"] for r in kind_facts if r["kind"] == "cloze" and r["term"] == "five"]
    assert counts and all("how many tiers" in q and "five" not in q for q in counts)
