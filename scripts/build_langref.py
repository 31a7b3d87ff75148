"""Build the language reference corpus for one Zig release.

Downloads <ZIG_SITE_URL>/documentation/<version>/ (cached in raw_data/zig-<version>/sources/langref.html)
and writes, under raw_data/zig-<version>/:
  langref.md              the reference as Markdown (headings, fenced ```zig examples with their file names)
  langref_sections.jsonl  one record per heading's section (title_path, level, anchor, text, code_blocks)
  langref_examples.jsonl  one record per code example (file, code, the command the docs ran it with,
                          expected_output or expected_error, section)
and stages/build_langref.json for write_manifest.py. Re-running with the page cached does no network I/O
and rewrites nothing. The release must be in the site's download/index.json (`latest`: the newest there).
"""
from __future__ import annotations

import sys

from ziglora.data import cli
from ziglora.data.docs import build_langref


def main(argv: list[str] | None = None) -> int:
    args = cli.release_parser(__doc__, downloads=True).parse_args(argv)
    built = build_langref(args.zig_version, args.out_root, args.refresh)
    print(f"langref {args.zig_version}: {built.sections} sections, {built.examples} examples -> {built.release}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
