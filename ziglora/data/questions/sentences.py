"""A section's prose as sentences that stand alone: paragraphs and list items, links and emphasis reduced to their
words, split at sentence ends."""
from __future__ import annotations

import re

from ziglora.data.questions.sections import FENCE, INLINE_CODE, MIN_ANSWER_WORDS, word_count

CONNECTIVE = re.compile(r"^(?:Therefore|However|Similarly|Meanwhile|In addition|Again|As such|Additionally|"
                        r"Furthermore|Moreover|Notably|Also|Thus|In particular|For convenience),\s+(\w?)")
MAX_LEAD_CHARS = 100  # a list's lead-in ("More deprecations:") short enough to repeat before each item
PRONOUN_START = re.compile(r"(?:It|Its|This|These|They|Their|That|Both)\b(?! (?:release|section|change)s?\b)")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
EMPHASIS = re.compile(r"(\*\*|__|\*|(?<![\w])_)(?=\S)(.+?)(?<=\S)\1(?![\w])")
SENTENCE_END = re.compile(r"(?<=[.!?:])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)\s+(?=[A-Z@\"(\0])")


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
