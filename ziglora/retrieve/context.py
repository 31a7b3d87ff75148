"""Retrieved sections as a model's context: the top hits cut to a token budget, rendered as one system message."""
from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.models import BUILT_IN, converted_dir
from ziglora.retrieve.corpus import Section
from ziglora.retrieve.index import Hit, Index

DEFAULT_BUDGET = 2500  # tokens: an 8k window less Aider's prompt for most exercises and a reply (docs/RETRIEVAL.md)
DEFAULT_K = 5  # sections considered, best first, before the budget cuts them
MIN_CUT = 200  # tokens: a cut section shorter than this is too little of it to be worth the space
# Fewer characters per token than Qwen3 and SmolLM2 average on the docs, so that the estimate errs long.
CHARS_PER_TOKEN = 3
CUT_NOTE = "[… the rest of this section is left out to fit the context budget]"
SKIP_NOTE = "[… the beginning of this section is left out to fit the context budget]\n\n"
SEPARATOR = "\n\n"  # between the header and each section
FENCE = "```\n"  # closes a code fence a cut left open
# Windows are runs of lines, not paragraphs: a paragraph (a code listing) can be longer than the room itself.
_UNIT = re.compile(r"[^\n]*\n*")
TIE = 1e-9  # a later window must score more than rounding above an earlier one to take its place

TokenCounter = Callable[[str], int]
LineScorer = Callable[[list[str]], Sequence[float]]  # each line's relevance to the request


def estimate_tokens(text: str) -> int:
    """A tokenizer-free count that errs long: for a server whose tokenizer is not at hand."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def model_tokenizer(model: str) -> Path | None:
    """`model`'s tokenizer.json where this machine has it: a built-in model's converted copy, a model directory, or
    the Hugging Face cache (never downloaded: a count is not worth a download); None elsewhere."""
    local = converted_dir(model) if model in BUILT_IN else Path(model)
    if (local / "tokenizer.json").is_file():
        return local / "tokenizer.json"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "tokenizer.json")
    except (ImportError, ValueError):  # no hub client, or not a repo id
        return None
    return Path(cached) if isinstance(cached, str) else None


def model_counter(model: str | None) -> tuple[TokenCounter, str]:
    """(a counter with `model`'s own tokenizer where model_tokenizer finds it, else the estimate; what it counts
    by, for a report)."""
    path = model_tokenizer(model) if model else None
    if path is None:
        return estimate_tokens, f"estimated as characters / {CHARS_PER_TOKEN}"
    return tokenizer_counter(path), f"by {model}'s tokenizer"


def tokenizer_counter(tokenizer_json: Path) -> TokenCounter:
    """Exact counts with a model's own tokenizer.json (Hugging Face `tokenizers`), remembered per text: the corpus's
    sections and lines come back request after request (the count itself is `.__wrapped__`)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))

    @functools.cache  # bounded by the corpus: fit() remembers only its sections and their lines
    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


@dataclass(frozen=True)
class Context:
    zig_version: str
    sections: tuple[Section, ...]
    blocks: tuple[str, ...]  # each section as rendered (the last one possibly cut)
    text: str  # the system message's content: the header and the blocks ("" when nothing was found)
    tokens: int  # of `text`, by the counter the budget was kept with
    cut: bool  # the last section is only its beginning

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.sections]

    def system_message(self) -> dict:
        return {"role": "system", "content": self.text}


def header(zig_version: str) -> str:
    return (f"Sections of the Zig {zig_version} documentation (language reference, release notes, cookbook) found "
            "for the user's request. Where they apply, they are more accurate than what you remember of Zig.")


def render_section(section: Section) -> str:
    return f"--- {section.id} ---\n{section.text.strip()}"


def _units(block: str) -> list[str]:
    """`block` as lines, each with the line breaks after it: where a byte-level BPE pre-tokenizer splits."""
    return [u for u in _UNIT.findall(block) if u]


