"""Generate question/answer pairs from the release notes of one Zig release.

Reads raw_data/zig-<version>/release_notes_sections.jsonl (written by build_release_notes.py) and writes
two kinds of training pairs, under raw_data/zig-<version>/:
  qa_train.jsonl     chat records {"id", "source", "messages": [user, assistant], "section", ...}:
                     - source "qa-facts" (what teaches): per fact, `--phrasings` questions keyed on each of its
                       distinctive terms, answered with the fact. Fields "fact" (its id), "term", "direction".
                     - source "qa" (the template pairs): per section, questions that name the section title,
                       answered with the whole section; kept so that template held-out and recall stay
                       measurable as a secondary measure.
  qa_heldout.jsonl   eval_facts {"q", "accept", "answer", "section"}: per section a fixed share of the template
                     phrasings (chosen with --seed), never trained on, for evaluate.py
  qa_recall.jsonl    eval_facts of the same sections asked in one of their *trained* template phrasings:
                     recall of what was trained, to read beside held-out accuracy (memorized vs. generalized)
and stages/build_qa.json (outputs and counts) for write_manifest.py.

Facts. A template pair taught SmolLM2-135M to recite a section when named by its title (77 % template
held-out) but not to answer a question worded as a user asks it (1/25, base model 2/25; issue 11). Knowledge
becomes extractable when each fact is seen in many question forms (Allen-Zhu & Li, Physics of LMs 3.1;
Ovadia et al. 2023) and in both directions (Berglund et al., the Reversal Curse). So a fact is one prose
sentence of a section (links and emphasis cleaned) that names a distinctive term, a table row, a `--help` line, a
title that states a change, or a name a before/after code example ("⬇️") writes differently; the questions never name
the section title; a sentence "`X` was renamed to `Y`" is asked about X (answered with Y) and about Y
(answered with X); and the answer states the sentence first, then where it sits in the notes, then the
section's smallest Zig block that uses one of its terms. Nothing is added that the section does not say.

`accept` is a case-insensitive regex a correct answer should contain: up to three distinctive
identifiers from the section's body (inline code and code blocks: `@branchHint`-like builtins,
dotted names, CamelCase/snake_case identifiers, --flags) that are rare across the notes and absent
from the question itself, since a term the question already names is matched by any answer that
merely repeats the question. Sections without such a term are not held out (all their phrasings are
trained on) and are counted; sections with (almost) no text of their own are skipped.
"""
from __future__ import annotations

import argparse
import difflib
import random
import re
import sys
from collections import Counter, defaultdict
from typing import NamedTuple

from ziglora.common.io import read_jsonl, write_jsonl
from ziglora.data import cli
from ziglora.data.stages import output_entry, record_stage, release_dir
from ziglora.evaluate.questions import provenance

SECTIONS_FILE = "release_notes_sections.jsonl"
TRAIN_FILE = "qa_train.jsonl"
HELDOUT_FILE = "qa_heldout.jsonl"
RECALL_FILE = "qa_recall.jsonl"

# {topic} is the section title, {ver} the release whose notes these are.
SECTION_TEMPLATES = (
    "What changed about {topic} in Zig {ver}?",
    "How do I use {topic} in Zig {ver}?",
    "Explain {topic} (new in Zig {ver}).",
    "What should I know about {topic} when upgrading to Zig {ver}?",
    "Summarize what the Zig {ver} release notes say about {topic}.",
    "I'm on Zig {ver}. Tell me about {topic}.",
    "Describe the {topic} change in Zig {ver}.",
    "What is new in Zig {ver} regarding {topic}?",
)
# The page's introduction (level 1) is about the release as a whole, not one topic.
INTRO_TEMPLATES = (
    "What is new in Zig {ver}?",
    "Give me an overview of the Zig {ver} release.",
    "What are the highlights of Zig {ver}?",
    "Summarize the Zig {ver} release notes.",
    "How big a release was Zig {ver}, and what does it focus on?",
    "I'm upgrading to Zig {ver}. What is the release about?",
    "Tell me about the Zig {ver} release.",
    "What did Zig {ver} bring?",
)

