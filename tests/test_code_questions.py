"""Fact questions drawn from a section's code blocks: the calls a block makes, asked by name, by the call before
them and by what the block is about, answered with the lines that make them."""
from __future__ import annotations

import re

from test_build_qa import section

from ziglora.data.questions.build import build_facts
from ziglora.data.questions.code import CALL_FORMS

UPGRADE_CODE = ("var out_buffer: [64]u8 = undefined;\nvar out_writer = std.fs.File.openOutput().writer(&out_buffer);\n"
                "const out = &out_writer.interface;\ntry out.print(\"...\", .{});\ntry out.drain();\n")
LOOP_CODE = "while (source.takeUntilMarker('|')) |part| {\n    // use part...\n} else |err| return err;\n"
PLAIN_CODE = "const x = add(1, 2);\nvar y = scale(x);\n"
OLD_CODE = "const w = std.io.oldWriter();\n"
NEW_CODE = "const w = std.io.newWriter();\n"
CODE_FIXTURE = [
    section(["Standard Library", "Upgrading std.io.getOutput().print()"],
            "### Upgrading std.io.getOutput().print()\n\nPlease buffer your output! And remember to drain!\n\n"
            f"```\n{UPGRADE_CODE}```\n", level=3, code=[UPGRADE_CODE]),
    section(["Standard Library", "New std.Io.Source API"],
            "### New std.Io.Source API\n\nSources are simpler now. For instance look at how reading up to a marker "
            f"works now:\n\n```\n{LOOP_CODE}```\n", level=3, code=[LOOP_CODE]),
    section(["Language Changes", "Plain Arithmetic"], "### Plain Arithmetic\n\nAdding numbers still works the "
            f"same way as it always did:\n\n```zig\n{PLAIN_CODE}```\n\n```\n$ zig build run\nhello\n```\n",
            level=3, code=[PLAIN_CODE, "$ zig build run\nhello\n"]),
    section(["Standard Library", "Writer Moved"], "### Writer Moved\n\nThe writer function moved:\n\n"
            f"```zig\n{OLD_CODE}```\n\n⬇️\n\n```zig\n{NEW_CODE}```\n", level=3, code=[OLD_CODE, NEW_CODE]),
]


def code_records(fixture: list[dict] = CODE_FIXTURE) -> list[dict]:
    return [r for r in build_facts(fixture, "0.15.1", 8, 0)[0] if r["kind"].startswith("code")]


def of(records: list[dict], kind: str, term: str | None) -> list[dict]:
    return [r for r in records if r["kind"] == kind and r["term"] == term]


def test_a_call_a_block_makes_is_asked_by_name_and_answered_with_its_line():
    records = code_records()
    opened = of(records, "code", "std.fs.File.openOutput()")
    assert len(opened) == len(CALL_FORMS)
    assert {r["messages"][0]["content"] for r in opened} == {f.format(t="std.fs.File.openOutput()", ver="0.15.1")
                                                             for f in CALL_FORMS}
    answer = opened[0]["messages"][1]["content"]
    assert answer.startswith("`std.fs.File.openOutput()`: `var out_writer = std.fs.File.openOutput()"
                             ".writer(&out_buffer);`\n\n")
    assert "This is part of the Zig 0.15.1 release notes on Upgrading std.io.getOutput().print()." in answer
    assert answer.endswith(f"```zig\n{UPGRADE_CODE.rstrip()}\n```")
    # a method the prose names ("remember to drain") is asked, and so is the call after the one before it
    assert of(records, "code", "drain()")
    follows = of(records, "code-next", "drain()")
    assert follows and all("out.print()" in r["messages"][0]["content"] for r in follows)
    assert all(r["messages"][1]["content"].startswith("`drain()`: `try out.drain();`") for r in follows)
    # an example's own plain methods (`writer`, `print`) are not asked about by name
    assert not of(records, "code", "print()") and not of(records, "code", "writer()")


def test_an_upgrade_title_names_what_the_code_replaces():
    records = code_records()
    upgrade = of(records, "code-topic", "std.io.getOutput")
    assert upgrade and {r["direction"] for r in upgrade} == {"old"}
    for r in upgrade:
        assert "std.io.getOutput" in r["messages"][0]["content"]
        assert r["messages"][1]["content"].startswith("`std.fs.File.openOutput()`: `var out_writer")
        assert "`drain()`: `try out.drain();`" in r["messages"][1]["content"]


def test_a_fragment_is_asked_by_its_call_its_title_names_and_its_lead_in():
    records = code_records()
    assert of(records, "code", "takeUntilMarker()")  # a loop no declaration starts is Zig all the same
    about = of(records, "code-topic", "std.Io.Source")
    assert about and {r["direction"] for r in about} == {"about"}
    lead = [r for r in of(records, "code-topic", None) if r["section"][-1] == "New std.Io.Source API"]
    assert lead and all(r["messages"][1]["content"].startswith("`takeUntilMarker()`: `while (") for r in lead)
    lead_in = "For instance look at how reading up to a marker works now"
    for r in lead:  # a few words in a row of the sentence leading into the block
        words = re.search(r"(?:: |for this: |code, )([a-z ]+?)(?:[:?.]|$)", r["messages"][0]["content"]).group(1)
        assert len(words.split()) >= 3 and words in lead_in


def test_a_block_with_no_distinctive_call_old_code_and_a_shell_session_yield_nothing():
    records = code_records()
    assert not [r for r in records if r["section"][-1] == "Plain Arithmetic"]
    moved = [r for r in records if r["section"][-1] == "Writer Moved"]
    assert moved and not [r for r in moved if "oldWriter" in r["messages"][1]["content"]]  # only the new block
    assert of(moved, "code", "std.io.newWriter()")


def test_code_questions_are_seeded_and_asked_once():
    first = code_records()
    assert first and code_records() == first
    assert len({r["messages"][0]["content"] for r in first}) == len(first)
    assert len({r["id"] for r in first}) == len(first)
