"""What to run for each code sample, decided from the record alone: the docs' own command for a doc example, a build
or a test run for a recipe, or the reason it cannot be checked here."""
from __future__ import annotations

import platform
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

ZIG_SUBCOMMANDS = {"test", "build-exe", "build-obj", "build-lib", "run"}
LIBC_LIBS = {"c", "m", "pthread", "dl", "rt"}  # Zig provides these with its bundled libc
SHELL_OPERATORS = re.compile(r"[|<>;&`$]")
SOURCE_FILE = re.compile(r"\.(zig|c|h|cpp|s|S)$")
IMPORT = re.compile(r'@(?:import|embedFile|cInclude)\("([^"]+)"\)')
PACKAGE_IMPORT = re.compile(r'@import\("([^"./]+)"\)')
BUILTIN_MODULES = {"std", "builtin", "root"}


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


def plans_for(source: str, records: list[dict]) -> list[Plan | Skip]:
    if source == "cookbook":
        return [plan_cookbook(r) for r in records]
    # Examples of one document may import each other (by file name), so each sees all of them.
    siblings: dict[str, str] = {}
    for r in records:
        if r.get("file") and r.get("code") is not None:
            siblings.setdefault(r["file"], r["code"])
    return [plan_doc_example(r, siblings) for r in records]