MIN_ANSWER_WORDS = 5  # a section whose own text is only a heading or a bare link number teaches nothing
MAX_ACCEPT_TERMS = 3
MAX_TERM_SECTIONS = 3  # a term found in more sections than this is not distinctive for any one of them

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
TERM = re.compile(r"@[A-Za-z_]\w*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
FLAG = re.compile(r"(?<!\S)--?[a-z][a-z0-9]+(?:-[a-z0-9]+)*")  # -fincremental, --watch
# Identifiers of these shapes are common to any Zig text; none of them pins down one section.
COMMON_TERMS = {
    "@import", "@as", "@This", "@intCast", "@ptrCast", "@alignCast", "@bitCast", "@TypeOf", "@typeInfo",
    "std.testing.expect", "std.testing.expectEqual", "std.testing.allocator", "std.debug.assert",
    "std.debug.print", "std.mem.Allocator", "error.Unexpected",
}
COMMON_ACRONYMS = {"API", "ABI", "CPU", "CLI", "URL", "HTTP", "ELF", "AST", "OS", "CI", "UTF"}

# Fact questions: {t} is one distinctive term of the fact sentence, {ver} the release. Our own forms, none of
# them naming the section title, so that what is learned is the fact, reachable from the term a user types.
# Some quote the term as code, some do not, some leave the version out: users write all of these.
FACT_FORMS = (
    "What happened to `{t}` in Zig {ver}?",
    "Is `{t}` still available in Zig {ver}?",
    "What is `{t}` in Zig {ver}?",
    "How would I use {t} in a Zig {ver} program?",
    "What does `{t}` do now?",
    "In Zig {ver}, what changed about {t}?",
    "What should I know about `{t}` when moving to Zig {ver}?",
    "Does Zig {ver} change how {t} works?",
    "Tell me about {t} in Zig {ver}.",
    "My code uses `{t}`. What do I need to know for Zig {ver}?",
    "What do the Zig {ver} release notes say about {t}?",
    "Explain `{t}` as of Zig {ver}.",
    "Quick Zig {ver} question: what's the story with {t}?",
    "Is there anything new about `{t}` in Zig {ver}?",
    "How does {t} behave in Zig {ver}?",
    "When would I reach for `{t}` in Zig {ver}?",
    "What's the deal with {t} after the Zig {ver} release?",
    "Where does `{t}` fit in Zig {ver}?",
)
# The two directions of a change (the reversal curse: a model trained on "A became B" does not answer "what
# became B?"): asked about the old name, the answer gives the new one, and the other way round.
OLD_FORMS = (
    "What should I use instead of `{t}` in Zig {ver}?",
    "What replaced {t} in Zig {ver}?",
    "`{t}` no longer compiles with Zig {ver}. What do I write now?",
    "What took the place of `{t}`?",
    "How do I migrate code that uses {t} to Zig {ver}?",
)
NEW_FORMS = (
    "What did `{t}` replace in Zig {ver}?",
    "What was used before {t} existed?",
    "Which older API does `{t}` take the place of?",
    "What did Zig code write before `{t}` came in with Zig {ver}?",
    "Before Zig {ver}, what did people use where they now use {t}?",
)
# Asked as well where the change is a new name (RENAMED): users ask for "what it is called now".
RENAMED_OLD_FORMS = ("What is `{t}` called now in Zig {ver}?", "What is the new name of {t}?")
RENAMED_NEW_FORMS = ("What was `{t}` called before Zig {ver}?", "What was the old name of {t}?")
# Cloze questions (the sentence asked back with one of its names or numbers replaced by "what") start with one of
# these leads, or none; keyword questions name a few of a fact's content words in one of these forms.
CLOZE_LEADS = ("", "", "In Zig {ver}, ", "According to the Zig {ver} release notes, ", "Zig {ver} question: ",
               "Since Zig {ver}, ")
KEYWORD_FORMS = (
    "What do the Zig {ver} release notes say about {kw}?",
    "What changed in Zig {ver} regarding {kw}?",
    "Zig {ver}: what should I know about {kw}?",
    "Is there anything in Zig {ver} about {kw}?",
    "What's the story with {kw} in Zig {ver}?",
    "I read something about {kw} in the Zig {ver} notes. What was it?",
    "Can you explain what Zig {ver} says about {kw}?",
    "How do {kw} fit together in Zig {ver}?",
)
KINDS = ("term", "cloze", "keywords")  # the kinds of fact question (fact_questions)
CLOZE_ANSWERS = ("value-first", "sentence")  # how a cloze is answered (fact_answer)
# How a question asked from one side of a change ("What replaced `@setCold`?", "What did `@branchHint` replace?")
# is answered: with the sentence, or with the names of the other side first, as a cloze names its value first.
CHANGE_ANSWERS = ("sentence", "other-side-first")
MAX_BLANKS = 3  # cloze targets per fact: its names first, then numbers
MAX_BLANK_CHARS = 60  # a longer code span is a snippet, not a name to ask for
CHANGE_ARROW = "⬇️"  # between a before and an after code block in the release notes
MAX_LINE_CHANGES = 2  # names swapped on one line of a before/after example
CHANGED_NAME = re.compile(r'[.&@]?[\w.@"]+(?:\(\))?')  # `.Struct`, `.@"struct"`, `@setCold`, `bw.writer()`
CODE_TOKEN = re.compile(r'\.?@"[^"\n]*"|[.@]?[A-Za-z_]\w*|\d\w*|\S')  # `.@"struct"`, `.Int`, `&`, `(`
MIN_FACT_KEYWORDS = 4  # content words a sentence without a distinctive term needs to be a fact (names lists have 1-3)
# A count in words ("four tiers"), asked as "how many tiers" as a count in digits is.
COUNT_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
COUNT_WORD = re.compile(rf"(?<![\w-])(?:{'|'.join(COUNT_WORDS)})(?=\s+[a-z]+s\b)", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.@-])\d[\d,]*(?:\.\d+)*(?:\s?(?:ms|KiB|MiB|GiB|KB|MB|GB|bytes|%))?(?![\w.-]*\w)")
KEYWORD = re.compile(r"`[^`\n]+`|[A-Za-z][\w.+-]*[\w+]|[A-Za-z]")
CLAUSE_EDGE = re.compile(r"(?<=[,;:.])\s+(?!`)")  # where a cloze crop may start or end (not inside a name list)
TABLE_RULE = re.compile(r"\|?(?:\s*:?-{3,}:?\s*\|)+\s*:?(?:-{3,}:?)?\s*")
OPTION_LINE = re.compile(r"^\s*(--?[a-z][\w-]*(?:[ =]<[^>]+>)?)\s{2,}(\S.*)$")  # "  --watch     Continuously …"
STOPWORDS = set("""a an the and or but if then else when while of to in on at by for with from into onto over under
about as is are was were be been being it its this that these those there here which who whom whose what where why
how not no nor so than too very can could should would may might must will shall do does did done has have had
having all any both each few more most other some such only own same just also now new now one two use used uses
using via per like unlike e.g i.e etc we our you your they their them he she his her i me my mine""".split())
MAX_NAME_TITLE_WORDS = 3  # "SmpAllocator", "WriteFile Step": a title that names one thing, not a change
MAX_TERM_TOPICS = 3  # 0.14.0: `LazyPath` and `WriteFile` are in 3 topics, none in more; a guard for other notes
# Asked about the old name (answered with the new one), about the new name, or about a name not in a change.
QUESTION_COUNTS = {"old": "questions_old_to_new", "new": "questions_new_to_old", "about": "questions_about"}
MAX_FACT_CODE_CHARS = 1200  # a longer example is a section's worth of text, not a fact's illustration
# Where a sentence turns from the old name to the new one ("`X` was renamed to `Y`"), or the other way round
# ("`Y`, replacing `X`"). Terms on the old side are asked with OLD_FORMS, the new side with NEW_FORMS.
OLD_TO_NEW = re.compile(
    r"\b(?:renamed(?:/moved)? to|replaced (?:with|by)|in favou?r of|moved to|split into|superseded by|"
    r"migrated to|aliased to|replaces? (?:it|them) with|now written)\b|->|→|\breplace\b[^;]{0,80}?\b(with)\b",
    re.IGNORECASE)
