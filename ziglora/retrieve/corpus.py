"""The retrieval corpus: one release's documentation sections (language reference, release notes, cookbook recipes),
read through manifest.json as `make data` built them, each with an identity that evaluation can match."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ziglora.data.manifest import load_manifest, outputs_of_kind

NOTES = "release-notes"  # the source of the natural questions' `section`
ASKED = "qa-facts"  # build_qa.py's generated fact questions, each naming the release-notes section it asks about
# The manifest kinds whose records are sections: langref/release-notes sections and the chat records, of which the
# cookbook's recipes are documentation (the generated fact Q&A among them is not).
CORPUS_KINDS = ("doc_sections", "chat")
DOC_CHAT_SOURCES = ("cookbook",)


def section_id(source: str, title_path: Sequence[str]) -> str:
    """A section's identity, e.g. "release-notes: Language Changes > usingnamespace Removed"."""
    return f"{source}: {' > '.join(title_path)}"


@dataclass(frozen=True)
class Section:
    source: str  # "langref", "release-notes" or "cookbook"
    title_path: tuple[str, ...]  # headings from the top down; a cookbook recipe's title
    text: str  # as the model gets it: markdown that starts with the section's own heading

    @property
    def id(self) -> str:
        return section_id(self.source, self.title_path)

    def to_json(self) -> dict:
        return {"source": self.source, "title_path": list(self.title_path), "text": self.text}

    @classmethod
    def from_json(cls, rec: dict) -> Section:
        return cls(rec["source"], tuple(rec["title_path"]), rec["text"])


def load_release(release: Path) -> dict:
    """The release's manifest.json, every output checked against its sha256 (a DataError says what to do)."""
    return load_manifest(release)


def corpus_files(manifest: dict) -> dict[str, str]:
    """{path: sha256} of the manifest outputs the corpus is read from: what the files hold, as load_release checked,
    so these hashes key the index cache."""
    return {o["path"]: o["sha256"] for o in manifest["outputs"] if o["kind"] in CORPUS_KINDS}


def _recipe(rec: dict) -> Section:
    """A cookbook chat record as a section: its title as heading, then the question and the answer with the code."""
    body = "\n\n".join(m["content"].strip() for m in rec["messages"])
    return Section(rec["source"], (rec["title"],), f"## {rec['title']}\n\n{body}\n")


def read_sections(release: Path, manifest: dict) -> list[Section]:
    """Every section of the release's corpus, in manifest order."""
    sections = []
    for kind in CORPUS_KINDS:
        for _, records in outputs_of_kind(release, manifest, kind):
            if kind == "doc_sections":
                sections += [Section(r["source"], tuple(r["title_path"]), r["text"]) for r in records]
            else:
                sections += [_recipe(r) for r in records if r.get("source") in DOC_CHAT_SOURCES]
    return sections


def read_asked(release: Path, manifest: dict) -> dict[tuple[str, ...], list[str]]:
    """The generated fact questions by the release-notes title path they ask about: the words users ask a section's
    facts in, which its own text may not use ("what replaced X" for a section that says "X is removed")."""
    asked: dict[tuple[str, ...], list[str]] = {}
    for _, records in outputs_of_kind(release, manifest, "chat"):
        for r in records:
            if r.get("source") == ASKED and r.get("section"):
                asked.setdefault(tuple(r["section"]), []).append(r["messages"][0]["content"])
    return asked
