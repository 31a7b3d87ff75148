"""Compile-validate every code sample of a release with that release's Zig compiler.

Reads langref_examples.jsonl, release_notes_examples.jsonl and cookbook.jsonl (those present) from
raw_data/zig-<ver>/, runs each sample in a temp dir, and gives every record a
`validation: {status: ok|failed|skipped, reason, seconds}` (each file rewritten atomically, and its
new sha256 put in the record of the stage that built it); the summary goes to validation.json.

- Doc examples run with the docs' own command (`zig test x.zig`, `zig build-exe x.zig -lc` then
  `./x`, ...). The result is compared with the docs' output: for a compile error, every
  `error:`/`note:` line the docs show must appear; otherwise the whole output must match after
  normalizing what differs between machines (paths, addresses, thread ids, cache paths, stack
  trace frames).
- Cookbook solutions are built with `zig build-exe` (not run: recipes serve sockets or fetch URLs)
  or, without a `main`, run with `zig test`.
- Samples that need what we cannot provide here (another C library, a non-native machine to run
  on, a shell pipeline, a build.zig project, a file the docs don't show) are skipped with the
  reason; they are not failures.
- All compilers share one Zig global cache dir, so std is compiled once; each run's result is
  cached under sha256(compiler version + command + files), so an unchanged re-run is cheap.
  A `--verbose-*` flag reports only the work the compiler does, which a warm cache skips
  (verbose_cimport_flag.zig prints its C import paths only on a cache miss), so such a sample
  compiles with a fresh cache of its own and gives the same result on every run.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ziglora.common.io import read_jsonl, sha256_file, write_json, write_jsonl
from ziglora.common.progress import Progress
from ziglora.data import cli
from ziglora.data.stages import output_entry, record_stage, refresh_outputs, release_dir
from ziglora.release.zig import Zig, cache_dir, ensure_zig, files_in_temp_dir, run_process

SCRIPT = "validate_examples"
# Input file -> source name used in the summary. Order is the order of the report.
SOURCES = {
    "langref_examples.jsonl": "langref",
    "release_notes_examples.jsonl": "release-notes",
    "cookbook.jsonl": "cookbook",
}
ZIG_SUBCOMMANDS = {"test", "build-exe", "build-obj", "build-lib", "run"}
LIBC_LIBS = {"c", "m", "pthread", "dl", "rt"}  # Zig provides these with its bundled libc
SHELL_OPERATORS = re.compile(r"[|<>;&`$]")
SOURCE_FILE = re.compile(r"\.(zig|c|h|cpp|s|S)$")
IMPORT = re.compile(r'@(?:import|embedFile|cInclude)\("([^"]+)"\)')
PACKAGE_IMPORT = re.compile(r'@import\("([^"./]+)"\)')
BUILTIN_MODULES = {"std", "builtin", "root"}


class NoInputs(ValueError):
    pass


@dataclass
class Plan:
    """What to run for one record: files to write, then steps (argv lists; "zig" means the compiler)."""

    files: dict[str, str]
    steps: list[list[str]]
    expected_output: str | None = None
    expected_error: str | None = None
    note: str = ""  # said in the reason of an ok result (e.g. "compiled, not run")
    fresh_cache: bool = False  # its output depends on a cold compiler cache (a --verbose-* report)


@dataclass
class Skip:
    reason: str


@dataclass
class PlanRun:
    """What running a plan's steps gave; cached as JSON under the plan's cache_key."""
    output: str  # stdout and stderr of every step, interleaved as a terminal shows them
    exit_codes: list[int] = field(default_factory=list)
    timed_out: bool = False
    seconds: float = 0.0


# ---------------------------------------------------------------- planning (pure)

def _native_target(target: str) -> bool:
    return target == "native" or target.startswith(f"{platform.machine()}-linux")


def _files_needed(name: str, siblings: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """`name` and, transitively, the sibling files it imports; plus imported files nobody shows."""
    files: dict[str, str] = {}
    missing: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current in files:
            continue
        files[current] = siblings[current]
        for target in IMPORT.findall(siblings[current]):
            if target in siblings:
                todo.append(target)
            elif target.endswith(".zig") and target not in missing:
                missing.append(target)
    return files, missing


def plan_doc_example(record: dict, siblings: dict[str, str]) -> Plan | Skip:
    """Turn a docs example (langref / release notes) into steps, or say why it can't be checked here."""
    command = record.get("command")
    name = record.get("file")
    if not name or not name.endswith(".zig"):
        return Skip(f"not a Zig source file: {name!r}")
    if not command:
        # docgen's syntax-only examples: fragments (free identifiers are fine), so parsing is the check;
        # `zig fmt` parses without name resolution (ast-check would reject the fragments)
        return Plan(files={name: record.get("code") or ""}, steps=[["zig", "fmt", name]],
                    note="parses (the docs show no command)")
    lines = [line.strip().removeprefix("$ ").strip() for line in command.splitlines() if line.strip()]
    steps: list[list[str]] = []
    extra_files: list[str] = []
    built: dict[str, str | None] = {}  # exe name -> target it was built for
    for line in lines:
        if SHELL_OPERATORS.search(line):
            return Skip(f"shell pipeline or redirection is not run: {line!r}")
        argv = shlex.split(line)
        if argv[0] == "zig":
            if len(argv) < 2 or argv[1] not in ZIG_SUBCOMMANDS:
                sub = argv[1] if len(argv) > 1 else ""
                if sub == "build":
                    return Skip("needs a build.zig project the docs don't show")
                return Skip(f"`zig {sub}` is not a compile command we validate")
            reason = _check_zig_args(argv)
            if reason:
                return Skip(reason)
            inputs = [a.split("=", 1)[-1] for a in argv[2:] if SOURCE_FILE.search(a)]
            if not inputs:
                return Skip(f"no source file in the command: {line!r}")
            extra_files += inputs
            if argv[1] == "build-exe":
                target = _flag_value(argv, "-target")
                built[PurePosixPath(inputs[0]).stem] = target
            steps.append(argv)
        elif argv[0].startswith("./"):
            exe = argv[0][2:]
            if exe not in built:
                return Skip(f"runs {argv[0]}, which no command of the example builds")
            target = built[exe]
            if target and not _native_target(target):
                return Skip(f"running needs a {target} machine")
            steps.append(argv)
        else:
            return Skip(f"needs the program {argv[0]!r}")
    expected_output, expected_error = record.get("expected_output"), record.get("expected_error")
    # When the docs' command only builds the program, the output they show is the program's.
    if (built and not any(s[0].startswith("./") for s in steps) and expected_output and not expected_error):
        exe, target = next(iter(built.items()))
        if target and not _native_target(target):
            return Skip(f"running needs a {target} machine")
        steps.append([f"./{exe}"])
    if name not in siblings:
        siblings = {**siblings, name: record.get("code", "")}
    missing = [f for f in extra_files if f not in siblings]
    if missing:
        return Skip(f"needs file(s) the docs don't show: {', '.join(missing)}")
    files: dict[str, str] = {}
    for needed in dict.fromkeys([name, *extra_files]):
        found, missing_imports = _files_needed(needed, siblings)
        if missing_imports:
            return Skip(f"imports file(s) the docs don't show: {', '.join(missing_imports)}")
        files.update(found)
    fresh_cache = any(arg.startswith("--verbose-") for step in steps for arg in step)
    return Plan(files=files, steps=steps, expected_output=expected_output, expected_error=expected_error,
                fresh_cache=fresh_cache)


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag) and len(arg) > len(flag) and flag != "-target":
            return arg[len(flag):]
    return None