NEW_TO_OLD = re.compile(r"\b(?:instead of|replacing|replaces|replacement for|same purpose as|in place of|supersedes)\b",
                        re.IGNORECASE)
RENAMED = re.compile(r"\brenam|\bnow written\b", re.IGNORECASE)
REMOVED = re.compile(r"\b(?:removed?|deprecated|deleted?|no longer)\b", re.IGNORECASE)
FORMER = re.compile(r"\b(?:old|former|formerly(?: called| known as)?|legacy|deprecated)\W*$", re.IGNORECASE)
# A comma between two code spans continues a list ("split into `a`, `b`"); any other comma ends the clause.
CLAUSE_BREAK = re.compile(r"[;:]|(?<!`),|,(?! *`)|\b(?:to be|so that|because|which|since|as|just like)\b")
CONNECTIVE = re.compile(r"^(?:Therefore|However|Similarly|Meanwhile|In addition|Again|As such|Additionally|"
                        r"Furthermore|Moreover|Notably|Also|Thus|In particular|For convenience),\s+(\w?)")
MAX_LEAD_CHARS = 100  # a list's lead-in ("More deprecations:") short enough to repeat before each item
PRONOUN_START = re.compile(r"(?:It|Its|This|These|They|Their|That|Both)\b(?! (?:release|section|change)s?\b)")
TRIPLE = re.compile(r"[a-z][\w\[\]]*(?:-[\w\[\]]+){2,}")  # a target triple such as `thumb-windows-gnu`
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
EMPHASIS = re.compile(r"(\*\*|__|\*|(?<![\w])_)(?=\S)(.+?)(?<=\S)\1(?![\w])")
SENTENCE_END = re.compile(r"(?<=[.!?:])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)\s+(?=[A-Z@\"(\0])")


class Section(NamedTuple):
    title_path: list[str]
    anchor: str
    title: str
    level: int
    answer: str  # the section's Markdown without its heading line
    prose_code: list[str]  # inline code spans of the prose: the names the authors chose to highlight
    zig_code: list[str]  # code blocks that are Zig source
    other_code: list[str]  # the other blocks: shell sessions, --help excerpts, benchmarks


class MissingInput(FileNotFoundError):
    pass


ERRORS = (*cli.USER_ERRORS, MissingInput)


def strip_heading(text: str) -> str:
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    return "\n".join(lines).strip()


def is_zig_source(block: str) -> bool:
    return re.search(r"^\s*(?:pub |const |var |fn |test |export |comptime )", block, re.MULTILINE) is not None


def is_hash_like(span: str) -> bool:
    """Package hashes, commit ids and the like: long, no spaces, several digits."""
    return len(span) >= 20 and " " not in span and sum(c.isdigit() for c in span) >= 3


def parse_section(record: dict) -> Section:
    answer = strip_heading(record["text"])
    blocks = FENCE.findall(answer)  # `text` carries every code block of the section (DATA.md)
    spans = INLINE_CODE.findall(FENCE.sub("", answer))
    title = record["title_path"][-1]
    return Section(list(record["title_path"]), record.get("anchor") or "intro", title, record["level"], answer,
                   [s for s in spans if not is_hash_like(s)], [b for b in blocks if is_zig_source(b)],
                   [b for b in blocks if not is_zig_source(b)])


def word_count(markdown: str) -> int:
    prose = FENCE.sub("", markdown)
    return len(re.findall(r"[A-Za-z]{2,}", prose))


def is_distinctive(term: str) -> bool:
    """Does this identifier look like a name only some sections use (not an English word, not a keyword)?"""
    if term in COMMON_TERMS or term.endswith((".zig", ".zon", ".h", ".c")):
        return False
    if term.startswith("-"):
        return len(term) >= 5
    name = term.lstrip("@")
    if re.fullmatch(r"x[0-9a-fA-F]{4,}", name):  # the tail of a hex literal such as 0x00000000
        return False
    if re.fullmatch(r"[iuf]\d+|[a-z]", name):  # u8, i32, f64: primitive types
        return False
    if term.startswith("@") or "." in name:
        return True
    if len(name) >= 6 and "_" in name.strip("_"):  # snake_case: smp_allocator, page_size_min
        return True
    if re.search(r"[a-z][A-Z]|[A-Z]{2}[a-z]", name):  # CamelCase, mixed acronyms: DebugAllocator, UBSan
        return True
    if re.search(r"[A-Za-z]\d|\d[A-Za-z]", name) and len(name) >= 3:  # x86, w64
        return True
    return name.isupper() and len(name) >= 3 and name not in COMMON_ACRONYMS  # ZON, LLVM


def api_terms(code: str) -> list[str]:
    """Names of the language and its standard library in a piece of code: `@builtin`, `std.…`, flags."""
    names = [t for t in TERM.findall(code) if t.startswith(("@", "std."))]
    return [t for t in [*names, *FLAG.findall(code)] if is_distinctive(t)]


def terms_of(section: Section) -> Counter:
    """Distinctive terms with a weight. A name the prose highlights on its own (`DebugAllocator`) counts
    most; from snippets and code blocks only API names count, since an example's local names (`BufferA`,
    `new_state`) are not something an independent correct answer would repeat."""
    weights: Counter = Counter()
    for span in section.prose_code:
        names = TERM.findall(span) if " " not in span and not span.startswith("-") else []
        weights.update({t: 10 for t in [*names, *api_terms(span)] if is_distinctive(t)})
    for block in section.zig_code:
        weights.update(t for t in api_terms(block) if not t.startswith("-"))
    for block in section.other_code:
        weights.update(t for t in api_terms(block) if t.startswith("-"))
    return weights


