"""build_stdlib.py on the real ziglang 0.14.0 lib/std and on a --zig-source fixture tree."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ziglora.common.io import read_jsonl
from ziglora.release.zig import ensure_zig

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_stdlib.py"), *args], capture_output=True, text=True, cwd=ROOT
    )


def test_real_stdlib_of_the_release(tmp_path):
    proc = run_script("--zig-version", "0.14.0", "--out-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    release = tmp_path / "zig-0.14.0"
    records = list(read_jsonl(release / "stdlib.jsonl"))
    std = ensure_zig("0.14.0").lib_dir / "std"
    assert len(records) == len(list(std.rglob("*.zig")))
    paths = [r["path"] for r in records]
    assert paths == sorted(paths)
    assert {"std/std.zig", "std/mem.zig", "std/fs/Dir.zig"} <= set(paths)
    mem = next(r for r in records if r["path"] == "std/mem.zig")
    assert mem["text"] == (std / "mem.zig").read_text(encoding="utf-8")
    stage = json.loads((release / "stages" / "build_stdlib.json").read_text())
    assert stage["outputs"][0]["records"] == len(records)
    assert stage["sources"][0]["url"] == "pypi:ziglang==0.14.0"
    assert stage["sources"][0]["not_utf8"] == []


def test_zig_source_tree_with_a_non_utf8_file(tmp_path):
    std = tmp_path / "zig-src" / "lib" / "std"
    (std / "os").mkdir(parents=True)
    (std / "std.zig").write_text('pub const os = @import("os/linux.zig");\n')
    (std / "os" / "linux.zig").write_bytes(b"// caf\xe9 in latin-1\npub const x = 1;\n")
    (std / "README.md").write_text("not zig\n")
    proc = run_script("--zig-version", "0.14.0", "--out-root", str(tmp_path / "out"), "--zig-source",
                      str(tmp_path / "zig-src"))
    assert proc.returncode == 0, proc.stderr
    assert "std/os/linux.zig is not valid UTF-8" in proc.stderr
    records = list(read_jsonl(tmp_path / "out" / "zig-0.14.0" / "stdlib.jsonl"))
    assert [r["path"] for r in records] == ["std/os/linux.zig", "std/std.zig"]
    assert records[0]["text"] == "// caf\ufffd in latin-1\npub const x = 1;\n"
    stage = json.loads((tmp_path / "out" / "zig-0.14.0" / "stages" / "build_stdlib.json").read_text())
    assert stage["sources"][0]["not_utf8"] == ["std/os/linux.zig"]


def test_zig_source_without_lib_std_is_a_clear_error(tmp_path):
    proc = run_script("--zig-version", "0.14.0", "--out-root", str(tmp_path), "--zig-source", str(tmp_path))
    assert proc.returncode != 0
    assert "must be a Zig source tree holding lib/std" in proc.stderr
    assert not (tmp_path / "zig-0.14.0").exists()
