"""The Q&A stage: template pairs per release-notes section and fact pairs per fact, written as qa_train.jsonl,
qa_heldout.jsonl and qa_recall.jsonl with the stage record."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import read_jsonl, write_jsonl
from ziglora.data.questions.facts import facts_of, keywords
from ziglora.data.questions.forms import fact_answer, fact_questions
from ziglora.data.questions.sections import (
    MIN_ANSWER_WORDS,
    accept_regex,
    held_out_indices,
    parse_section,
    questions_for,
    terms_of,
    topics,
    word_count,
)
from ziglora.data.stages import output_entry, record_stage, release_dir

SECTIONS_FILE = "release_notes_sections.jsonl"
TRAIN_FILE = "qa_train.jsonl"
HELDOUT_FILE = "qa_heldout.jsonl"
RECALL_FILE = "qa_recall.jsonl"
DEFAULT_HELDOUT_SHARE = 0.25
DEFAULT_PHRASINGS = 8
MAX_TERM_TOPICS = 3  # a term in more topics than this would have as many unrelated answers
# Asked about the old name (answered with the new one), about the new name, or about a name not in a change.
QUESTION_COUNTS = {"old": "questions_old_to_new", "new": "questions_new_to_old", "about": "questions_about"}


class MissingInput(FileNotFoundError):
    pass


@dataclass
class QABuild:
    release: Path
    notes_version: str  # the notes the sections came from
    template_stats: dict
    fact_stats: dict


def build_facts(records: list[dict], version: str, phrasings: int, seed: int) -> tuple[list[dict], dict]:
    """(fact chat records, counts): per fact its term, cloze and keyword questions (fact_questions), each answered
    with the fact. A term found in the facts of more than MAX_TERM_TOPICS topics is not asked about by name: its
    questions would have as many unrelated answers. A topic is a section with its subsections ("Removal of
    @fence" and its three parts are one topic about `@fence`). A question already asked of another fact is
    left out (counted): one question, one answer. A cloze is answered with the value it asks for first."""
    sections = [parse_section(r) for r in records]
    facts = [facts_of(s, f"{version}/{n:03d}-{s.anchor}") for n, s in enumerate(sections)]
    topics_of = defaultdict(set)
    for section, per in zip(sections, facts, strict=True):
        for term in {t for f in per for t in f.terms}:
            topics_of[term].add(tuple(section.title_path[:2]))
    frequency = Counter(w.lower() for per in facts for f in per for w in set(keywords(f.sentence)))
    train: list[dict] = []
    seen: set[str] = set()
    stats = Counter()
    for section, per in zip(sections, facts, strict=True):
        stats["sections_without_facts"] += not per
        for fact in per:
            asked = [t for t in fact.terms if len(topics_of[t]) <= MAX_TERM_TOPICS]
            stats["facts"] += 1
            stats["facts_with_two_terms"] += len(asked) >= 2
            stats["facts_without_terms"] += not fact.terms
            for kind, term, i, question in fact_questions(fact, asked, version, phrasings, seed, frequency):
                if question in seen:
                    stats["questions_asked_twice_left_out"] += 1
                    continue
                seen.add(question)
                answer = fact_answer(fact, version, section.level, term if kind == "cloze" else None)
                direction = fact.direction.get(term, "about") if term else "about"
                stats[QUESTION_COUNTS[direction] if kind == "term" else f"questions_{kind}"] += 1
                train.append({
                    "id": f"qa-facts/{fact.id}/{kind}/{term or ''}/{i}", "source": "qa-facts",
                    "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                    "section": fact.section, "fact": fact.id, "kind": kind, "term": term, "direction": direction,
                })
    stats["fact_questions"] = len(train)
    return train, dict(stats)


def build_templates(records: list[dict], version: str, share: float,
                    seed: int) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(train chat records, held-out eval facts, recall eval facts, counts): per section its template questions,
    answered with the whole section, a seeded share of them held out."""
    sections = [parse_section(r) for r in records]
    section_frequency = Counter(t for s in sections for t in set(terms_of(s)))
    train: list[dict] = []
    heldout: list[dict] = []
    recall: list[dict] = []
    stats = Counter()
    for n, (section, topic) in enumerate(zip(sections, topics(sections), strict=True)):
        if word_count(section.answer) < MIN_ANSWER_WORDS:
            stats["sections_skipped_no_text"] += 1
            continue
        questions = questions_for(section, topic, version)
        accept = accept_regex(terms_of(section), section_frequency, questions)
        held = held_out_indices(len(questions), share, seed, "/".join(section.title_path)) if accept else set()
        stats["sections_used"] += 1
        stats["sections_without_key_term"] += accept is None
        # Recall asks a held-out section once more, in its first trained phrasing.
        recall_index = min(set(range(len(questions))) - held) if held else None
        for i, q in enumerate(questions):
            fact = {"q": q, "accept": accept, "answer": section.answer, "section": section.title_path}
            if i in held:
                heldout.append(fact)
            else:
                if i == recall_index:
                    recall.append(fact)
                train.append({
                    "id": f"qa/{version}/{n:03d}-{section.anchor}/{i}",  # anchors alone need not be unique
                    "source": "qa",
                    "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": section.answer}],
                    "section": section.title_path,
                })
    stats["train"], stats["heldout"], stats["recall"] = len(train), len(heldout), len(recall)
    return train, heldout, recall, dict(stats)


def build_qa(zig_version: str, out_root: Path, heldout_share: float = DEFAULT_HELDOUT_SHARE, seed: int = 0,
             phrasings: int = DEFAULT_PHRASINGS) -> QABuild:
    """Read the release's release_notes_sections.jsonl, write its three Q&A files and stages/build_qa.json."""
    out = release_dir(zig_version, out_root)
    source = out / SECTIONS_FILE
    if not source.is_file():
        raise MissingInput(f"{source} not found: run `python scripts/build_release_notes.py --zig-version "
                           f"{zig_version} --out-root {out_root}` first")
    sections = list(read_jsonl(source))
    notes_version = sections[0]["notes_version"] if sections else zig_version  # the notes the stage read
    train, heldout, recall, stats = build_templates(sections, notes_version, heldout_share, seed)
    fact_train, fact_stats = build_facts(sections, notes_version, phrasings, seed)
    write_jsonl(out / TRAIN_FILE, train + fact_train)
    write_jsonl(out / HELDOUT_FILE, heldout)
    write_jsonl(out / RECALL_FILE, recall)
    record_stage(out, "build_qa", sources=[], outputs=[
        output_entry(out, out / TRAIN_FILE, "chat", len(train) + len(fact_train)),
        output_entry(out, out / HELDOUT_FILE, "eval_facts", len(heldout)),
        output_entry(out, out / RECALL_FILE, "eval_facts", len(recall)),
    ], stats={**stats, **fact_stats})
    return QABuild(out, notes_version, stats, fact_stats)