def term_regex(term: str) -> str:
    # \b does not work next to `@`, `.` or `-`: guard with "no identifier character" lookarounds instead.
    return rf"(?<![\w@]){re.escape(term)}(?![\w])"


def accept_regex(counts: Counter, section_frequency: Counter, questions: list[str]) -> str | None:
    """A case-insensitive alternation of the section's most frequent distinctive terms, or None."""
    asked = " ".join(questions).lower()
    chosen = [
        t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if section_frequency[t] <= MAX_TERM_SECTIONS and t.lower() not in asked
    ][:MAX_ACCEPT_TERMS]
    if not chosen:
        return None
    return "(?i)" + "|".join(term_regex(t) for t in chosen)


def questions_for(section: Section, topic: str, version: str) -> list[str]:
    templates = INTRO_TEMPLATES if section.level == 1 else SECTION_TEMPLATES
    return [t.format(topic=topic, ver=version) for t in templates]


def topics(sections: list[Section]) -> list[str]:
    """The title to ask about; a title used by several sections is qualified with its parent's."""
    counts = Counter(s.title for s in sections)
    return [
        f"{s.title} ({s.title_path[-2]})" if counts[s.title] > 1 and len(s.title_path) > 1 else s.title
        for s in sections
    ]


def held_out_indices(n: int, share: float, seed: int, key: str) -> set[int]:
    """Which of a section's n phrasings to hold out: the same for the same seed, whatever the section order."""
    k = round(n * share)
    return set(random.Random(f"{seed}/{key}").sample(range(n), k))


class Fact(NamedTuple):
    id: str
    sentence: str  # one prose sentence, table row or option line of the section; links and emphasis cleaned
    terms: list[str]  # its distinctive terms, in order of appearance (may be none)
    direction: dict[str, str]  # term -> "old" | "new" | "about"
    code: str | None  # the section's smallest Zig block using one of the terms (never one showing a replaced name)
    section: list[str]
    blanks: list[str]  # what a cloze question asks for: distinctive terms, numbers, other code spans


def clean_prose(text: str) -> str:
    """Markdown links and emphasis reduced to their words; inline code spans are left as they are."""
    parts = re.split(r"(`[^`\n]+`)", LINK.sub(r"\1", text))
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = EMPHASIS.sub(r"\2", parts[i]).replace("\\-", "-")
    return re.sub(r"\s+([,;:.])(?=\s|$)", r"\1", " ".join("".join(parts).split()))


def prose_units(markdown: str) -> list[tuple[str, bool]]:
    """(text, is a list item) for each paragraph and list item; code blocks, tables and headings left out."""
    units: list[tuple[str, bool]] = []
    for paragraph in re.split(r"\n\s*\n", FENCE.sub("\n\n", markdown)):
        item: list[str] = []
        is_item = False
        for line in paragraph.splitlines():
            if line.lstrip().startswith(("|", "#")):
                continue
            if bullet := re.match(r"\s*(?:[*+-]|\d+\.)\s+", line):
                units.append((" ".join(item), is_item))
                item, is_item = [line[bullet.end():]], True
            else:
                item.append(line)
        units.append((" ".join(item), is_item))
    return [(text, is_item) for text, is_item in units if text.strip()]


def sentences(markdown: str) -> list[str]:
    """The prose sentences of a section: paragraphs and list items split at sentence ends (never inside
    inline code, never after "e.g."). Made to stand alone: a leading "Therefore, " / "However, " is dropped;
    a sentence that opens with a pronoun ("It is now renamed to …") is joined to the one before, which says
    what "it" is; a list item follows its short lead-in ("Deprecated aliases that are now compile errors:")."""
    found = []
    lead = ""
    for unit, is_item in prose_units(markdown):
        text = clean_prose(unit)
        spans = iter(INLINE_CODE.findall(text))
        masked = INLINE_CODE.sub("\0", text)  # a placeholder, so no dot inside inline code ends a sentence
        pieces = [re.sub("\0", lambda _, spans=spans: f"`{next(spans)}`", p).strip()
                  for p in SENTENCE_END.split(masked)]
        pieces = [CONNECTIVE.sub(lambda m: m.group(1).upper(), p) for p in pieces if p]
        for n, piece in enumerate(pieces):
            if n and PRONOUN_START.match(piece):
                found[-1] += " " + piece
            elif is_item and lead and n == 0 and word_count(piece) >= MIN_ANSWER_WORDS:  # a bare name stays bare
                found.append(f"{lead} {piece}")
            else:
                found.append(piece)
        if not is_item:
            lead = pieces[-1] if pieces and pieces[-1].endswith(":") and len(pieces[-1]) <= MAX_LEAD_CHARS else ""
    return found


def sentence_terms(text: str) -> list[str]:
    """Distinctive terms of a sentence (or title) in order of appearance. In inline code: the names terms_of
    reads from prose spans, and whole target triples (`arm-windows-gnu`). In plain prose, where ordinary
    words and acronyms abound (GCC, e.g.), only builtins, std.* names, flags and CamelCase names."""
    found: list[tuple[int, str]] = []
    for m in INLINE_CODE.finditer(text):
        span = m.group(1)
        if is_hash_like(span) and not re.fullmatch(r"[A-Za-z_@][\w.]*", span):  # utf8ToUtf16LeWithNull is a name
            continue
        if TRIPLE.fullmatch(span):
            found.append((m.start(), span))
            continue
        names = TERM.findall(span) if " " not in span and not span.startswith("-") else []
        found += [(m.start(), t) for t in [*names, *api_terms(span)] if is_distinctive(t)]
    plain = INLINE_CODE.sub(lambda m: " " * len(m.group()), text)
    for m in [*TERM.finditer(plain), *FLAG.finditer(plain)]:
        term = m.group().rstrip(".")
        if is_distinctive(term) and (term.startswith(("@", "std.", "-")) or re.search(r"[a-z][A-Z]", term)
                                     and "." not in term):
            found.append((m.start(), term))
    return list(dict.fromkeys(t for _, t in sorted(found, key=lambda p: p[0])))


