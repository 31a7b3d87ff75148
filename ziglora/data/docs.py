"""The language-reference and release-notes stages: fetch one docgen page, parse it, write its Markdown, section
records and example records (see docs/DATA.md) with the stage record."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import atomic_write_text, write_jsonl
from ziglora.common.net import download
from ziglora.data.docgen import PageStructureError, decode_page, parse_page
from ziglora.data.stages import keep_validation, output_entry, record_stage, release_dir
from ziglora.release.site import published_release, source_entry
from ziglora.release.versions import langref_url, release_notes_url, resolve_pin


@dataclass(frozen=True)
class DocPage:
    source: str  # "langref" | "release-notes": the records' `source` and the id prefix
    url: str
    cache_name: str  # file name under sources/
    markdown: str
    sections: str
    examples: str
    require_examples: bool  # the language reference always has examples; release notes may not


@dataclass
class DocBuild:
    release: Path  # the release's folder
    source: dict  # the page's source entry for the stage record
    outputs: list[dict]  # output_entry(...) of each file written
    sections: int
    examples: int


def build_doc(release: Path, page: DocPage, extra: dict | None = None, refresh: bool = False) -> DocBuild:
    """Fetch (or reuse) the page, parse it and write its three outputs under `release`.

    `extra` fields are added to every record (the release notes' notes_version). Nothing is written
    when the page lacks the expected structure, and the fetched page is dropped from the cache so a
    corrected ZIG_SITE_URL is fetched afresh next time.
    """
    extra = extra or {}
    cached = Path(release) / "sources" / page.cache_name
    fetched = download(page.url, cached, refresh=refresh)
    text, bad_bytes = decode_page(cached.read_bytes())
    if bad_bytes:
        print(f"warning: {page.url}: {bad_bytes} byte(s) are not UTF-8; replaced with U+FFFD", file=sys.stderr)
    try:
        parsed = parse_page(text, url=page.url, source=page.source, require_examples=page.require_examples)
    except PageStructureError:
        cached.unlink(missing_ok=True)
        raise
    sections = [{**r, **extra} for r in parsed.section_records]
    examples = [{**r, **extra} for r in parsed.example_records]
    paths = {name: Path(release) / name for name in (page.markdown, page.sections, page.examples)}
    atomic_write_text(paths[page.markdown], parsed.markdown())
    write_jsonl(paths[page.sections], sections)
    write_jsonl(paths[page.examples], keep_validation(paths[page.examples], examples))
    outputs = [
        output_entry(release, paths[page.markdown], "markdown", None),
        output_entry(release, paths[page.sections], "doc_sections", len(sections)),
        output_entry(release, paths[page.examples], "examples", len(examples)),
    ]
    decode_note = {"invalid_utf8_bytes": bad_bytes} if bad_bytes else {}
    return DocBuild(Path(release), source_entry(page.source, fetched, **decode_note, **extra), outputs,
                    len(sections), len(examples))


def build_langref(zig_version: str, out_root: Path, refresh: bool = False) -> DocBuild:
    """The language reference of a release the site's index.json lists, with stages/build_langref.json."""
    release = release_dir(zig_version, out_root)
    index_source = published_release(zig_version, release / "sources", refresh)
    page = DocPage(
        source="langref", url=langref_url(zig_version), cache_name="langref.html", markdown="langref.md",
        sections="langref_sections.jsonl", examples="langref_examples.jsonl", require_examples=True,
    )
    built = build_doc(release, page, refresh=refresh)
    record_stage(release, "build_langref", [index_source, built.source], built.outputs)
    return built


def build_release_notes(zig_version: str, out_root: Path, notes_version: str | None = None,
                        refresh: bool = False) -> DocBuild:
    """The release notes a release reads (its `notes_version` pin, or `notes_version` given), said as chosen, with
    stages/build_release_notes.json; every record and the page's source carry the notes_version."""
    release = release_dir(zig_version, out_root)
    index_source = published_release(zig_version, release / "sources", refresh)
    notes = resolve_pin(zig_version, "notes_version", notes_version)
    print(f"Zig {zig_version}: {notes}")
    if notes.value != zig_version:
        print(f"Zig {zig_version} has no release notes of its own; using the {notes.value} notes")
    page = DocPage(
        source="release-notes", url=release_notes_url(notes.value), cache_name=f"release-notes-{notes.value}.html",
        markdown="release-notes.md", sections="release_notes_sections.jsonl",
        examples="release_notes_examples.jsonl", require_examples=False,
    )
    built = build_doc(release, page, extra={"notes_version": notes.value}, refresh=refresh)
    built.source["pins"] = {notes.name: notes.record()}
    record_stage(release, "build_release_notes", [index_source, built.source], built.outputs)
    return built
