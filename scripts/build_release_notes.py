"""Build the release-notes corpus for one Zig release.

Downloads <ZIG_SITE_URL>/download/<notes_version>/release-notes.html (cached in
raw_data/zig-<version>/sources/release-notes-<notes_version>.html) and writes, under raw_data/zig-<version>/:
  release-notes.md               the notes as Markdown
  release_notes_sections.jsonl   one record per section: the introduction under the page title, then one per
                                 heading (h2..h6), without the "Table of Contents" heading
  release_notes_examples.jsonl   one record per code example, same fields as langref_examples.jsonl
and stages/build_release_notes.json for write_manifest.py.

Patch releases have no notes of their own: 0.14.1 uses the 0.14.0 notes. Which notes a release reads is its
`notes_version` pin (ziglora/release/versions.py): --notes-version, else $ZIGLORA_NOTES_VERSION, else the table's
verified pin, else the first notes page of its minor release the site has (X.Y.0, X.Y.1, …; 0.15.2 -> 0.15.1).
Every record carries `notes_version`, and the stage record's source the pin with its origin, so a reader
can tell which notes a release's corpus holds and why.
"""
from __future__ import annotations

import sys

from ziglora.data import cli
from ziglora.data.docs import build_release_notes


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__, downloads=True)
    parser.add_argument("--notes-version", help="read these release notes instead of the release's pin")
    args = parser.parse_args(argv)
    built = build_release_notes(args.zig_version, args.out_root, args.notes_version, args.refresh)
    print(f"release notes {built.source['notes_version']} for {args.zig_version}: "
          f"{built.sections} sections, {built.examples} examples -> {built.release}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