def directions(sentence: str, terms: list[str]) -> dict[str, str]:
    """Which terms name what was replaced ("old") and which the replacement ("new"), from where the sentence
    turns ("renamed to", "in favor of", "replacing", ...): the terms before the turn are one side, those after
    it up to the end of that clause the other. The terms of a sentence that only removes are "old", and so is
    a term the sentence calls old ("the old `@setCold` builtin", "formerly called `GeneralPurposeAllocator`")."""
    where = {t: m.start() for t in terms if (m := re.search(term_regex(t), sentence))}
    called_old = {t for t, at in where.items() if FORMER.search(sentence[:at])}
    return {t: "old" if t in called_old else d for t, d in turn_directions(sentence, terms, where).items()}


def turn_directions(sentence: str, terms: list[str], where: dict[str, int]) -> dict[str, str]:
    turn = min((m for m in (OLD_TO_NEW.search(sentence), NEW_TO_OLD.search(sentence)) if m),
               key=lambda m: m.start(m.lastindex or 0), default=None)
    if turn is None:
        removed = REMOVED.search(sentence)
        return {t: "old" if removed and t in where and where[t] < removed.start() else "about" for t in terms}
    start, end = turn.span(turn.lastindex or 0)
    clause_end = m.start() + end if (m := CLAUSE_BREAK.search(sentence[end:])) else len(sentence)
    before, after = ("old", "new") if turn.re is OLD_TO_NEW else ("new", "old")
    return {t: "about" if t not in where else before if where[t] < start else after if end <= where[t] < clause_end
            else "about" for t in terms}


def fact_code(section: Section, terms: list[str], replaced: set[str]) -> str | None:
    """The smallest of the section's Zig blocks that uses one of the terms, leaving out blocks that use a
    name the section says was replaced (`@setCold(true)` before the change): an answer shows the new way."""
    def uses(block: str, wanted: list[str] | set[str]) -> bool:
        return any(re.search(term_regex(t), block) for t in wanted)
    fitting = [b for b in section.zig_code
               if len(b) <= MAX_FACT_CODE_CHARS and uses(b, terms) and not uses(b, replaced)]
    return min(fitting, key=len).rstrip() if fitting else None


def table_rows(markdown: str) -> list[str]:
    """Each body row of a Markdown table as one fact: the first column's header and cell, then every other
    filled cell under its column's name ("Target `x86_64-linux`: Tier 1, Linker 🟢, …"). A user asks "which tier
    is riscv64-linux in?", which only a row answers. Rows with one filled cell (separators such as `* * *`)
    say nothing and are left out."""
    found = []
    for block in re.split(r"\n\s*\n", FENCE.sub("\n\n", markdown)):
        lines = [line.strip() for line in block.splitlines() if line.strip().startswith("|")]
        if len(lines) < 3 or not TABLE_RULE.fullmatch(lines[1]):
            continue
        header = [clean_prose(c) for c in lines[0].strip("|").split("|")]
        for line in lines[2:]:
            cells = [clean_prose(c) for c in line.strip("|").split("|")]
            filled = [(h, c) for h, c in zip(header, cells, strict=False) if c]
            if len(filled) >= 2 and cells[0]:
                found.append(f"{header[0]} {cells[0]}: " + ", ".join(f"{h} {c}" for h, c in filled[1:]) + ".")
    return found


def option_lines(section: Section) -> list[str]:
    """`--help` excerpts in the section's code blocks, one fact per option: "`--watch`: Continuously rebuild when
    source files are modified." (asked as "which flag keeps rebuilding?")."""
    found = []
    for block in section.other_code:
        for line in block.splitlines():
            if m := OPTION_LINE.match(line):
                found.append(f"`{m.group(1)}`: {m.group(2).strip().rstrip('.')}.")
    return found


def code_changes(markdown: str) -> list[str]:
    """A before/after example (a code block, "⬇️" alone, the code block that replaces it) as facts, one per name
    the second block writes differently on a line it changes ("`.ComptimeInt` is now written `.comptime_int`"): a user
    asks "what is `.Struct` called now?", which the prose often answers only by showing both blocks."""
    parts = re.split(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)  # odd indices: blocks
    found = []
    for i in range(1, len(parts) - 2, 2):
        if parts[i + 1].strip() != CHANGE_ARROW:
            continue
        old_lines, new_lines = parts[i].splitlines(), parts[i + 2].splitlines()
        for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes():
            if tag != "replace" or a1 - a0 != b1 - b0:  # lines added or dropped say no "this became that"
                continue
            for old_line, new_line in zip(old_lines[a0:a1], new_lines[b0:b1], strict=True):
                for old, new in changed_spans(old_line, new_line):
                    found.append(f"In code, `{old}` is now written `{new}`.")
    return list(dict.fromkeys(found))


def changed_spans(old_line: str, new_line: str) -> list[tuple[str, str]]:
    """(old, new) for each name that `new_line` writes differently from `old_line`, when the two lines are the same
    line with at most MAX_LINE_CHANGES names swapped (`@setCold(true)` -> `@branchHint(.cold)`): lines that differ
    more were rewritten, and pairing their tokens would state changes the notes never made (0.15's BufferedWriter
    example paired `std.fs.File.stdout().writer()` with `undefined`)."""
    a, b = list(CODE_TOKEN.finditer(old_line)), list(CODE_TOKEN.finditer(new_line))
    matcher = difflib.SequenceMatcher(None, [m.group() for m in a], [m.group() for m in b], autojunk=False)
    changed = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(changed) > MAX_LINE_CHANGES or any(tag != "replace" for tag, *_ in changed) or matcher.ratio() < 0.5:
        return []
    pairs = [(old_line[a[i0].start():a[i1 - 1].end()], new_line[b[j0].start():b[j1 - 1].end()])
             for _, i0, i1, j0, j1 in changed]
    return pairs if all(CHANGED_NAME.fullmatch(old) and CHANGED_NAME.fullmatch(new) for old, new in pairs) else []


