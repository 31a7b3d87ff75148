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

import os
import sys
from pathlib import Path

from ziglora.data import cli
from ziglora.data.validate.run import NoInputs, validate_release

ERRORS = (*cli.USER_ERRORS, NoInputs)


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
    run = validate_release(args.zig_version, args.out_root, args.workers, args.timeout, args.zig_cache_dir,
                           args.cache_dir, use_cache=not args.no_cache)
    summary = run.summary
    for source, counts in summary["sources"].items():
        print(f"{source}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    print(f"{run.summary_path}: {run.samples} samples in {run.seconds:.1f} s with {args.workers} workers "
          f"({run.from_cache} from the result cache; {summary['seconds']:.1f} s of compiling and running in all), "
          f"Zig {summary['compiler']}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
