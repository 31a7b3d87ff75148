"""The validation stage: run every sample's plan with the release's compiler (results cached by what was run),
compare, and write each record's `validation`, validation.json and the stage records."""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import read_jsonl, sha256_file, write_json, write_jsonl
from ziglora.common.progress import Progress
from ziglora.data.stages import output_entry, record_stage, refresh_outputs, release_dir
from ziglora.data.validate.compare import compare
from ziglora.data.validate.plan import Plan, PlanRun, Skip, plans_for
from ziglora.release.zig import Zig, cache_dir, ensure_zig, files_in_temp_dir, run_process

SCRIPT = "validate_examples"
# Input file -> source name used in the summary. Order is the order of the report.
SOURCES = {
    "langref_examples.jsonl": "langref",
    "release_notes_examples.jsonl": "release-notes",
    "cookbook.jsonl": "cookbook",
}


class NoInputs(ValueError):
    pass


@dataclass
class Validation:
    summary: dict  # what validation.json holds
    summary_path: Path
    samples: int
    from_cache: int  # samples whose run came from the result cache
    seconds: float  # wall time of the whole run


def cache_key(compiler: str, plan: Plan) -> str:
    payload = json.dumps({"compiler": compiler, "steps": plan.steps, "files": plan.files}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def execute(zig: Zig, plan: Plan, zig_cache: Path, timeout: float) -> PlanRun:
    """Run the plan's steps in a fresh temp dir; stop at the first step that fails."""
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(zig_cache)}
    start = time.monotonic()
    chunks: list[str] = []
    codes: list[int] = []
    with files_in_temp_dir(plan.files, "ziglora-validate-") as tmp:
        if plan.fresh_cache:
            # The compilation's own artifacts (a lone file's live in the global cache) go to an empty cache;
            # std's and libc's stay shared, so only the sample's own work is done cold.
            env["ZIG_LOCAL_CACHE_DIR"] = str(tmp / ".private-zig-cache")
        for step in plan.steps:
            # "./prog" stays relative (resolved in cwd): programs that print argv[0] print what the docs show
            done = zig.run(step[1:], tmp, timeout, env) if step[0] == "zig" else run_process(step, tmp, timeout, env)
            if done.timed_out:
                return PlanRun("".join(chunks), codes, timed_out=True, seconds=time.monotonic() - start)
            chunks.append(done.output)
            codes.append(done.returncode)
            if done.returncode != 0:
                break
    return PlanRun("".join(chunks), codes, seconds=round(time.monotonic() - start, 3))


def run_cached(zig: Zig, plan: Plan, zig_cache: Path, cache: Path | None, timeout: float) -> tuple[PlanRun, bool]:
    """The run's result, from the result cache when this compiler already ran these steps on these files."""
    path = cache / f"{cache_key(zig.version, plan)}.json" if cache else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text())
        return PlanRun(**data), True
    result = execute(zig, plan, zig_cache, timeout)
    if path is not None and not result.timed_out:  # a timeout may be the machine being busy: retry next time
        write_json(path, result.__dict__)
    return result, False


def validate_one(zig: Zig, plan: Plan | Skip, zig_cache: Path, cache: Path | None, timeout: float) -> tuple[dict, bool]:
    if isinstance(plan, Skip):
        return {"status": "skipped", "reason": plan.reason, "seconds": 0.0}, False
    result, cached = run_cached(zig, plan, zig_cache, cache, timeout)
    status, reason = compare(plan, result)
    return {"status": status, "reason": reason, "seconds": round(result.seconds, 3)}, cached


def summarize(compiler: str, zig_version: str, per_source: dict[str, list[dict]]) -> dict:
    """Counts and every non-ok sample. Deterministic for the same inputs (no wall time, no cache hits),
    so an unchanged re-run rewrites nothing; `seconds` adds up the samples' own measured times."""
    summary: dict = {"zig_version": zig_version, "compiler": compiler, "sources": {}, "failures": [], "skipped": []}
    seconds = 0.0
    for source, records in per_source.items():
        counts = {"ok": 0, "failed": 0, "skipped": 0}
        for r in records:
            v = r["validation"]
            counts[v["status"]] += 1
            seconds += v["seconds"]
            if v["status"] != "ok":
                summary["failures" if v["status"] == "failed" else "skipped"].append(
                    {"id": r.get("id"), "source": source, "reason": v["reason"]})
        summary["sources"][source] = counts
    summary["total"] = {k: sum(c[k] for c in summary["sources"].values()) for k in ("ok", "failed", "skipped")}
    summary["seconds"] = round(seconds, 1)
    return summary


def validate_release(zig_version: str, out_root: Path, workers: int, timeout: float, zig_cache_dir: Path | None = None,
                     result_cache: Path | None = None, use_cache: bool = True) -> Validation:
    """Validate every sample of the release's example and cookbook files. `zig_cache_dir` (default
    $ZIGLORA_CACHE/zig-global-cache) is shared by all compiles; `result_cache` (default $ZIGLORA_CACHE/validation)
    holds the run results, unless `use_cache` is off."""
    rel_dir = release_dir(zig_version, out_root)
    inputs = {name: rel_dir / name for name in SOURCES if (rel_dir / name).is_file()}
    if not inputs:
        raise NoInputs(f"none of {', '.join(SOURCES)} is in {rel_dir}; run the build_*.py scripts first "
                       "(or `make data`)")

    zig = ensure_zig(zig_version)
    zig_cache = (zig_cache_dir or cache_dir() / "zig-global-cache").resolve()
    cache = (result_cache or cache_dir() / "validation") if use_cache else None
    records = {name: list(read_jsonl(path)) for name, path in inputs.items()}
    jobs = [(name, i, plan) for name, recs in records.items() for i, plan in enumerate(plans_for(SOURCES[name], recs))]

    start = time.monotonic()
    from_cache = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(validate_one, zig, plan, zig_cache, cache, timeout): (name, i)
                   for name, i, plan in jobs}
        with Progress("validate", total=len(futures), unit="samples") as progress:
            for future in as_completed(futures):
                name, i = futures[future]
                validation, cached = future.result()
                records[name][i]["validation"] = validation
                from_cache += cached
                progress.update()
    seconds = time.monotonic() - start

    for name, path in inputs.items():
        write_jsonl(path, records[name])
    summary = summarize(zig.version, zig_version, {SOURCES[n]: recs for n, recs in records.items()})
    summary_path = rel_dir / "validation.json"
    write_json(summary_path, summary)
    # The example files stay their builders' outputs (one stage, one file): their records get the new sha256.
    refresh_outputs(rel_dir, list(inputs.values()))
    record_stage(
        rel_dir, SCRIPT,
        sources=[{"name": "zig", "url": f"pypi:ziglang=={zig.version}", "bytes": zig.exe.stat().st_size,
                  "sha256": sha256_file(zig.exe)}],
        outputs=[output_entry(rel_dir, summary_path, "validation", None)],
    )
    return Validation(summary, summary_path, len(jobs), from_cache, seconds)