def title_fact(title: str) -> str | None:
    """A title that states a change ("@ptrCast Allows Changing Slice Length", more words than a name's
    MAX_NAME_TITLE_WORDS) as a sentence: its names in code spans, its other capitalized words lower-cased. Some
    sections say their fact only there (the one above has a link number as its text)."""
    words = title.split()
    if len(words) <= MAX_NAME_TITLE_WORDS:
        return None
    terms = sentence_terms(title)
    out = []
    for n, word in enumerate(words):
        term = next((t for t in terms if t in word), None)
        if term is not None:
            out.append(word.replace(term, f"`{term}`"))
        elif n and re.fullmatch(r"[A-Z][a-z]+(?:-[A-Z]?[a-z]+)*", word) and len(word) > 1:
            out.append(word.lower())
        else:
            out.append(word)
    return " ".join(out).rstrip(".") + "."


def keywords(sentence: str) -> list[str]:
    """The sentence's content words in order: its code spans (kept in backticks) and the plain words that are
    not function words, each once."""
    words = [m.group() for m in KEYWORD.finditer(sentence)]
    kept = [w for w in words if w.startswith("`") or (len(w) >= 3 and w.lower() not in STOPWORDS)]
    return list(dict.fromkeys(kept))


def blanks_of(sentence: str, terms: list[str]) -> list[str]:
    """What a cloze question about the sentence can ask for, at most MAX_BLANKS: the code spans that hold a
    distinctive term (the whole span, `@branchHint(.cold)`, so the question stays readable), the distinctive
    terms of the plain prose, then numbers (`3,467 commits`, `50ms`), then the other short code spans."""
    spans = [s for s in INLINE_CODE.findall(sentence) if len(s) <= MAX_BLANK_CHARS and not is_hash_like(s)]
    with_term = [s for s in spans if any(re.search(term_regex(t), s) for t in terms)]
    plain = INLINE_CODE.sub(lambda m: " " * len(m.group()), sentence)
    prose_terms = [t for t in terms if re.search(term_regex(t), plain)]
    counts = sorted([*NUMBER.finditer(plain), *COUNT_WORD.finditer(plain)], key=lambda m: m.start())
    numbers = [m.group() for m in counts]
    return list(dict.fromkeys([*with_term, *prose_terms, *numbers, *spans]))[:MAX_BLANKS]


def cloze(sentence: str, blank: str, version: str, rng: random.Random) -> str:
    """The sentence asked back with `blank` replaced by a question word ("… have been renamed to what?"): the
    clause around the blank always, the clauses before and after it at random, and at random a lead naming the
    release. A user's question shares some of a fact's words, never all: the crops teach the fact from parts."""
    quoted = f"`{blank}`"
    at = sentence.find(quoted)
    if at < 0:
        quoted = blank
        at = re.search(rf"(?<![\w@`.-]){re.escape(blank)}(?![\w`])", sentence).start()
    before, after = sentence[:at], sentence[at + len(quoted):]
    lead = rng.choice(CLOZE_LEADS).format(ver=version)
    asked = question_word(blank, rng)
    if not before.strip() and after.startswith(":"):  # "`--watch`: Continuously rebuild …", a list item's name
        return lead + (asked if lead else asked.capitalize()) + f" is this: {after[1:].strip().rstrip(' .')}?"
    counted = (blank.lower() in COUNT_WORDS or NUMBER.fullmatch(blank) and not re.search(r"[a-zA-Z%]", blank)) \
        and re.match(r"\s+[a-z]+s\b", after)
    left, right = CLAUSE_EDGE.split(before), CLAUSE_EDGE.split(after)
    # the fewer clauses the likelier (the smaller of two draws): most crops are a clause or two
    left = left[len(left) - 1 - min(rng.randrange(len(left)), rng.randrange(len(left))):]
    right = right[:1 + min(rng.randrange(len(right)), rng.randrange(len(right)))]
    text = (" ".join(left) + ("how many" if counted else asked) + " ".join(right)).strip()
    text = text.rstrip(" .,;:!") + "?"
    if lead and re.match(r"(?!Zig\b)[A-Z][a-z]*\b(?![.`])", text):  # "The … " continues the lead as "…, the …"
        text = text[0].lower() + text[1:]
    elif not lead:
        text = text[0].upper() + text[1:]
    return lead + text


def question_word(blank: str, rng: random.Random) -> str:
    """"what", or half the time the kind of name asked for where its form says it: users ask "which builtin …",
    "which flag …" (issue 11's natural questions are not consulted; these are the names' own shapes)."""
    kind = "builtin" if blank.startswith("@") else "flag" if blank.startswith("-") else \
        "target" if TRIPLE.fullmatch(blank) else None
    return f"which {kind}" if kind and rng.random() < 0.5 else "what"


def keyword_question(words: list[str], version: str, rng: random.Random) -> str:
    """A question naming two or three of the fact's content words (`words`, its rarest), in the sentence's order,
    in one of KEYWORD_FORMS."""
    k = min(len(words), rng.choice((2, 3)))
    picked = [words[i] for i in sorted(rng.sample(range(len(words)), k))]
    named = ", ".join(picked[:-1]) + " and " + picked[-1]
    return rng.choice(KEYWORD_FORMS).format(kw=named, ver=version)


