"""A release other than 0.14.0 needs no code change: a small site of our own for 0.15.1, in the docgen markup."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_script, serve

from ziglora.common.io import read_jsonl, sha256_file

HEAD = '<!doctype html><html><head><style>p{}</style></head><body>'


def heading(level: int, anchor: str, title: str) -> str:
    return (f'<h{level} id="{anchor}"><a href="#toc-{anchor}">{title}</a> '
            f'<a class="hdr" href="#{anchor}">§</a></h{level}>')


def example(file: str, code: str, samp: str) -> str:
    return (f'<figure><figcaption class="zig-cap"><cite class="file">{file}</cite></figcaption>'
            f'<pre><code>{code}</code></pre></figure><figure><figcaption class="shell-cap">Shell</figcaption>'
            f'<pre><samp>{samp}</samp></pre></figure>')


LANGREF = HEAD + '<header><h1>Zig Language Reference</h1></header><nav><ul><li>toc</li></ul></nav><main>' \
    + heading(2, "Writers", "Writers") + "<p>New I/O interface.</p>" \
    + heading(3, "Writer-Interface", "Writer Interface") \
    + example("test_writer.zig", "test &quot;w&quot; {}",
              "$ <kbd>zig test test_writer.zig</kbd>\nAll 1 tests passed.\n") \
    + heading(2, "Errors", "Errors") \
    + example("bad.zig", "const x: u8 = 300;", '$ <kbd>zig build-obj bad.zig</kbd>\n'
              '<span class="sgr-31m">error: </span>type \'u8\' cannot represent integer value \'300\'\n') \
    + "</main></body></html>"

NOTES = HEAD + '<div id="contents"><h1>0.15.1 Release Notes</h1><p>Intro.</p>' \
    + heading(2, "Table-of-Contents", "Table of Contents") + "<nav><ul><li>x</li></ul></nav>" \
    + heading(2, "Language-Changes", "Language Changes") + "<p>usingnamespace removed.</p>" \
    + heading(3, "Writergate", "Writergate") \
    + example("writer.zig", "test {}", "$ <kbd>zig test writer.zig</kbd>\nAll 0 tests passed.\n") \
    + "</div></body></html>"


def write_site(root: Path) -> None:
    for rel, text in {
        "download/index.json": json.dumps({"master": {}, "0.15.1": {}, "0.14.0": {}}),
        "documentation/0.15.1/index.html": LANGREF,
        "download/0.15.1/release-notes.html": NOTES,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_builds_0_15_1_from_its_own_site(tmp_path, monkeypatch):
    write_site(tmp_path / "site")
    out = tmp_path / "raw"
    with serve(tmp_path / "site") as site:
        monkeypatch.setenv("ZIG_SITE_URL", site.url)
        for script in ("build_langref", "build_release_notes", "write_manifest"):
            assert run_script(script, "--zig-version", "0.15.1", "--out-root", str(out)).returncode == 0
    release = out / "zig-0.15.1"
    sections = list(read_jsonl(release / "langref_sections.jsonl"))
    assert [s["title_path"] for s in sections] == [["Writers"], ["Writers", "Writer Interface"], ["Errors"]]
    examples = {e["file"]: e for e in read_jsonl(release / "langref_examples.jsonl")}
    assert examples["test_writer.zig"]["command"] == "zig test test_writer.zig"
    assert examples["test_writer.zig"]["expected_output"] == "All 1 tests passed."
    assert examples["bad.zig"]["expected_error"] == "error: type 'u8' cannot represent integer value '300'"
    notes = list(read_jsonl(release / "release_notes_sections.jsonl"))
    assert [s["title_path"] for s in notes] == [
        ["0.15.1 Release Notes"], ["Language Changes"], ["Language Changes", "Writergate"],
    ]
    assert notes[0]["notes_version"] == "0.15.1"
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["zig_version"] == "0.15.1" and manifest["compiler"] == "0.15.1"
    assert [s["name"] for s in manifest["sources"]] == ["index.json", "langref", "release-notes"]
    assert {o["path"]: o["records"] for o in manifest["outputs"]} == {
        "langref.md": None, "langref_sections.jsonl": 3, "langref_examples.jsonl": 2,
        "release-notes.md": None, "release_notes_sections.jsonl": 3, "release_notes_examples.jsonl": 1,
    }
    assert all(sha256_file(release / o["path"]) == o["sha256"] for o in manifest["outputs"])
