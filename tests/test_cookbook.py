"""build_cookbook.py against cookbook archives made here, served over real HTTP on loopback.

The recipes below are written for these tests (both page layouts, one top folder like GitHub's
archives); no text of the real cookbook is used.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import serve
from ziglora.common.io import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE_PATH = "/zigcc/zig-cookbook/archive/refs/heads/0.14.tar.gz"  # the 0.14.0 branch in the version table

COUNT_ZIG = b"""const std = @import("std");

pub fn main() !void {
    std.debug.print("{d}\\n", .{std.mem.count(u8, "a b c", " ") + 1});
}
"""
SUM_ZIG = b"""const std = @import("std");

test "sum" {
    try std.testing.expectEqual(6, 1 + 2 + 3);
}
"""

SMD_PAGE = b"""---
.title = "Count words",
.date = "2025-01-01",
.layout = "section.shtml",
---

Count the words of a string with [`std.mem.count`].

The separators are counted and one is added; see [the docs](https://example.invalid/docs).

[]($code.siteAsset('src/01-01.zig').language('zig'))

This works for single spaces only.

[`std.mem.count`]: https://example.invalid/std#mem.count
"""

SMD_TWO_FILES = b"""---
.title = "Sum numbers",
---

Add three numbers in a test.

[]($code.siteAsset('src/01-02.zig').language('zig'))

The same with a program:

[]($code.siteAsset('src/01-01.zig').language('zig'))
"""

SMD_MISSING = b"""---
.title = "Gone",
---

This page names a file the archive lacks.

[]($code.siteAsset('src/09-09.zig').language('zig'))
"""

SMD_INDEX = b"""---
.title = "Introduction",
---

Recipes follow.
"""

MD_PAGE = b"""# Sum numbers

Add three numbers in a test.

```zig
{{#include ../src/02-01.zig }}
```

Run it with `zig test`.
"""


SMD_TITLE_TWICE = b"""---
.title = "Reverse a slice",
---

Reverse a slice

Use `std.mem.reverse`, which works in place; ![](/images/reverse.webp)
[`Slice`](**S**equence **l**ike an **i**nterval) is what it takes.

[]($code.siteAsset('src/01-03.zig').language('zig'))
"""

SMD_HEADING_ONLY = b"""---
.title = "Number parsing",
---

## Text to integer

[]($code.siteAsset('src/01-04.zig').language('zig'))
"""

# Numbered 01-05, but its code is 01-01's: upstream's 0.14 10-03 base64 page shows 10-02's ZON program.
SMD_OTHERS_CODE = b"""---
.title = "Encode base64",
---

Encode bytes as base64.

[]($code.siteAsset('src/01-01.zig').language('zig'))
"""


def make_archive(members: dict[str, bytes], top: str = "zig-cookbook-0.14", links: dict | None = None) -> bytes:
    """A .tar.gz like GitHub's: every member below one top folder. `links`: raw name -> symlink target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name if name.startswith("/") or name.startswith("..") else f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


class Routes:
    """Files served over real HTTP on 127.0.0.1 (tests/conftest.py's server): `routes[url_path] = bytes`."""

    def __init__(self, root: Path, site) -> None:
        self.root, self.site = root, site

    def __setitem__(self, url_path: str, data: bytes) -> None:
        path = self.root / url_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture()
def http_routes(tmp_path_factory):
    root = tmp_path_factory.mktemp("github")
    with serve(root) as site:
        yield site.url, Routes(root, site)


def run_script(base_url: str, out_root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GITHUB_URL": base_url}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_cookbook.py"), "--zig-version", "0.14.0",
         "--out-root", str(out_root), *extra],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )


