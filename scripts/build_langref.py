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
from ziglora.data.docs import DocPage, build_doc
from ziglora.data.stages import record_stage, release_dir
from ziglora.release.site import published_release
from ziglora.release.versions import langref_url


def main(argv: list[str] | None = None) -> int:
    args = cli.release_parser(__doc__, downloads=True).parse_args(argv)
    release = release_dir(args.zig_version, args.out_root)
    index_source = published_release(args.zig_version, release / "sources")
    page = DocPage(
        source="langref", url=langref_url(args.zig_version), cache_name="langref.html", markdown="langref.md",
        sections="langref_sections.jsonl", examples="langref_examples.jsonl", require_examples=True,
    )
    built = build_doc(release, page)
    record_stage(release, "build_langref", [index_source, built.source], built.outputs)
    print(f"langref {args.zig_version}: {built.sections} sections, {built.examples} examples -> {release}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
