"""Build the release-notes corpus for one Zig release.

Downloads <ZIG_SITE_URL>/download/<notes_version>/release-notes.html (cached in
raw_data/zig-<version>/sources/release-notes-<notes_version>.html) and writes, under raw_data/zig-<version>/:
  release-notes.md               the notes as Markdown
  release_notes_sections.jsonl   one record per section: the introduction under the page title, then one per
                                 heading (h2..h6), without the "Table of Contents" heading (0.14.0: 1 + 88 = 89)
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
from ziglora.data.docs import DocPage, build_doc
from ziglora.data.stages import record_stage, release_dir
from ziglora.release.site import published_release
from ziglora.release.versions import release_notes_url, resolve_pin


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__, downloads=True)
    parser.add_argument("--notes-version", help="read these release notes instead of the release's pin")
    args = parser.parse_args(argv)
    release = release_dir(args.zig_version, args.out_root)
    index_source = published_release(args.zig_version, release / "sources")
    notes = resolve_pin(args.zig_version, "notes_version", args.notes_version)
    print(f"Zig {args.zig_version}: {notes}")
    if notes.value != args.zig_version:
        print(f"Zig {args.zig_version} has no release notes of its own; using the {notes.value} notes")
    page = DocPage(
        source="release-notes", url=release_notes_url(notes.value), cache_name=f"release-notes-{notes.value}.html",
        markdown="release-notes.md", sections="release_notes_sections.jsonl",
        examples="release_notes_examples.jsonl", require_examples=False,
    )
    built = build_doc(release, page, extra={"notes_version": notes.value})
    built.source["pins"] = {notes.name: notes.record()}
    record_stage(release, "build_release_notes", [index_source, built.source], built.outputs)
    print(f"release notes {notes.value} for {args.zig_version}: "
          f"{built.sections} sections, {built.examples} examples -> {release}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