def _check_zig_args(argv: list[str]) -> str | None:
    """Why a zig command can't run here (None: it can)."""
    if "--help" in argv or "-h" in argv:
        return "prints help, nothing to validate"
    for i, arg in enumerate(argv):
        lib = None
        if arg in ("-l", "--library") and i + 1 < len(argv):
            lib = argv[i + 1]
        elif arg.startswith("-l") and len(arg) > 2:
            lib = arg[2:]
        if lib is not None and lib not in LIBC_LIBS:
            return f"needs the C library {lib!r}"
    target = _flag_value(argv, "-target")
    runs = argv[1] in ("test", "run") and "--test-no-exec" not in argv
    if target and runs and not _native_target(target):
        return f"running needs a {target} machine"
    return None


def plan_cookbook(record: dict) -> Plan | Skip:
    """A recipe's code: built as a program (main) or run as tests; packages and C libraries are skipped."""
    code = record.get("code") or ""
    packages = sorted(set(PACKAGE_IMPORT.findall(code)) - BUILTIN_MODULES)
    if packages:
        return Skip(f"needs package(s) from build.zig.zon: {', '.join(packages)}")
    if "@cImport" in code:
        headers = re.findall(r'@cInclude\("([^"]+)"\)', code)
        return Skip(f"needs a C library (@cImport of {', '.join(headers) or 'C code'})")
    name = PurePosixPath(record.get("file") or "recipe.zig").name
    if re.search(r"\bpub\s+fn\s+main\s*\(", code):
        return Plan(files={name: code}, steps=[["zig", "build-exe", name]], note="compiled, not run")
    return Plan(files={name: code}, steps=[["zig", "test", name]])


# ---------------------------------------------------------------- comparing (pure)

FRAME = re.compile(r"^(?:\S.*:\d+:\d+|\?\?\?:\?:\?): 0x[0-9a-f]+ in ")
CARET = re.compile(r"^\s*[\^~]+\s*$")
LOCATION = re.compile(r"(?:(?<=\s)|^)(?:[^\s:]*/)?([^/\s:]+\.zig):(\d+):(\d+)")