def test_current_layout_pairs_with_included_code(http_routes, tmp_path):
    base, routes = http_routes
    routes[ARCHIVE_PATH] = make_archive({
        "src/en-US/01-01-count-words.smd": SMD_PAGE,
        "src/en-US/01-02-sum.smd": SMD_TWO_FILES,
        "src/en-US/09-09-gone.smd": SMD_MISSING,
        "src/en-US/index.smd": SMD_INDEX,
        "assets/src/01-01.zig": COUNT_ZIG,
        "assets/src/01-02.zig": SUM_ZIG + b"// na\xefve latin-1 comment\n",
        "src/zh-CN/01-01-count-words.smd": SMD_PAGE,  # other languages are not read
    })
    proc = run_script(base, tmp_path)
    assert proc.returncode == 0, proc.stderr
    release = tmp_path / "zig-0.14.0"
    records = {r["id"]: r for r in read_jsonl(release / "cookbook.jsonl")}
    assert sorted(records) == ["cookbook/01-01-count-words", "cookbook/01-02-sum"]

    count = records["cookbook/01-01-count-words"]
    assert count["source"] == "cookbook"
    assert count["title"] == "Count words"
    assert count["file"] == "assets/src/01-01.zig"
    assert count["code"] == COUNT_ZIG.decode()
    user, assistant = count["messages"]
    assert user == {"role": "user", "content": "In Zig 0.14.0: Count words. Count the words of a string with "
                                               "`std.mem.count`.\n\nHow do I do this? Please show the code."}
    assert assistant["role"] == "assistant"
    assert assistant["content"] == (
        "The separators are counted and one is added; see the docs.\n\n"
        f"```zig\n{COUNT_ZIG.decode().rstrip()}\n```\n\n"
        "This works for single spaces only."
    )
    assert "example.invalid" not in json.dumps(count)

    two = records["cookbook/01-02-sum"]["messages"][1]["content"]
    assert two.index('test "sum"') < two.index("The same with a program:") < two.index("pub fn main")
    assert "na\ufffdve" in records["cookbook/01-02-sum"]["code"]

    assert "assets/src/01-02.zig is not valid UTF-8" in proc.stderr
    assert "src/en-US/09-09-gone.smd: included file(s) not in the archive: assets/src/09-09.zig" in proc.stderr
    assert "2 recipes, 1 skipped, 1 pages without code, 1 files not UTF-8" in proc.stdout
    stage = json.loads((release / "stages" / "build_cookbook.json").read_text())
    source = stage["sources"][0]
    assert source["url"] == base + ARCHIVE_PATH
    assert source["not_utf8"] == ["assets/src/01-02.zig"]
    assert [s["page"] for s in source["skipped"]] == ["src/en-US/09-09-gone.smd"]
    assert source["pages_without_code"] == ["src/en-US/index.smd"]
    assert stage["outputs"][0]["records"] == 2
    assert (release / "sources" / "cookbook-0.14.tar.gz").is_file()

    # A re-run uses the cached archive: no second request, same output.
    before = (release / "cookbook.jsonl").read_bytes()
    assert run_script(base, tmp_path).returncode == 0
    assert routes.site.hits.count(ARCHIVE_PATH) == 1
    assert (release / "cookbook.jsonl").read_bytes() == before


def test_mdbook_layout_pairs_with_included_code(http_routes, tmp_path):
    base, routes = http_routes
    routes[ARCHIVE_PATH] = make_archive({
        "book-src/SUMMARY.md": b"# Summary\n\n- [Sum numbers](02-01-sum.md)\n",
        "book-src/intro.md": b"# Intro\n\nWelcome.\n",
        "book-src/02-01-sum.md": MD_PAGE,
        "src/02-01.zig": SUM_ZIG,
    }, top="zig-cookbook-mdbook")
    proc = run_script(base, tmp_path)
    assert proc.returncode == 0, proc.stderr
    [record] = read_jsonl(tmp_path / "zig-0.14.0" / "cookbook.jsonl")
    assert record["id"] == "cookbook/02-01-sum"
    assert record["file"] == "src/02-01.zig"
    assert record["code"] == SUM_ZIG.decode()
    assert record["messages"][0]["content"] == ("In Zig 0.14.0: Sum numbers. Add three numbers in a test.\n\n"
                                                "How do I do this? Please show the code.")
    assert record["messages"][1]["content"] == f"```zig\n{SUM_ZIG.decode().rstrip()}\n```\n\nRun it with `zig test`."
    assert "{{#include" not in json.dumps(record)


@pytest.mark.parametrize("members,links,message", [
    ({"/etc/cron.d/evil": b"x"}, None, "escapes the target: '/etc/cron.d/evil'"),
    ({"../evil.zig": b"x"}, None, "escapes the target: '../evil.zig'"),
    ({}, {"assets/src/01-01.zig": "../../../../etc/passwd"}, "link escapes the target"),
])
def test_malicious_archive_is_refused_and_nothing_written(http_routes, tmp_path, members, links, message):
    base, routes = http_routes
    routes[ARCHIVE_PATH] = make_archive(
        {"src/en-US/01-01-count-words.smd": SMD_PAGE, "assets/src/01-02.zig": COUNT_ZIG, **members}, links=links,
    )
    proc = run_script(base, tmp_path)
    assert proc.returncode != 0
    assert "refusing the cookbook archive" in proc.stderr and message in proc.stderr
    release = tmp_path / "zig-0.14.0"
    assert not (release / "cookbook.jsonl").exists()
    assert not (release / "stages").exists()
    assert not (release / "sources" / "cookbook-0.14.tar.gz").exists()  # not kept as a trusted cache


def test_missing_archive_is_a_clear_error(http_routes, tmp_path):
    base, _ = http_routes
    proc = run_script(base, tmp_path)
    assert proc.returncode != 0
    assert "404" in proc.stderr and ARCHIVE_PATH in proc.stderr
    assert "GITHUB_URL" in proc.stderr


