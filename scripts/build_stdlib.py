"""Build stdlib.jsonl: every .zig file of the release's standard library, one record per file.

The std source comes from the compiler of the release (PyPI `ziglang`, see ziglora/release/zig.py: the release's
`compiler` pin, overridden by --compiler or $ZIGLORA_COMPILER; a version PyPI lacks fails with what PyPI
has), or from a Zig source tree given with --zig-source (its lib/std). Records are sorted by path, so the output
is byte-identical for the same input.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ziglora.data import cli
from ziglora.data.stdlib import NoStdlib, build_stdlib

ERRORS = (*cli.USER_ERRORS, NoStdlib)


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__)
    parser.add_argument(
        "--zig-source", type=Path, default=None,
        help="a Zig source tree (a checkout or an unpacked source tarball) to read lib/std from instead",
    )
    parser.add_argument("--compiler", help="PyPI ziglang version to take lib/std from instead of the release's pin")
    args = parser.parse_args(argv)
    built = build_stdlib(args.zig_version, args.out_root, args.zig_source, args.compiler)
    print(f"{built.out}: {built.files} files from {built.std} ({len(built.not_utf8)} not UTF-8)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
