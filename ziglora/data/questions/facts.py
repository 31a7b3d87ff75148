"""A section's facts: its sentences, table rows, `--help` lines, before/after code changes and a title that states a
change, each with its distinctive terms, the side of a change each term is on, its code and what a cloze can ask
for."""
from __future__ import annotations

import difflib
import re
from typing import NamedTuple

from ziglora.data.questions.sections import (
    FENCE,
    FLAG,
    INLINE_CODE,
    MIN_ANSWER_WORDS,
    TERM,
    Section,
    api_terms,
    is_distinctive,
    is_hash_like,
    term_regex,
    word_count,
)
from ziglora.data.questions.sentences import clean_prose, sentences

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
TABLE_RULE = re.compile(r"\|?(?:\s*:?-{3,}:?\s*\|)+\s*:?(?:-{3,}:?)?\s*")
OPTION_LINE = re.compile(r"^\s*(--?[a-z][\w-]*(?:[ =]<[^>]+>)?)\s{2,}(\S.*)$")  # "  --watch     Continuously …"
STOPWORDS = set("""a an the and or but if then else when while of to in on at by for with from into onto over under
about as is are was were be been being it its this that these those there here which who whom whose what where why
how not no nor so than too very can could should would may might must will shall do does did done has have had
having all any both each few more most other some such only own same just also now new now one two use used uses
using via per like unlike e.g i.e etc we our you your they their them he she his her i me my mine""".split())
MAX_NAME_TITLE_WORDS = 3  # "SmpAllocator", "WriteFile Step": a title that names one thing, not a change
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
TRIPLE = re.compile(r"[a-z][\w\[\]]*(?:-[\w\[\]]+){2,}")  # a target triple such as `thumb-windows-gnu`


class Fact(NamedTuple):
    id: str
    sentence: str  # one prose sentence, table row or option line of the section; links and emphasis cleaned
    terms: list[str]  # its distinctive terms, in order of appearance (may be none)
    direction: dict[str, str]  # term -> "old" | "new" | "about"
    code: str | None  # the section's smallest Zig block using one of the terms (never one showing a replaced name)
    section: list[str]
    blanks: list[str]  # what a cloze question asks for: distinctive terms, numbers, other code spans


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