def test_pairs_ask_from_the_problem_statement_and_leave_out_other_recipes_code(http_routes, tmp_path):
    base, routes = http_routes
    routes[ARCHIVE_PATH] = make_archive({
        "src/en-US/01-01-count-words.smd": SMD_PAGE,
        "src/en-US/01-03-reverse.smd": SMD_TITLE_TWICE,
        "src/en-US/01-04-parse.smd": SMD_HEADING_ONLY,
        "src/en-US/01-05-base64.smd": SMD_OTHERS_CODE,
        "assets/src/01-01.zig": COUNT_ZIG,
        "assets/src/01-03.zig": SUM_ZIG,
        "assets/src/01-04.zig": SUM_ZIG,
    })
    proc = run_script(base, tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = {r["id"]: r["messages"] for r in read_jsonl(tmp_path / "zig-0.14.0" / "cookbook.jsonl")}
    assert sorted(records) == ["cookbook/01-01-count-words", "cookbook/01-03-reverse", "cookbook/01-04-parse"]

    # the title once, then the task; the prose's broken link and its image cleaned out
    user, assistant = records["cookbook/01-03-reverse"]
    assert user["content"] == ("In Zig 0.14.0: Reverse a slice. Use `std.mem.reverse`, which works in place;\n"
                               "`Slice` (**S**equence **l**ike an **i**nterval) is what it takes.\n\n"
                               "How do I do this? Please show the code.")
    assert assistant["content"] == f"```zig\n{SUM_ZIG.decode().rstrip()}\n```"
    # a heading is no question: it names the topic
    user, _ = records["cookbook/01-04-parse"]
    assert user["content"] == ("In Zig 0.14.0: Number parsing: Text to integer.\n\n"
                               "How do I do this? Please show the code.")
    assert not any("#" in m[0]["content"] or "![" in m[0]["content"] for m in records.values())

    assert ("recipe skipped: src/en-US/01-05-base64.smd: shows only other recipes' code: "
            "assets/src/01-01.zig (01-01-count-words)") in proc.stderr
    stage = json.loads((tmp_path / "zig-0.14.0" / "stages" / "build_cookbook.json").read_text())
    assert [s["page"] for s in stage["sources"][0]["skipped"]] == ["src/en-US/01-05-base64.smd"]


def test_rerun_rewrites_nothing_refresh_fetches_again_and_another_origin_is_reported(http_routes, tmp_path):
    base, routes = http_routes
    routes[ARCHIVE_PATH] = make_archive({"src/en-US/01-01-count-words.smd": SMD_PAGE,
                                         "assets/src/01-01.zig": COUNT_ZIG})
    release = tmp_path / "zig-0.14.0"
    results = ["--cache-dir", str(tmp_path / "results")]

    def validate() -> None:
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "validate_examples.py"), "--zig-version",
                               "0.14.0", "--out-root", str(tmp_path), *results], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    assert run_script(base, tmp_path).returncode == 0
    validate()  # adds `validation` to each record of cookbook.jsonl
    files = ["cookbook.jsonl", "validation.json", "stages/build_cookbook.json", "stages/validate_examples.json",
             "sources/cookbook-0.14.tar.gz"]
    before = {name: (release / name).stat().st_mtime_ns for name in files}
    assert run_script(base, tmp_path).returncode == 0
    validate()
    assert {name: (release / name).stat().st_mtime_ns for name in files} == before
    [record] = read_jsonl(release / "cookbook.jsonl")
    assert record["validation"]["status"] == "ok"  # kept through the builder's re-run

    # The same archive from another address: used as cached, and reported.
    other = base.replace("127.0.0.1", "localhost")
    proc = run_script(other, tmp_path)
    assert proc.returncode == 0 and routes.site.hits.count(ARCHIVE_PATH) == 1
    assert f"was downloaded from {base}{ARCHIVE_PATH}, not {other}{ARCHIVE_PATH}" in proc.stderr

    # --refresh downloads again: an unchanged archive stays untouched, a changed one is taken.
    assert run_script(base, tmp_path, "--refresh").returncode == 0
    assert routes.site.hits.count(ARCHIVE_PATH) == 2
    assert {name: (release / name).stat().st_mtime_ns for name in files} == before
    changed_page = SMD_PAGE.replace(b"Count the", b"Tally the")
    routes[ARCHIVE_PATH] = make_archive({"src/en-US/01-01-count-words.smd": changed_page,
                                         "assets/src/01-01.zig": COUNT_ZIG})
    assert run_script(base, tmp_path, "--refresh").returncode == 0
    [record] = read_jsonl(release / "cookbook.jsonl")
    assert record["messages"][0]["content"].startswith("In Zig 0.14.0: Count words. Tally the words")
    assert "validation" not in record  # changed: to be validated again
