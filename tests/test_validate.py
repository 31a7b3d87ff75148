"""validate_examples.py (ziglora/data/validate/) with the real Zig 0.14.0 compiler on hand-written example records.

One Zig global cache dir serves the whole session, so std is compiled once for all tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ziglora.common.io import read_jsonl, sha256_file, write_jsonl
from ziglora.data.stages import output_entry, record_stage
from ziglora.data.validate.compare import normalize
from ziglora.data.validate.plan import Plan, Skip, plan_cookbook, plan_doc_example

ROOT = Path(__file__).resolve().parents[1]

PASSING = """const std = @import("std");

test "one" {
    try std.testing.expect(1 + 1 == 2);
}

test "two" {
    try std.testing.expectEqual(4, 2 * 2);
}
"""
OUT_OF_RANGE = """test "too big" {
    const small: u8 = 300;
    _ = small;
}
"""
HELLO = """const std = @import("std");

pub fn main() void {
    std.debug.print("Hello, world!\\n", .{});
}
"""


def example(file: str, code: str, command: str | None, out: str | None = None, err: str | None = None,
            source: str = "langref") -> dict:
    return {"id": f"{source}/{file}", "source": source, "file": file, "code": code, "command": command,
            "expected_output": out, "expected_error": err, "section": ["Tests"]}


LANGREF = [
    example("passing.zig", PASSING, "zig test passing.zig",
            out="1/2 passing.test.one...OK\n2/2 passing.test.two...OK\nAll 2 tests passed.\n"),
    # As the docs print it: the generator's path prefix and the reference trace differ from ours.
    example("out_of_range.zig", OUT_OF_RANGE, "zig test out_of_range.zig",
            err="doc/langref/out_of_range.zig:2:23: error: type 'u8' cannot represent integer value '300'\n"
                "    const small: u8 = 300;\n                      ^~~\n"),
    example("hello_moon.zig", HELLO, "zig build-exe hello_moon.zig\n./hello_moon", out="Hello, moon!\n"),
    example("windows_only.zig", PASSING, "zig test windows_only.zig -target x86_64-windows"),
    example("uses_sqlite.zig", HELLO, "zig build-exe uses_sqlite.zig -lsqlite3"),
    example("piped.h", "", "zig translate-c piped.h | grep FOO"),
    example("fragment.zig", "fn f() void {\n    undeclared();\n}\n", None),
    example("unparsable.zig", "fn f() void {\n", None),
]
RELEASE_NOTES = [example("hello.zig", HELLO, "zig build-exe hello.zig", out="Hello, world!", source="release-notes")]
COOKBOOK = [
    {"id": "cookbook/01-01-hello", "source": "cookbook", "file": "assets/src/01-01.zig", "code": HELLO,
     "messages": []},
    {"id": "cookbook/14-01-sqlite", "source": "cookbook", "file": "assets/src/14-01.zig",
     "code": 'const sqlite = @import("sqlite");\npub fn main() void {}\n', "messages": []},
]


@pytest.fixture(scope="session")
def zig_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zig-global-cache")


def run_validate(out_root: Path, zig_cache: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "validate_examples.py"), "--zig-version", "0.14.0",
         "--out-root", str(out_root), "--zig-cache-dir", str(zig_cache), "--cache-dir", str(cache)],
        capture_output=True, text=True, cwd=ROOT,
    )


def test_validation_with_the_real_compiler(tmp_path, zig_cache):
    release = tmp_path / "zig-0.14.0"
    write_jsonl(release / "langref_examples.jsonl", LANGREF)
    # as build_langref.py leaves it: its stage record owns the examples file
    record_stage(release, "build_langref", [], [output_entry(release, release / "langref_examples.jsonl",
                                                             "examples", len(LANGREF))])
    write_jsonl(release / "release_notes_examples.jsonl", RELEASE_NOTES)
    write_jsonl(release / "cookbook.jsonl", COOKBOOK)
    proc = run_validate(tmp_path, zig_cache, tmp_path / "results")
    assert proc.returncode == 0, proc.stderr

    langref = {r["file"]: r["validation"] for r in read_jsonl(release / "langref_examples.jsonl")}
    assert langref["passing.zig"]["status"] == "ok", langref["passing.zig"]
    assert langref["out_of_range.zig"] == {**langref["out_of_range.zig"], "status": "ok",
                                           "reason": "compile error matches"}
    assert langref["hello_moon.zig"]["status"] == "failed"
    assert langref["hello_moon.zig"]["reason"] == "output differs: expected 'Hello, moon!', got 'Hello, world!'"
    assert langref["windows_only.zig"] == {"status": "skipped", "reason": "running needs a x86_64-windows machine",
                                           "seconds": 0.0}
    assert langref["uses_sqlite.zig"]["reason"] == "needs the C library 'sqlite3'"
    assert langref["piped.h"]["status"] == "skipped"
    assert langref["fragment.zig"]["status"] == "ok"
    assert langref["unparsable.zig"]["status"] == "failed"
    assert "unparsable.zig:2:1: error: expected" in langref["unparsable.zig"]["reason"]
    assert all(v["seconds"] > 0 for f, v in langref.items() if v["status"] != "skipped")

    # The docs' command only builds; the output they show is the program's, so it is run too.
    [notes] = read_jsonl(release / "release_notes_examples.jsonl")
    assert notes["validation"]["status"] == "ok", notes["validation"]

    cookbook = {r["id"]: r["validation"] for r in read_jsonl(release / "cookbook.jsonl")}
    assert cookbook["cookbook/01-01-hello"]["status"] == "ok"
    assert cookbook["cookbook/01-01-hello"]["reason"] == "compiled, not run"
    assert cookbook["cookbook/14-01-sqlite"] == {"status": "skipped", "seconds": 0.0,
                                                 "reason": "needs package(s) from build.zig.zon: sqlite"}

    summary = json.loads((release / "validation.json").read_text())
    assert summary["compiler"] == "0.14.0"
    assert summary["sources"] == {"langref": {"ok": 3, "failed": 2, "skipped": 3},
                                  "release-notes": {"ok": 1, "failed": 0, "skipped": 0},
                                  "cookbook": {"ok": 1, "failed": 0, "skipped": 1}}
    assert [f["id"] for f in summary["failures"]] == ["langref/hello_moon.zig", "langref/unparsable.zig"]
    assert summary["failures"][0]["reason"] == langref["hello_moon.zig"]["reason"]
    assert len(summary["skipped"]) == 4
    assert "(0 from the result cache" in proc.stdout
    assert summary["seconds"] == round(sum(v["seconds"] for v in langref.values()) + notes["validation"]["seconds"]
                                       + sum(v["seconds"] for v in cookbook.values()), 1)
    stage = json.loads((release / "stages" / "validate_examples.json").read_text())
    assert [o["path"] for o in stage["outputs"]] == ["validation.json"]
    [owner] = json.loads((release / "stages" / "build_langref.json").read_text())["outputs"]
    assert owner["sha256"] == sha256_file(release / "langref_examples.jsonl")  # the manifest will agree

    # Unchanged inputs: every compile comes from the result cache and the records stay the same.
    outputs = ("langref_examples.jsonl", "cookbook.jsonl", "validation.json", "stages/validate_examples.json")
    before = {p: (release / p).read_bytes() for p in outputs}
    proc = run_validate(tmp_path, zig_cache, tmp_path / "results")
    assert proc.returncode == 0, proc.stderr
    assert "(7 from the result cache" in proc.stdout
    assert {p: (release / p).read_bytes() for p in before} == before

    # A changed file is a new cache key: that one sample runs again.
    changed = [dict(r) for r in LANGREF]
    changed[0] = {**changed[0], "code": PASSING.replace("2 * 2", "3 + 1")}
    write_jsonl(release / "langref_examples.jsonl", changed)
    proc = run_validate(tmp_path, zig_cache, tmp_path / "results")
    assert proc.returncode == 0, proc.stderr
    assert "(6 from the result cache" in proc.stdout


C_IMPORT = """const c = @cImport({
    @cInclude("stdlib.h");
});