def facts_of(section: Section, key: str) -> list[Fact]:
    """The section's facts: its title where it states a change (title_fact), every prose sentence, table row,
    `--help` option line and before/after code change (code_changes) that names a distinctive term or has at
    least MIN_FACT_KEYWORDS content words (a lone name in a list of contributors has neither).
    A section titled by a name ("SmpAllocator", "addLibrary Function": at most MAX_NAME_TITLE_WORDS words) is
    about that name in every sentence ("This allocator is a singleton …", "Acts as a replacement for
    `addSharedLibrary` …"), so the name is a term of each of its sentences too, and the fact names it first
    ("`SmpAllocator`: An allocator that is designed for ReleaseFast …"), where the implicit subject stands."""
    all_title_terms = sentence_terms(section.title)
    title_terms = all_title_terms if len(section.title.split()) <= MAX_NAME_TITLE_WORDS else []
    found = []
    rows = table_rows(section.answer)  # asked by name and keywords, not as clozes: many rows share each value
    stated = [s for s in (title_fact(section.title),) if s]
    for sentence in dict.fromkeys([*stated, *sentences(section.answer), *rows, *option_lines(section),
                                   *code_changes(section.answer)]):
        if word_count(sentence) < MIN_ANSWER_WORDS:
            continue
        # A row is about what its first cell names (`x86_64-linux`), whatever the cell's shape.
        own = [key.group(1)] if sentence in rows and (key := re.match(r"[^`]*`([^`]+)`:", sentence)) else \
            sentence_terms(sentence)
        if not own and len(keywords(sentence)) < MIN_FACT_KEYWORDS:
            continue
        implicit = [t for t in title_terms if t not in own]
        if implicit:  # the subject named where the answer starts, and askable like a list item's name
            sentence = ", ".join(f"`{t}`" for t in implicit) + ": " + sentence
        terms = implicit + own
        found.append((sentence, terms, directions(sentence, terms)))
    replaced = {t for _, terms, direction in found for t in terms if direction[t] == "old"}
    replaced |= {t for t, d in directions(section.title, all_title_terms).items() if d == "old"}
    return [Fact(f"{key}/{n}", sentence, terms, direction,
                 fact_code(section, terms, replaced) if terms else None, section.title_path,
                 [] if sentence in rows else blanks_of(sentence, terms))
            for n, (sentence, terms, direction) in enumerate(found)]


def fact_answer(fact: Fact, version: str, level: int, asked_for: tuple[str, ...] = ()) -> str:
    """The fact first (its key name within the first tokens), where it is from, then its code. A cloze's answer
    (`asked_for`: its blank) names the value asked for before the sentence: answered with the sentence alone, whose
    words the question quotes, the second sweep's adapters learned to restate the question and stop where the
    value was due ("Zig 0.14.0 uses thumb-windows-gnu for Windows on 32-bit ARM. This is part of …"), even on
    general questions ("The capital of France is France.")."""
    where = provenance(version, fact.section[-1], level)
    shown = ", ".join(f"`{name}`" if f"`{name}`" in fact.sentence else name for name in asked_for)
    # a list item starts with its name already
    lead = f"{shown}: " if shown and not fact.sentence.startswith(shown) else ""
    answer = f"{lead}{fact.sentence}\n\n{where}"
    return answer + (f"\n\n```zig\n{fact.code}\n```" if fact.code else "")