def _window(block: str, room: int, count: TokenCounter, score: LineScorer | None) -> str | None:
    """The title line and the contiguous run of `block`'s other lines that fits `room` tokens and scores highest (the
    sum of `score`'s figure for its lines; ties go to the earliest, so without `score` it is the head). Notes say what
    was left out before and after it; a code fence it starts or ends inside is reopened or closed. None when not even
    the title line fits."""
    units = _units(block)
    n = len(units)
    sums = list(itertools.accumulate((count(u) for u in units), initial=0))
    gains = list(itertools.accumulate(score(units) if score else [0.0] * n, initial=0.0))
    opener: list[str | None] = [None]  # opener[i]: the fence line still open before line i
    for unit in units:
        opener.append((None if opener[-1] else unit) if unit.lstrip().startswith("```") else opener[-1])

    def cost(s: int, e: int) -> int:  # the title line, lines s..e-1 and what the cut adds around them
        return (sums[e] - sums[s] + sums[1] + (count(SKIP_NOTE) if s > 1 else 0)
                + (count(opener[s]) if s > 1 and opener[s] else 0)
                + (count(FENCE) if e < n and opener[e] else 0) + (count(CUT_NOTE) if e < n else 0))

    best, e = None, 1
    for s in range(1, n):
        end = n - 1 if s == 1 else n  # the whole block did not fit: a window from its head leaves its last line
        e = min(max(e, s), end)
        while e > s and cost(s, e) > room:
            e -= 1
        while e < end and cost(s, e + 1) <= room:
            e += 1
        if (e > s or s == 1) and cost(s, e) <= room and (
                best is None or gains[e] - gains[s] > gains[best[1]] - gains[best[0]] + TIE):
            best = (s, e)
        if e == n:  # every later window is a part of this one
            break
    if best is None:
        return None
    s, e = best
    before = units[0] + (SKIP_NOTE + (opener[s] or "") if s > 1 else "")
    after = "\n" + (FENCE if opener[e] else "") + CUT_NOTE if e < n else ""
    return (before + "".join(units[s:e])).rstrip("\n") + after


def prepare(index: Index, count: TokenCounter) -> None:
    """Count every section (as a whole and line by line) once, so that a remembering counter (tokenizer_counter)
    only looks counts up when a request comes."""
    for section in index.sections:
        block = render_section(section)
        count(block)
        count(block + SEPARATOR)
        for unit in _units(block):
            count(unit)


def fit(zig_version: str, hits: list[Hit], budget: int, count: TokenCounter = estimate_tokens,
        score: LineScorer | None = None) -> Context:
    """Whole sections in rank order while they fit `budget` tokens (header included); the first that does not fit is
    cut to the run of its lines that `score` rates best for the request (its head without `score`) if at least MIN_CUT
    tokens are left, else skipped for a later, shorter one.

    The choice adds up the parts' counts (a section with the blank line after it, a line with its line breaks), each
    counted once per process by a remembering counter. BPE merges across the joins can make the whole a few tokens
    longer than that sum, so the whole is counted once more, and a last section that takes it over is left out."""
    sections: list[Section] = []
    blocks: list[str] = []
    used = count(header(zig_version) + SEPARATOR)
    cut = False
    for hit in hits:
        block = render_section(hit.section)
        need = count(block + SEPARATOR)
        if used + need <= budget:
            sections.append(hit.section)
            blocks.append(block)
            used += need
            continue
        if budget - used >= MIN_CUT and (part := _window(block, budget - used, count, score)) is not None:
            sections.append(hit.section)
            blocks.append(part)
            cut = True
            break
    whole = getattr(count, "__wrapped__", count)  # each request's text is new: counted, not remembered
    while blocks:
        text = SEPARATOR.join([header(zig_version), *blocks])
        tokens = whole(text)
        if tokens <= budget:
            return Context(zig_version, tuple(sections), tuple(blocks), text, tokens, cut)
        sections.pop()
        blocks.pop()
        cut = False  # only the last block can be the cut one
    return Context(zig_version, (), (), "", 0, False)


def lines_scorer(index: Index, query: str) -> LineScorer:
    """Rates a section's lines for `query` by the index's own BM25, so that a cut keeps the part that answers it."""
    return functools.partial(index.score_passages, query)


def retrieve(index: Index, query: str, budget: int = DEFAULT_BUDGET, k: int = DEFAULT_K,
             count: TokenCounter = estimate_tokens) -> Context:
    """The context for one request: the index's k best sections for `query`, cut to `budget` tokens."""
    return fit(index.zig_version, index.search(query, k), budget, count, lines_scorer(index, query))