pub fn main() void {
    _ = c;
}
"""


def test_output_of_a_cold_cache_is_checked_the_same_on_every_run(tmp_path, zig_cache):
    """--verbose-cimport reports the C import only when the compiler does it, i.e. on a cache miss: with the
    shared cache the second run printed nothing and failed. Each run compiles it with a private cache."""
    release = tmp_path / "zig-0.14.0"
    hashed = "/home/someone/zig/.zig-cache/o/0123456789abcdef0123456789abcdef"
    write_jsonl(release / "langref_examples.jsonl", [
        example("cimport_paths.zig", C_IMPORT, "zig build-exe cimport_paths.zig -lc --verbose-cimport\n./cimport_paths",
                out=f"info(compilation): C import source: {hashed}/cimport.h\n"
                    f"info(compilation): C import .d file: {hashed}/cimport.h.d\n"),
        example("passing.zig", PASSING, "zig test passing.zig",
                out="1/2 passing.test.one...OK\n2/2 passing.test.two...OK\nAll 2 tests passed.\n"),
    ])
    statuses = []
    for run in ("first", "second"):  # no result cache: both runs compile, with the same shared Zig cache
        assert run_validate(tmp_path, zig_cache, tmp_path / run).returncode == 0
        statuses.append({r["file"]: r["validation"]["status"] for r in read_jsonl(release / "langref_examples.jsonl")})
    assert statuses == [{"cimport_paths.zig": "ok", "passing.zig": "ok"}] * 2


def test_no_input_files_is_a_clear_error(tmp_path, zig_cache):
    proc = run_validate(tmp_path, zig_cache, tmp_path / "results")
    assert proc.returncode != 0
    assert "run the build_*.py scripts first" in proc.stderr


def test_normalize_drops_what_differs_between_machines():
    docs = (
        "1/1 t.test.boom...thread 211638 panic: integer overflow\n"
        "/home/someone/src/zig/doc/langref/t.zig:4:7: 0x1048c12 in test.boom (test)\n"
        "    x += 1;\n"
        "      ^\n"
        "???:?:?: 0x0 in ??? (???)\n"
        "error: the following test command crashed:\n"
        "/home/someone/src/zig/.zig-cache/o/08ad046b/test --seed=0xaf095082\n"
    )
    ours = (
        "1/1 t.test.boom...thread 99 panic: integer overflow\n"
        "/tmp/ziglora-validate-x/t.zig:4:7: 0x1049999 in test.boom (test)\n"
        "    x += 1;\n"
        "      ^\n"
        "/opt/lib/compiler/test_runner.zig:214:25: 0x10ef185 in mainTerminal (test)\n"
        "        if (test_fn.func()) |_| {\n"
        "                        ^\n"
        "error: the following test command crashed:\n"
        "/root/.cache/zig/o/1234/test --seed=0x1\n"
    )
    assert normalize(docs) == normalize(ours) == ["1/1 t.test.boom...thread N panic: integer overflow"]
    assert normalize("doc/langref/a.zig:1:2: error: x\n") == ["a.zig:1:2: error: x"]


def test_plan_follows_imports_between_examples_and_skips_unshown_files():
    siblings = {"main.zig": 'const lib = @import("lib.zig");\ntest { _ = lib; }\n', "lib.zig": "pub const x = 1;\n"}
    plan = plan_doc_example(example("main.zig", siblings["main.zig"], "zig test main.zig"), siblings)
    assert isinstance(plan, Plan) and set(plan.files) == {"main.zig", "lib.zig"}
    lonely = example("alone.zig", '@import("gone.zig")', "zig test alone.zig")
    assert plan_doc_example(lonely, {}) == Skip("imports file(s) the docs don't show: gone.zig")
    fragment = plan_doc_example(example("x.zig", "fn f() void { g(); }\n", None), {})
    assert fragment.steps == [["zig", "fmt", "x.zig"]]  # shown without a command: parsed, not compiled
    assert plan_doc_example(example("performFn_1", "", None), {}) == Skip("not a Zig source file: 'performFn_1'")
    cross = example("w.zig", "", "zig build-exe w.zig -target wasm32-wasi\nwasmtime w.wasm")
    assert plan_doc_example(cross, {}) == Skip("needs the program 'wasmtime'")


def test_cookbook_plans():
    c_lib = {"file": "assets/src/14-01.zig", "code": 'const c = @cImport({\n    @cInclude("sqlite3.h");\n});\n'}
    assert plan_cookbook(c_lib) == Skip("needs a C library (@cImport of sqlite3.h)")
    tests_only = plan_cookbook({"file": "assets/src/02-01.zig", "code": PASSING})
    assert tests_only.steps == [["zig", "test", "02-01.zig"]] and tests_only.files == {"02-01.zig": PASSING}
    program = plan_cookbook({"file": "assets/src/01-01.zig", "code": HELLO})
    assert program.steps == [["zig", "build-exe", "01-01.zig"]] and program.note == "compiled, not run"
