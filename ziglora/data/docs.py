"""The shared body of build_langref.py and build_release_notes.py: fetch one docgen page, parse it,
write its Markdown, section records and example records (see docs/DATA.md)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import atomic_write_text, write_jsonl
from ziglora.common.net import download
from ziglora.data.docgen import PageStructureError, decode_page, parse_page
from ziglora.data.stages import keep_validation, output_entry
from ziglora.release.site import source_entry


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
    source: dict  # the page's source entry for the stage record
    outputs: list[dict]  # output_entry(...) of each file written
    sections: int
    examples: int


def build_doc(release: Path, page: DocPage, extra: dict | None = None) -> DocBuild:
    """Fetch (or reuse) the page, parse it and write its three outputs under `release`.

    `extra` fields are added to every record (the release notes' notes_version). Nothing is written
    when the page lacks the expected structure, and the fetched page is dropped from the cache so a
    corrected ZIG_SITE_URL is fetched afresh next time.
    """
    extra = extra or {}
    cached = Path(release) / "sources" / page.cache_name
    fetched = download(page.url, cached)
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
    return DocBuild(source_entry(page.source, fetched, **decode_note, **extra), outputs, len(sections), len(examples))
