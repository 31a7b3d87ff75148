"""build_release_notes.py on the real Zig 0.14.0 release notes (mirror over loopback)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from conftest import run_script

from ziglora.common.io import read_jsonl


def test_sections_are_the_introduction_plus_every_heading_but_the_toc(built_014: Path):
    sections = list(read_jsonl(built_014 / "release_notes_sections.jsonl"))
    # the page has 89 h2..h6 headings; "Table of Contents" (its body is the TOC <nav>) is dropped and the
    # introduction under the <h1> becomes the first section: 1 + 88 = 89
    assert len(sections) == 89
    assert sections[0]["title_path"] == ["0.14.0 Release Notes"] and sections[0]["level"] == 1
    assert "9 months of work" in sections[0]["text"]
    assert all(s["source"] == "release-notes" and s["notes_version"] == "0.14.0" for s in sections)
    anchors = [s["anchor"] for s in sections[1:]]
    assert "Table-of-Contents" not in anchors and len(set(anchors)) == 88
    assert anchors[0] == "Target-Support" and anchors[-1] == "Thank-You-Sponsors"
    # headings nest as on the site: h2 for a top-level section, h3 inside it, h4 below that
    assert Counter(s["level"] for s in sections) == {1: 1, 2: 12, 3: 66, 4: 10}
    labeled = next(s for s in sections if s["anchor"] == "Labeled-Switch")
    assert labeled["title_path"] == ["Language Changes", "Labeled Switch"] and labeled["level"] == 3
    assert labeled["text"].startswith("### Labeled Switch\n")
    assert labeled["code_blocks"][0]["file"] == "labeled_switch.zig"
    tier = next(s for s in sections if s["anchor"] == "Tier-1")
    assert tier["title_path"] == ["Target Support", "Tier System", "Tier 1"]
    assert tier["text"].startswith("#### Tier 1\n")
    assert all(s["text"].startswith("#" * s["level"] + " ") for s in sections)


def test_examples_carry_commands_and_outputs(built_014: Path):
    examples = list(read_jsonl(built_014 / "release_notes_examples.jsonl"))
    assert len(examples) == 13
    assert [e["id"] for e in examples][:2] == ["release-notes/labeled_switch.zig", "release-notes/decl_literals.zig"]
    by_file = {e["file"]: e for e in examples}
    assert by_file["labeled_switch.zig"]["command"] == "zig test labeled_switch.zig"
    assert by_file["labeled_switch.zig"]["expected_output"].endswith("All 2 tests passed.")
    assert by_file["faulty.zig"]["command"] is None  # shown without a run
    assert sum(1 for e in examples if e["command"]) == 12
    assert all(e["notes_version"] == "0.14.0" and "validation" not in e for e in examples)


def test_markdown_keeps_code_and_drops_chrome(built_014: Path):
    md = (built_014 / "release-notes.md").read_text(encoding="utf-8")
    assert md.startswith("# 0.14.0 Release Notes\n\nDownload & Documentation\n")
    assert md.count("```zig\n") == 13 and "`labeled_switch.zig`\n\n```zig\ntest \"labeled switch\"" in md
    assert "```diff\n-    const copy_zig_h = b.addWriteFiles();" in md  # bare <pre> blocks stay fenced too
    for chrome in ("§", "toc-", "Table of Contents", "<style", "margin-left", "Zero the Ziguana"):
        assert chrome not in md, chrome


def test_patch_release_uses_its_minor_releases_notes(mirror_env, tmp_path):
    proc = run_script("build_release_notes", "--zig-version", "0.14.1", "--out-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Zig 0.14.1 has no release notes of its own; using the 0.14.0 notes" in proc.stdout
    release = tmp_path / "zig-0.14.1"
    assert len(list(read_jsonl(release / "release_notes_sections.jsonl"))) == 89
    assert {e["notes_version"] for e in read_jsonl(release / "release_notes_examples.jsonl")} == {"0.14.0"}
    stage = json.loads((release / "stages" / "build_release_notes.json").read_text())
    notes = stage["sources"][1]
    assert notes["notes_version"] == "0.14.0" and notes["url"].endswith("/download/0.14.0/release-notes.html")


def test_0_15_1_notes_from_the_mirror(mirror_env, tmp_path):
    # 0.15.2 has no notes of its own: its verified pin is 0.15.1, whose page has its own sections and examples
    proc = run_script("build_release_notes", "--zig-version", "0.15.2", "--out-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "notes_version = 0.15.1 (verified in ziglora/release/versions.py)" in proc.stdout
    release = tmp_path / "zig-0.15.2"
    sections = list(read_jsonl(release / "release_notes_sections.jsonl"))
    assert Counter(s["level"] for s in sections) == {1: 1, 2: 12, 3: 45, 4: 16}
    writergate = next(s for s in sections if s["anchor"] == "Writergate")
    assert writergate["title_path"] == ["Standard Library", "Writergate"]
    assert len(list(read_jsonl(release / "release_notes_examples.jsonl"))) == 6
    assert (release / "sources" / "release-notes-0.15.1.html").is_file()