def fact_forms(direction: str, phrasings: int, rng: random.Random, renamed: bool = False) -> list[str]:
    """`phrasings` distinct forms: for a term on one side of a change up to half from that direction's forms
    (with the rename forms where the change is a new name), so that every phrasing budget asks both ways; the
    rest from the general forms."""
    own = {"old": OLD_FORMS + RENAMED_OLD_FORMS * renamed, "new": NEW_FORMS + RENAMED_NEW_FORMS * renamed
           }.get(direction, ())
    k = min(len(own), (phrasings + 1) // 2)
    return rng.sample(own, k) + rng.sample(FACT_FORMS, phrasings - k)


def distinct(make, n: int) -> list[str]:
    """Up to `n` different questions from `make()` (random crops and forms repeat; a few tries each)."""
    out: list[str] = []
    for _ in range(4 * n):
        if len(out) == n:
            break
        q = make()
        if q not in out:
            out.append(q)
    return out


def rarest(words: list[str], frequency: Counter) -> list[str]:
    """The rarer half of a fact's content words across all facts (at least MIN_FACT_KEYWORDS), in sentence order:
    what tells this fact from the others ("debounce", not "default")."""
    keep = set(sorted(words, key=lambda w: frequency[w.lower()])[:max(MIN_FACT_KEYWORDS, len(words) // 2)])
    return [w for w in words if w in keep]


def fact_questions(fact: Fact, asked: list[str], version: str, phrasings: int, seed: int, frequency: Counter
                   ) -> list[tuple[str, str | None, int, str, tuple[str, ...]]]:
    """(kind, term, index, question, asked_for) for one fact; `asked_for`: the names the question asks for (a
    cloze's blank; the other side of a change for a term asked in its direction's forms). Three kinds, because a
    user reaches a fact from either side:
    - term: `phrasings` forms per distinctive term (from the name to the fact, both directions of a change);
    - cloze: per blank, half as many crops of the sentence asking for it (from the description to the name:
      "What is designed for ReleaseFast with multithreading?" is answered by `SmpAllocator`);
    - keywords: half as many questions naming a few of its rarer content words (what a user remembers of it).
    `frequency`: in how many facts each (lowercased) content word occurs."""
    out = []
    for term in asked:
        rng = random.Random(f"{seed}/{fact.id}/{term}")
        side = fact.direction[term]
        other = tuple(t for t in fact.terms if fact.direction[t] == {"old": "new", "new": "old"}.get(side))
        out += [("term", term, i, form.format(t=term, ver=version), other if form not in FACT_FORMS else ())
                for i, form in enumerate(fact_forms(side, phrasings, rng, RENAMED.search(fact.sentence) is not None))]
    share = max(1, phrasings // 2)
    for blank in fact.blanks:
        rng = random.Random(f"{seed}/{fact.id}/cloze/{blank}")
        out += [("cloze", blank, i, q, (blank,)) for i, q in enumerate(distinct(
            lambda blank=blank, rng=rng: cloze(fact.sentence, blank, version, rng), share))]
    words = rarest(keywords(fact.sentence), frequency)
    if len(words) >= MIN_FACT_KEYWORDS:
        rng = random.Random(f"{seed}/{fact.id}/keywords")
        out += [("keywords", None, i, q, ()) for i, q in enumerate(
            distinct(lambda: keyword_question(words, version, rng), share))]
    return out


def build_facts(records: list[dict], version: str, phrasings: int, seed: int, kinds: tuple[str, ...] = KINDS,
                cloze_answers: str = CLOZE_ANSWERS[0], change_answers: str = CHANGE_ANSWERS[0]
                ) -> tuple[list[dict], dict]:
    """(fact chat records, counts): per fact its term, cloze and keyword questions (fact_questions), each answered
    with the fact. A term found in the facts of more than MAX_TERM_TOPICS topics is not asked about by name: its
    questions would have as many unrelated answers. A topic is a section with its subsections ("Removal of
    @fence" and its three parts are one topic about `@fence`). A question already asked of another fact is
    left out (counted): one question, one answer. `kinds`: the kinds of question made (a control run leaves one
    out); `cloze_answers`: "value-first" (fact_answer) or "sentence", the second sweep's answers, for a control;
    `change_answers`: one of CHANGE_ANSWERS."""
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
            for kind, term, i, question, asked_for in fact_questions(fact, asked, version, phrasings, seed,
                                                                     frequency):
                if kind not in kinds:
                    continue
                if question in seen:
                    stats["questions_asked_twice_left_out"] += 1
                    continue
                seen.add(question)
                led = cloze_answers == "value-first" if kind == "cloze" else change_answers == "other-side-first"
                answer = fact_answer(fact, version, section.level, asked_for if led else ())
                direction = fact.direction.get(term, "about") if term else "about"
                stats[QUESTION_COUNTS[direction] if kind == "term" else f"questions_{kind}"] += 1
                train.append({
                    "id": f"qa-facts/{fact.id}/{kind}/{term or ''}/{i}", "source": "qa-facts",
                    "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                    "section": fact.section, "fact": fact.id, "kind": kind, "term": term, "direction": direction,
                })
    stats["fact_questions"] = len(train)
    return train, dict(stats)


def build(records: list[dict], version: str, share: float,
          seed: int) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(train chat records, held-out eval facts, recall eval facts, counts) for the given section records."""
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


def share_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def phrasings_arg(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= len(FACT_FORMS):
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {len(FACT_FORMS)}, got {text!r}")
    return int(text)


def kinds_arg(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(","))
    if not kinds or set(kinds) - set(KINDS):
        raise argparse.ArgumentTypeError(f"must be some of {','.join(KINDS)}, got {text!r}")
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__)
    parser.add_argument("--heldout-share", type=share_arg, default=0.25,
                        help="share of each section's phrasings held out for evaluation (default: 0.25)")
    parser.add_argument("--seed", type=int, default=0,
                        help="chooses the held-out phrasings and the fact question forms (default: 0)")
    parser.add_argument("--phrasings", type=phrasings_arg, default=8,
                        help=f"questions per fact and term, forms drawn with --seed (1..{len(FACT_FORMS)}, default: 8)")
    parser.add_argument("--kinds", type=kinds_arg, default=KINDS, help=(
        f"comma-separated kinds of fact question to make, of {','.join(KINDS)} (default: all; fewer for a control "
        "run that measures what one kind adds)"))
    parser.add_argument("--cloze-answers", choices=CLOZE_ANSWERS, default=CLOZE_ANSWERS[0], help=(
        "value-first: a cloze is answered with the value it asks for, then the sentence; sentence: the sentence "
        "alone, for a control run (default: value-first)"))
    parser.add_argument("--change-answers", choices=CHANGE_ANSWERS, default=CHANGE_ANSWERS[0], help=(
        "sentence: a question asked from one side of a change (what replaced X, what did Y replace) is answered "
        "with the fact's sentence; other-side-first: with the names of the other side first (default: sentence; "
        "other-side-first taught no more dev facts by epoch 4 on SmolLM2, docs/RESULTS.md)"))
    args = parser.parse_args(argv)
    out = release_dir(args.zig_version, args.out_root)
    source = out / SECTIONS_FILE
    if not source.is_file():
        raise MissingInput(f"{source} not found: run `python scripts/build_release_notes.py --zig-version "
                           f"{args.zig_version} --out-root {args.out_root}` first")
    sections = list(read_jsonl(source))
    notes_version = sections[0]["notes_version"] if sections else args.zig_version  # the notes the stage read
    train, heldout, recall, stats = build(sections, notes_version, args.heldout_share, args.seed)
    fact_train, fact_stats = build_facts(sections, notes_version, args.phrasings, args.seed, args.kinds,
                                         args.cloze_answers, args.change_answers)
    write_jsonl(out / TRAIN_FILE, train + fact_train)
    write_jsonl(out / HELDOUT_FILE, heldout)
    write_jsonl(out / RECALL_FILE, recall)
    record_stage(out, "build_qa", sources=[], outputs=[
        output_entry(out, out / TRAIN_FILE, "chat", len(train) + len(fact_train)),
        output_entry(out, out / HELDOUT_FILE, "eval_facts", len(heldout)),
        output_entry(out, out / RECALL_FILE, "eval_facts", len(recall)),
    ], stats={**stats, **fact_stats})
    print(f"Q&A for Zig {notes_version} notes: " + ", ".join(f"{k} {v}" for k, v in stats.items())
          + f" -> {out}")
    print(f"fact Q&A ({args.phrasings} phrasings per fact and term): "
          + ", ".join(f"{k} {v}" for k, v in fact_stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
