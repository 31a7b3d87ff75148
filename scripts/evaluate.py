"""Measure models behind an OpenAI-compatible endpoint (vLLM) on what Zig knowledge the adapter should add.

Every suite in ziglora/evaluate/suites/ (one module each) runs every model, so they see the same tasks under the same
settings: facts (held-out questions; `--context` asks them closed book, with the sections retrieval finds, and with
their own section), exercism (one chat turn per exercise, its code tested) and aider (the real Aider edits each
exercise's stub; a second try sees the test output). Model-written programs run sandboxed
(ziglora/evaluate/sandbox.py); the report says which isolation ran.

`--answers reference|stub` replaces the models with the tasks' own answers (facts: the reference answer or an
empty one; exercism: `.meta/example.zig` or the unchanged stub; aider: a stand-in server on 127.0.0.1 that
answers the real Aider with them). That checks the harness itself: references must pass, stubs must fail.

Outputs in --output: eval_report.json, eval_report.md (table), eval_report.png (bar chart) and
logs/<model>/<suite>/<task>.log (prompt, answer, compiler output; the aider suite adds a folder per task).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ziglora.evaluate.harness import EndpointDown, EvalInputError
from ziglora.evaluate.run import SUITES, evaluate
from ziglora.release.site import resolve_version
from ziglora.release.versions import DEFAULT_VERSION


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zig-version", default=DEFAULT_VERSION,
                   help="Zig release to evaluate, or `latest` (the newest on the site) (default %(default)s)")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1",
                   help="OpenAI-compatible endpoint, up to /v1 (default %(default)s: `make serve`)")
    p.add_argument("--models", default="",
                   help="comma-separated model names, e.g. Qwen/Qwen3-8B,ziglora (default: every model the endpoint "
                        "lists, which for `make serve` is the base model and the adapter)")
    p.add_argument("--base-model", default="",
                   help="the base model, for the facts suite's 'kept K of N' (default: the model the server lists as "
                        "its adapters' parent)")
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated, of: " + ", ".join(SUITES))
    p.add_argument("--answers", choices=["model", "reference", "stub"], default="model",
                   help="model: ask the endpoint (default); reference/stub: check the harness with the tasks' own "
                        "reference answers / unchanged stubs, no endpoint needed")
    p.add_argument("--exercism-archive", type=Path,
                   help="exercism/zig .tar.gz to use instead of downloading the release's commit "
                        "(default: downloaded once to raw_data/zig-<ver>/sources/)")
    p.add_argument("--exercism-ref", help="exercism/zig commit or branch to download (default: $ZIGLORA_EXERCISM_REF, "
                   "else the commit ziglora/release/versions.py verified for the release, else the track's main "
                   "branch)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N tasks of each suite (0: all)")
    p.add_argument("--output", type=Path, default=Path("out/eval"), help="report directory (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="tasks in flight at once (default %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="zig compilations at once (default: CPU count, %(default)s)")
    p.add_argument("--request-timeout", type=float, default=600, help="seconds per chat request (default %(default)s)")
    p.add_argument("--test-timeout", type=float, default=120,
                   help="seconds for compiling and running one exercise's tests before it is killed "
                        "(default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=2048,
                   help="tokens per model reply, in every suite (the aider suite gives it to Aider as max_tokens: a "
                        "reply cut there is not applied) (default %(default)s)")
    for suite in SUITES.values():
        suite.add_arguments(p.add_argument_group(f"{suite.name} suite"))
    args = p.parse_args(argv)
    args.zig_version = resolve_version(args.zig_version)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        table = evaluate(args)
    except (EndpointDown, EvalInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table, end="")
    print(f"report: {args.output / 'eval_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