def normalize(text: str) -> list[str]:
    """Output lines with what differs between machines and runs removed or made uniform."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if FRAME.match(line):
            # a stack frame: its line, then (usually) the source line and the caret line
            i += 1
            if i + 1 < len(lines) and CARET.match(lines[i + 1]):
                i += 2
            continue
        if line.startswith("error: the following test command"):
            i += 2  # that line, then the cache path of the test binary
            continue
        if line == "referenced by:":
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                i += 1
            continue
        if line == "(process terminated by signal)":  # the docs' generator says this, not the program
            i += 1
            continue
        line = re.sub(r"\bthread \d+ panic", "thread N panic", line)
        line = re.sub(r"0x[0-9a-f]{6,}", "0xADDR", line)
        line = re.sub(r"@[0-9a-f]{8,}\b", "@ADDR", line)  # `{*}` formatting prints pointers without 0x
        line = re.sub(r"\S*/o/[0-9a-f]{16,}/", "CACHE/o/HASH/", line)
        # names the compiler numbers (anonymous types) differ with anything compiled before them
        line = re.sub(r"__(struct|enum|union|opaque)_\d+", r"__\1_N", line)
        line = LOCATION.sub(r"\1:\2:\3", line)
        out.append(line)
        i += 1
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return out


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"(^|: )(error|note): ", line)]


def compare(plan: Plan, result: PlanRun) -> tuple[str, str]:
    """(status, reason) of a finished run against what the docs show."""
    if result.timed_out:
        return "failed", "timed out"
    actual = normalize(result.output)
    expected_output = plan.expected_output
    expected = error_lines(normalize(plan.expected_error)) if plan.expected_error is not None else []
    if plan.expected_error is not None and not expected:
        # a runtime error the docs filed as an error: what the program prints is what to compare
        expected_output = plan.expected_error
    if expected:
        if not any(result.exit_codes):
            return "failed", f"expected a compile error, but it compiled: {expected[0]}"
        got = error_lines(actual)
        missing = [line for line in expected if line not in got]
        if missing:
            return "failed", f"error differs: expected {missing[0]!r}, got {got[0] if got else 'no error'!r}"
        return "ok", "compile error matches"
    if expected_output is not None:
        # The output is the check: the docs show no exit codes, and a program may exit non-zero on purpose.
        expected = normalize(expected_output)
        if actual != expected:
            for exp, got in zip(expected + [""] * len(actual), actual + [""] * len(expected), strict=False):
                if exp != got:
                    return "failed", f"output differs: expected {exp!r}, got {got!r}"
        return "ok", "output matches"
    if any(result.exit_codes):
        first = next((line for line in actual if "error" in line), actual[0] if actual else "")
        return "failed", f"exit code {max(result.exit_codes)}: {first}"
    return "ok", plan.note or "compiles and runs"


# ---------------------------------------------------------------- running (I/O)

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
            # std's and libc's stay shared. Measured on a small @cImport program: 19 s, against 14 s warm.
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


def plans_for(source: str, records: list[dict]) -> list[Plan | Skip]:
    if source == "cookbook":
        return [plan_cookbook(r) for r in records]
    # Examples of one document may import each other (by file name), so each sees all of them.
    siblings: dict[str, str] = {}
    for r in records:
        if r.get("file") and r.get("code") is not None:
            siblings.setdefault(r["file"], r["code"])
    return [plan_doc_example(r, siblings) for r in records]


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


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="compiler processes at once (default: the CPU count, %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds one compile or run may take (default: %(default)s)")
    parser.add_argument("--zig-cache-dir", type=Path, default=None,
                        help="Zig global cache shared by all compiles (default: $ZIGLORA_CACHE/zig-global-cache)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where run results are cached by sha256(compiler + command + files) "
                        "(default: $ZIGLORA_CACHE/validation)")
    parser.add_argument("--no-cache", action="store_true", help="run everything again, ignoring cached results")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    rel_dir = release_dir(args.zig_version, args.out_root)
    inputs = {name: rel_dir / name for name in SOURCES if (rel_dir / name).is_file()}
    if not inputs:
        raise NoInputs(f"none of {', '.join(SOURCES)} is in {rel_dir}; run the build_*.py scripts first "
                       "(or `make data`)")

    zig = ensure_zig(args.zig_version)
    zig_cache = (args.zig_cache_dir or cache_dir() / "zig-global-cache").resolve()
    cache = None if args.no_cache else (args.cache_dir or cache_dir() / "validation")
    records = {name: list(read_jsonl(path)) for name, path in inputs.items()}
    jobs = [(name, i, plan) for name, recs in records.items() for i, plan in enumerate(plans_for(SOURCES[name], recs))]

    start = time.monotonic()
    from_cache = 0
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(validate_one, zig, plan, zig_cache, cache, args.timeout): (name, i)
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
    summary = summarize(zig.version, args.zig_version, {SOURCES[n]: recs for n, recs in records.items()})
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
    for source, counts in summary["sources"].items():
        print(f"{source}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    print(f"{summary_path}: {len(jobs)} samples in {seconds:.1f} s with {args.workers} workers "
          f"({from_cache} from the result cache; {summary['seconds']:.1f} s of compiling and running in all), "
          f"Zig {zig.version}")
    return 0


ERRORS = (*cli.USER_ERRORS, NoInputs)

if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
