"""Whether a sample's run gave what the docs show: the same compile errors, or the same output once what differs
between machines and runs is made uniform."""
from __future__ import annotations

import re

from ziglora.data.validate.plan import Plan, PlanRun

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
