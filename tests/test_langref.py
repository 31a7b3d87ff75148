"""build_langref.py on the real Zig 0.14.0 language reference, served from the mirror over loopback."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_script, serve, shared_dir

from ziglora.common.io import read_jsonl, write_jsonl
from ziglora.data.stages import refresh_outputs


def test_examples_have_files_commands_and_expectations(built_014: Path):
    examples = list(read_jsonl(built_014 / "langref_examples.jsonl"))
    assert len(examples) == 303
    assert all(e["file"] and e["code"].strip() for e in examples)
    # six are docgen "syntax blocks" captioned with a name, not a file: e.g. performFn_1, "@cImport Expression"
    assert sum(1 for e in examples if e["file"].endswith(".zig")) == 297
    assert len({e["id"] for e in examples}) == 303
    assert all("validation" not in e for e in examples)  # validate_examples.py adds it
    by_file = {e["file"]: e for e in examples}
    hello = by_file["hello.zig"]
    assert hello["command"] == "zig build-exe hello.zig"
    assert hello["expected_output"] == "Hello, world!" and hello["expected_error"] is None
    assert hello["section"] == ["Hello World"]
    assert 'try stdout.print("Hello, {s}!\\n", .{"world"});' in hello["code"]  # entities decoded, no markup
    bad = by_file["invalid_doc-comment.zig"]
    assert bad["command"] == "zig build-obj invalid_doc-comment.zig" and bad["expected_output"] is None
    assert "error: expected type expression, found 'a document comment'" in bad["expected_error"]
    commands = [e["command"] for e in examples if e["command"]]
    assert len(commands) == 249
    assert sum(1 for e in examples if e["expected_error"]) == 45
    assert any(c.endswith(" -lc") for c in commands)  # flags the docs needed are kept
    assert "zig test test_setRuntimeSafety_builtin.zig -OReleaseFast" in commands
    assert not any("<" in e["code"] and "<span" in e["code"] for e in examples)


def test_sections_and_markdown_keep_structure_without_chrome(built_014: Path):
    sections = list(read_jsonl(built_014 / "langref_sections.jsonl"))
    assert len(sections) == 343
    assert {s["level"] for s in sections} == {2, 3, 4}
    assert sections[0]["title_path"] == ["Introduction"] and sections[0]["anchor"] == "Introduction"
    ints = next(s for s in sections if s["anchor"] == "Integers")
    assert ints["title_path"] == ["Values", "Integers"] if ints["level"] == 3 else ["Integers"]
    assert all(s["text"].startswith("#" * s["level"] + " " + s["title_path"][-1] + "\n") for s in sections)
    assert sum(len(s["code_blocks"]) for s in sections) == 304  # 303 examples + the @import("builtin") listing
    md = (built_014 / "langref.md").read_text(encoding="utf-8")
    assert md.startswith("# Zig Language Reference\n\n## Introduction\n")
    assert len(re.findall(r"^#{2,4} ", md, re.M)) == 343
    assert md.count("```zig\n") == 304 and "`hello.zig`\n\n```zig\nconst std" in md
    for chrome in ("§", "toc-", "{#embed", "<style", "<script", "--nav-width", "Table of Contents", "<span"):
        assert chrome not in md, chrome


def test_stage_record_lists_sources_and_outputs(built_014: Path):
    stage = json.loads((built_014 / "stages" / "build_langref.json").read_text())
    assert [s["name"] for s in stage["sources"]] == ["index.json", "langref"]
    assert stage["sources"][1]["url"].endswith("/ziglang.org/documentation/0.14.0/")
    assert {o["path"]: o["records"] for o in stage["outputs"]} == {
        "langref.md": None, "langref_sections.jsonl": 343, "langref_examples.jsonl": 303,
    }


def test_cached_rerun_does_no_network_io_and_rewrites_nothing(tmp_path, monkeypatch):
    scripts = ("build_langref", "build_release_notes", "write_manifest")
    with serve(shared_dir() / "zig-mirror") as site:
        monkeypatch.setenv("ZIG_SITE_URL", f"{site.url}/ziglang.org")
        for script in scripts:
            assert run_script(script, "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    # the server is gone now: any request would fail the run
    release = tmp_path / "zig-0.14.0"
    # As validate_examples.py leaves the examples: each record with its `validation`, the owner's record updated.
    examples = [release / "langref_examples.jsonl", release / "release_notes_examples.jsonl"]
    for path in examples:
        write_jsonl(path, [{**r, "validation": {"status": "ok", "reason": "output matches", "seconds": 0.5}}
                           for r in read_jsonl(path)])
    refresh_outputs(release, examples)
    assert run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in release.rglob("*") if p.is_file()}
    assert len(before) == 15  # 3 sources and the URLs they came from, 6 outputs, 2 stage records, manifest.json
    for script in scripts:
        assert run_script(script, "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in release.rglob("*") if p.is_file()} == before


def test_unknown_release_lists_what_index_json_knows(mirror_env, tmp_path):
    # 0.16.0 is in our version table but not in the mirror's index.json
    proc = run_script("build_langref", "--zig-version", "0.16.0", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    err = proc.stderr
    assert "Zig 0.16.0 is not a release on" in err and "0.15.2, 0.15.1, 0.14.1, 0.14.0, 0.13.0" in err
    assert not (tmp_path / "zig-0.16.0" / "langref.md").exists()


def test_master_is_not_a_release(mirror_env, tmp_path):
    # index.json lists master (a moving development build); releases the table lacks are test_latest.py's
    proc = run_script("build_langref", "--zig-version", "master", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    assert "Zig master is not a release on" in proc.stderr
    assert not (tmp_path / "zig-master" / "langref.md").exists()


def test_cached_index_without_the_release_is_fetched_again(mirror_env, tmp_path):
    sources = tmp_path / "zig-0.14.0" / "sources"
    sources.mkdir(parents=True)
    (sources / "index.json").write_text('{"0.13.0": {}}')  # an old copy from before 0.14.0 was published
    assert run_script("build_langref", "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    assert "0.14.0" in json.loads((sources / "index.json").read_text())


def test_page_without_structure_is_an_error_naming_the_url(tmp_path, monkeypatch):
    site_root = tmp_path / "site"
    (site_root / "download").mkdir(parents=True)
    (site_root / "download" / "index.json").write_text('{"0.14.0": {}}')
    (site_root / "documentation" / "0.14.0").mkdir(parents=True)
    (site_root / "documentation" / "0.14.0" / "index.html").write_text("<html><body><p>Maintenance</p></body></html>")
    out = tmp_path / "raw"
    with serve(site_root) as site:
        monkeypatch.setenv("ZIG_SITE_URL", site.url)
        proc = run_script("build_langref", "--zig-version", "0.14.0", "--out-root", str(out))
    assert proc.returncode == 2
    err = proc.stderr
    assert f"{site.url}/documentation/0.14.0/: no section headings" in err
    release = out / "zig-0.14.0"
    assert sorted(p.name for p in release.iterdir()) == ["sources"]  # no outputs, no stage record
    assert not (release / "sources" / "langref.html").exists()  # the bad page is not trusted next time


def test_page_without_examples_is_an_error(tmp_path, monkeypatch):
    site_root = tmp_path / "site"
    (site_root / "download").mkdir(parents=True)
    (site_root / "download" / "index.json").write_text('{"0.14.0": {}}')
    (site_root / "documentation" / "0.14.0").mkdir(parents=True)
    (site_root / "documentation" / "0.14.0" / "index.html").write_text('<body><h2 id="A">A</h2><p>text</p></body>')
    with serve(site_root) as site:
        monkeypatch.setenv("ZIG_SITE_URL", site.url)
        proc = run_script("build_langref", "--zig-version", "0.14.0", "--out-root", str(tmp_path / "raw"))
    assert proc.returncode == 2
    assert "no code examples" in proc.stderr
    assert not (tmp_path / "raw" / "zig-0.14.0" / "langref_sections.jsonl").exists()


def test_non_utf8_page_is_built_and_reported(tmp_path, monkeypatch):
    site_root = tmp_path / "site"
    (site_root / "download").mkdir(parents=True)
    (site_root / "download" / "index.json").write_text('{"0.14.0": {}}')
    (site_root / "documentation" / "0.14.0").mkdir(parents=True)
    page = ('<body><h2 id="A"><a href="#toc-A">Caf\xe9</a></h2><figure><figcaption class="zig-cap">'
            '<cite class="file">a.zig</cite></figcaption><pre><code>test {}</code></pre></figure></body>')
    (site_root / "documentation" / "0.14.0" / "index.html").write_bytes(page.encode("latin-1"))
    with serve(site_root) as site:
        monkeypatch.setenv("ZIG_SITE_URL", site.url)
        proc = run_script("build_langref", "--zig-version", "0.14.0", "--out-root", str(tmp_path / "raw"))
    assert proc.returncode == 0, proc.stderr
    assert "1 byte(s) are not UTF-8" in proc.stderr
    release = tmp_path / "raw" / "zig-0.14.0"
    assert next(read_jsonl(release / "langref_sections.jsonl"))["title_path"] == ["Caf\ufffd"]
    stage = json.loads((release / "stages" / "build_langref.json").read_text())
    assert stage["sources"][1]["invalid_utf8_bytes"] == 1


@pytest.mark.parametrize("script", ["build_langref", "build_release_notes", "write_manifest"])
def test_help_reads_like_documentation(script):
    proc = subprocess.run([sys.executable, f"scripts/{script}.py", "--help"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--zig-version" in proc.stdout and "--out-root" in proc.stdout and "manifest" in proc.stdout
