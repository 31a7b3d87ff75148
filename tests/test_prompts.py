"""The hand-written prompts (prompts/zig-<ver>.jsonl, one file per release): well-formed, and every code block
accepted by the real compiler of that file's release.

Each record says how its ```zig blocks are checked (`check`, default "test"):
- "test": every block is a complete file that passes `zig test`;
- "run": every block is a complete program that `zig run` builds and runs with exit status 0;
- "build": the first block is a build.zig (a ```zon block, if any, is its build.zig.zon) and
  `zig build --help` must run its build function;
- "ast-check": fragments that cannot be whole programs; `zig ast-check` only.
```zon blocks outside "build" records must pass `zig ast-check --zon`; the first one is also
written as data.zon next to each program, which may `@import("data.zon")`.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ziglora.release.zig import Zig, ensure_zig

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
# The release each file is about, from its name: zig-<ver>.jsonl
RELEASES = sorted(p.name.removeprefix("zig-").removesuffix(".jsonl") for p in PROMPTS_DIR.glob("zig-*.jsonl"))
TOPICS = {"release", "language", "stdlib", "build", "toolchain"}
CHECKS = {"test", "run", "build", "ast-check"}
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
TIMEOUT_S = 300


# Per release, code its compiler must refuse (a feature the release removed), so that the check can be seen to fail.
REMOVED_IN = {
    "0.14.0": "fn f() void {\n    @setCold(true);\n}\ntest { f(); }\n",
    "0.15.2": "const S = struct {\n    pub usingnamespace struct {\n        pub const x = 1;\n    };\n};\n"
              "test { _ = S.x; }\n",
}


def load(version: str) -> list[dict]:
    lines = (PROMPTS_DIR / f"zig-{version}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def blocks(completion: str, lang: str) -> list[str]:
    return [code for fence_lang, code in FENCE.findall(completion) if fence_lang == lang]


def test_every_release_has_prompts():
    assert {"0.14.0", "0.15.2"} <= set(RELEASES)


@pytest.mark.parametrize("version", RELEASES)
def test_records_are_well_formed(version):
    records = load(version)
    assert len(records) >= 60
    prompts = [r["prompt"] for r in records]
    assert len(set(prompts)) == len(prompts), "duplicate prompts"
    for r in records:
        assert set(r) <= {"prompt", "completion", "topic", "check"}, r["prompt"]
        assert r["prompt"].strip() and r["completion"].strip(), r
        assert r["topic"] in TOPICS, r["prompt"]
        assert r.get("check", "test") in CHECKS, r["prompt"]
        # every fence is closed and names its language, so no code escapes the compiler check
        assert r["completion"].count("```") % 2 == 0, r["prompt"]
        assert all(lang for lang, _ in FENCE.findall(r["completion"])), r["prompt"]
        if r.get("check") == "build":
            assert "pub fn build(" in blocks(r["completion"], "zig")[0], r["prompt"]
    # fragments checked by syntax only stay the exception
    assert sum(r.get("check") == "ast-check" for r in records) <= 6
    assert {r["topic"] for r in records} == TOPICS


@pytest.fixture(scope="session", params=RELEASES)
def release(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def zig(release) -> Zig:
    return ensure_zig(release)


@pytest.fixture(scope="session")
def zig_env(tmp_path_factory) -> dict:
    # One global cache for all compilations: std and compiler_rt are built once, not per block.
    env = dict(os.environ)
    env["ZIG_GLOBAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("zig-global-cache"))
    return env


def jobs_of(records: list[dict], root: Path) -> list[tuple[str, list[str], Path]]:
    """(label, zig arguments, working directory) for every check the records ask for."""
    jobs = []
    for i, r in enumerate(records):
        check = r.get("check", "test")
        zig_blocks, zon_blocks = blocks(r["completion"], "zig"), blocks(r["completion"], "zon")
        if check == "build":
            d = root / f"r{i}-build"
            d.mkdir()
            (d / "build.zig").write_text(zig_blocks[0])
            if zon_blocks:
                (d / "build.zig.zon").write_text(zon_blocks[0])
            jobs.append((f"#{i} build.zig", ["build", "--help"], d))
            zig_blocks, zon_blocks = zig_blocks[1:], []
        for j, code in enumerate(zig_blocks):
            d = root / f"r{i}-{j}"
            d.mkdir()
            # a distinct file name per block: zig's cache key holds the root file's name (not its
            # content), so parallel `zig test main.zig` runs would share and overwrite one binary
            name = f"r{i}_{j}.zig"
            (d / name).write_text(code)
            if zon_blocks:  # a program may @import("data.zon")
                (d / "data.zon").write_text(zon_blocks[0])
            args = {"test": ["test", name], "run": ["run", name], "build": ["test", name],
                    "ast-check": ["ast-check", name]}[check]
            jobs.append((f"#{i} block {j}", args, d))
        for j, code in enumerate(zon_blocks):
            d = root / f"r{i}-zon{j}"
            d.mkdir()
            (d / "data.zon").write_text(code)
            jobs.append((f"#{i} zon {j}", ["ast-check", "--zon", "data.zon"], d))
    return jobs


def test_every_code_block_is_accepted_by_its_release(release, zig, zig_env, tmp_path):
    records = load(release)
    jobs = jobs_of(records, tmp_path)
    assert len(jobs) >= 60

    def run(job):
        label, args, cwd = job
        proc = zig.run(args, cwd=cwd, timeout=TIMEOUT_S, env=zig_env)
        return label, args, proc

    # the std/compiler_rt cache is filled by the first job so the others don't race to build it
    results = [run(jobs[0])]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results += list(pool.map(run, jobs[1:]))
    failures = [
        f"{label}: zig {' '.join(args)} -> {proc.returncode}\n"
        f"prompt: {records[int(label[1:].split()[0])]['prompt']}\n{proc.output[-1500:]}"
        for label, args, proc in results
        if proc.returncode != 0
    ]
    assert not failures, "\n\n".join(failures)


def test_harness_rejects_code_the_release_refuses(release, zig, zig_env, tmp_path):
    # The check must be able to fail: each release's compiler refuses a feature that release removed.
    assert release in REMOVED_IN, f"add to REMOVED_IN code that Zig {release} refuses"
    bad = {"completion": f"```zig\n{REMOVED_IN[release]}```", "topic": "language"}
    [(_, args, cwd)] = jobs_of([bad], tmp_path)
    assert zig.run(args, cwd=cwd, timeout=TIMEOUT_S, env=zig_env).returncode != 0
