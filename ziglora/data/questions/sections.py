"""Release-notes sections as the Q&A generator reads them: parsing, distinctive terms, accept regexes, and the
template questions that name a section's title."""
from __future__ import annotations

import random
import re
from collections import Counter
from typing import NamedTuple

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


class Section(NamedTuple):
    title_path: list[str]
    anchor: str
    title: str
    level: int
    answer: str  # the section's Markdown without its heading line
    prose_code: list[str]  # inline code spans of the prose: the names the authors chose to highlight
    zig_code: list[str]  # code blocks that are Zig source
    other_code: list[str]  # the other blocks: shell sessions, --help excerpts, benchmarks


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
