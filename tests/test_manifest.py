"""manifest.json (ziglora/data/manifest.py, scripts/write_manifest.py) on stage records written by the real stage
helpers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_script

from ziglora.common.io import write_jsonl
from ziglora.data.manifest import ManifestError, build_manifest
from ziglora.data.stages import output_entry, record_stage

INDEX = {"name": "index.json", "url": "http://site/download/index.json", "bytes": 2, "sha256": "a" * 64}


def make_release(root: Path) -> Path:
    release = root / "zig-0.14.0"
    write_jsonl(release / "langref_examples.jsonl", [{"id": "langref/a.zig"}, {"id": "langref/b.zig"}])
    (release / "stdlib.jsonl").write_text('{"path": "std/mem.zig", "text": ""}\n')
    record_stage(release, "build_langref", [INDEX, {**INDEX, "name": "langref", "sha256": "b" * 64}],
                 [output_entry(release, release / "langref_examples.jsonl", "examples", 2)])
    record_stage(release, "build_stdlib", [INDEX], [output_entry(release, release / "stdlib.jsonl", "stdlib", 1)])
    return release


def test_manifest_collects_stages(tmp_path):
    release = make_release(tmp_path)
    (release / "validation.json").write_text(json.dumps({"summary": {"ok": 2, "failed": 0}, "results": []}))
    assert run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["zig_version"] == "0.14.0" and manifest["compiler"] == "0.14.0"
    assert [s["name"] for s in manifest["sources"]] == ["index.json", "langref"]  # shared index.json once
    assert [(o["path"], o["kind"], o["records"]) for o in manifest["outputs"]] == [
        ("langref_examples.jsonl", "examples", 2), ("stdlib.jsonl", "stdlib", 1),
    ]
    assert manifest["validation"] == {"ok": 2, "failed": 0}


def test_rerun_rewrites_nothing(tmp_path):
    release = make_release(tmp_path)
    assert run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    mtime = (release / "manifest.json").stat().st_mtime_ns
    assert run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path)).returncode == 0
    assert (release / "manifest.json").stat().st_mtime_ns == mtime


def test_stale_output_fails_and_writes_nothing(tmp_path):
    release = make_release(tmp_path)
    write_jsonl(release / "langref_examples.jsonl", [{"id": "langref/a.zig"}])  # re-built after its record
    proc = run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    err = proc.stderr
    assert "langref_examples.jsonl changed since build_langref recorded it (re-run build_langref)" in err
    assert not (release / "manifest.json").exists()


def test_missing_output_and_missing_stages(tmp_path):
    release = make_release(tmp_path)
    (release / "stdlib.jsonl").unlink()
    proc = run_script("write_manifest", "--zig-version", "0.14.0", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    assert "stdlib.jsonl is missing (re-run build_stdlib)" in proc.stderr
    proc = run_script("write_manifest", "--zig-version", "0.15.1", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    assert "no stage records" in proc.stderr


def test_sources_that_differ_between_stages_are_refused(tmp_path):
    release = make_release(tmp_path)
    record_stage(release, "build_stdlib", [{**INDEX, "sha256": "c" * 64}],
                 [output_entry(release, release / "stdlib.jsonl", "stdlib", 1)])
    with pytest.raises(ManifestError, match="index.json' differs between stages"):
        build_manifest("0.14.0", release)


def test_manifest_of_the_real_corpus(built_014, tmp_path):
    manifest = build_manifest("0.14.0", built_014)
    records = {o["path"]: o["records"] for o in manifest["outputs"]}
    assert records["langref_examples.jsonl"] == 303 and records["release_notes_sections.jsonl"] == 89
    assert [s["name"] for s in manifest["sources"]] == ["index.json", "langref", "release-notes"]
    assert manifest["pins"] == {
        "compiler": {"value": "0.14.0", "origin": "verified in ziglora/release/versions.py"},
        "notes_version": {"value": "0.14.0", "origin": "verified in ziglora/release/versions.py"},
    }


def test_pins_two_stages_chose_differently_are_refused(tmp_path):
    release = make_release(tmp_path)
    pin = {"notes_version": {"value": "0.14.0", "origin": "verified in ziglora/release/versions.py"}}
    record_stage(release, "build_langref", [INDEX, {**INDEX, "name": "langref", "sha256": "b" * 64, "pins": pin}],
                 [output_entry(release, release / "langref_examples.jsonl", "examples", 2)])
    other = {"notes_version": {"value": "0.13.0", "origin": "given on the command line"}}
    record_stage(release, "build_stdlib", [{**INDEX, "name": "lib/std", "sha256": "d" * 64, "pins": other}],
                 [output_entry(release, release / "stdlib.jsonl", "stdlib", 1)])
    with pytest.raises(ManifestError, match=r"pin notes_version differs between stages \(0.14.0 vs 0.13.0\)"):
        build_manifest("0.14.0", release)


def test_compiler_override_without_a_std_stage_is_recorded(tmp_path, monkeypatch):
    release = make_release(tmp_path)
    monkeypatch.setenv("ZIGLORA_COMPILER", "0.14.1")
    manifest = build_manifest("0.14.0", release, "0.14.0")
    assert manifest["compiler"] == "0.14.1"
    assert manifest["pins"]["compiler"] == {"value": "0.14.1", "origin": "from $ZIGLORA_COMPILER"}
