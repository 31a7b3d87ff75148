"""A BM25 index over one release's corpus, built once and cached beside it, keyed by what it was built from.

Why bm25s: maintained, numpy-only (no search server, no JIT), scores a query as a few sparse column sums, and
saves its index as plain .npy/.json files that load without pickle.

A release-notes section is also scored, at a lower weight, by the questions build_qa.py generated about its facts
(document expansion, as doc2query: Nogueira et al. 2019), kept as a second BM25 index beside the first.

The cache is `<release>/retrieval/<key>/` (or under `cache_root`): the key hashes the corpus files' sha256 from
manifest.json with the index settings, so an unchanged release reuses its index and a rebuilt one (or new settings)
builds a new one; a build is written to a temporary folder and renamed into place whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import numpy as np

from ziglora.common.io import usual_permissions, write_json
from ziglora.retrieve.corpus import NOTES, Section, corpus_files, load_release, read_asked, read_sections
from ziglora.retrieve.tokenize import tokenize

log = logging.getLogger(__name__)

INDEX_FORMAT = 3  # part of the cache key: bump it when tokenize() or document_tokens() change what is indexed
META = "meta.json"
ASKED_DIR = "asked"  # the generated questions' index, inside the cached index's folder
NO_QUESTION = "\x00"  # what a section nobody asked about is indexed as in the questions' index: no query has it


@dataclass(frozen=True)
class Settings:
    """How sections are scored: chosen on the natural questions' dev split of both releases (docs/RETRIEVAL.md)."""
    k1: float = 1.5
    b: float = 0.5  # less length normalization than BM25's usual 0.75: a long section is no worse an answer
    title_weight: int = 3  # a section's own heading counts this many times over its text
    release_weight: int = 1  # a release-notes section also counts the release's name (release_name) this many times
    asked_weight: float = 0.2  # the generated questions' score, added to the section's own at this weight


@dataclass(frozen=True)
class Hit:
    section: Section
    score: float


def release_name(zig_version: str) -> str:
    """The release as people name it when they ask what changed: major.minor ("0.15" for 0.15.2)."""
    return ".".join(zig_version.split(".")[:2])


def document_tokens(section: Section, settings: Settings, zig_version: str) -> list[str]:
    """What a section is indexed as: its own heading (weighted: it says what the section is about) and its text;
    a release-notes section also the release's name, since a question that names the release asks what changed in
    it. The parent headings are left out: a subsection repeating its parent's words outranked the parent itself."""
    tokens = tokenize(section.title_path[-1]) * settings.title_weight + tokenize(section.text)
    if section.source == NOTES:
        tokens += [release_name(zig_version)] * settings.release_weight
    return tokens


@dataclass
class Index:
    bm25: bm25s.BM25
    sections: list[Section]
    zig_version: str
    asked: bm25s.BM25 | None = None  # the generated questions, one document per section (None: the release has none)
    asked_weight: float = 0.0
    key: str = ""
    reused: bool = False  # loaded from the cache rather than built

    def search(self, query: str, k: int) -> list[Hit]:
        """The k best sections for `query` (fewer when fewer share a word with it), best first."""
        words = tokenize(query)
        ids = self.bm25.get_tokens_ids(words)
        asked_ids = self.asked.get_tokens_ids(words) if self.asked is not None else []
        if not ids and not asked_ids:
            return []
        scores = self.bm25.get_scores_from_ids(ids) if ids else np.zeros(len(self.sections))
        if asked_ids:
            scores = scores + self.asked_weight * self.asked.get_scores_from_ids(asked_ids)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self.sections[i], float(scores[i])) for i in top if scores[i] > 0]


def build(sections: list[Section], zig_version: str, settings: Settings = Settings(),
          asked: dict[tuple[str, ...], list[str]] | None = None) -> Index:
    """An index in memory (no cache); `asked`: generated questions by release-notes title path (read_asked)."""
    bm25 = bm25s.BM25(k1=settings.k1, b=settings.b)
    bm25.index([document_tokens(s, settings, zig_version) for s in sections], show_progress=False)
    index = Index(bm25, sections, zig_version, asked_weight=settings.asked_weight)
    questions = [asked.get(s.title_path, []) if asked and s.source == NOTES else [] for s in sections]
    if any(questions) and settings.asked_weight:
        index.asked = bm25s.BM25(k1=settings.k1, b=settings.b)
        index.asked.index([[w for q in qs for w in tokenize(q)] or [NO_QUESTION] for qs in questions],
                          show_progress=False)
    return index


def cache_key(files: dict[str, str], settings: Settings) -> str:
    spec = {"format": INDEX_FORMAT, "bm25s": bm25s.__version__, "settings": asdict(settings), "files": files}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def load_index(release: Path, cache_root: Path | None = None, settings: Settings = Settings()) -> Index:
    """The release's index: reused from the cache when its key matches, else built and cached (older ones removed)."""
    release = Path(release)
    manifest = load_release(release)
    root = Path(cache_root) if cache_root else release / "retrieval"
    files = corpus_files(manifest)
    key = cache_key(files, settings)
    target = root / key
    if (target / META).is_file():
        bm25 = bm25s.BM25.load(target, load_corpus=True, show_progress=False)
        sections = [Section.from_json(rec) for rec in bm25.corpus]
        bm25.corpus = None  # the sections are kept once, as Section objects
        meta = json.loads((target / META).read_text(encoding="utf-8"))
        asked = bm25s.BM25.load(target / ASKED_DIR) if (target / ASKED_DIR).is_dir() else None
        return Index(bm25, sections, meta["zig_version"], asked, settings.asked_weight, key, reused=True)
    index = build(read_sections(release, manifest), manifest["zig_version"], settings, read_asked(release, manifest))
    index.key = key
    try:
        _save(index, target, {"key": key, "zig_version": index.zig_version, "settings": asdict(settings),
                              "files": files})
    except OSError as e:  # a read-only corpus still serves: the index is rebuilt in memory next time
        log.warning("could not cache the retrieval index in %s (%s); using it from memory", root, e)
        return index
    for old in root.iterdir():
        if old.is_dir() and old.name != key and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    log.info("built the retrieval index of %s: %d sections -> %s", release, len(index.sections), target)
    return index


def _save(index: Index, target: Path, meta: dict) -> None:
    """Write the index to a temporary folder beside `target` and rename it into place: a reader sees all or none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        index.bm25.save(tmp, corpus=[s.to_json() for s in index.sections], show_progress=False)
        if index.asked is not None:
            index.asked.save(tmp / ASKED_DIR, show_progress=False)
        write_json(tmp / META, meta)  # last: a folder with meta.json is complete
        usual_permissions(tmp)
        os.rename(tmp, target)
    except OSError:
        if not (target / META).is_file():  # not another process that finished the same build first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
