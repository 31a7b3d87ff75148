"""Retrieved sections as a model's context: the top hits cut to a token budget, rendered as one system message."""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
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
SEPARATOR = "\n\n"  # between the header and each section
FENCE = "```\n"  # closes a code fence a cut left open
_UNIT = re.compile(r"[^\n]*\n*")

TokenCounter = Callable[[str], int]


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
    """A section as the model reads it: its own text, which starts with its heading, as the oracle pastes it (no id
    line before it: docs/RETRIEVAL.md)."""
    return section.text.strip()


def _units(block: str) -> list[str]:
    """`block` as lines, each with the line breaks after it: where a byte-level BPE pre-tokenizer splits."""
    return [u for u in _UNIT.findall(block) if u]


def _cut(block: str, room: int, count: TokenCounter) -> str | None:
    """The longest leading run of `block`'s lines that fits `room` tokens with the cut note (a code fence left open
    is closed); None when not even the first line fits."""
    used, open_fence, best = count(CUT_NOTE), False, None
    units = _units(block)
    for n, unit in enumerate(units[:-1], 1):  # the whole block did not fit: at least its last line goes
        used += count(unit)
        open_fence ^= unit.lstrip().startswith("```")
        if used + (count(FENCE) if open_fence else 0) > room:
            break
        best = (n, open_fence)
    if best is None:
        return None
    n, open_fence = best
    return "".join(units[:n]).rstrip("\n") + "\n" + (FENCE if open_fence else "") + CUT_NOTE


def prepare(index: Index, count: TokenCounter) -> None:
    """Count every section (as a whole and line by line) once, so that a remembering counter (tokenizer_counter)
    only looks counts up when a request comes."""
    for section in index.sections:
        block = render_section(section)
        count(block)
        count(block + SEPARATOR)
        for unit in _units(block):
            count(unit)


def fit(zig_version: str, hits: list[Hit], budget: int, count: TokenCounter = estimate_tokens) -> Context:
    """Whole sections in rank order while they fit `budget` tokens (header included); the first that does not fit is
    cut to its leading lines if at least MIN_CUT tokens are left, else skipped for a later, shorter one.

    The choice adds up the parts' counts (a section with the blank line after it, a line with its line breaks), each
    counted once per process by a remembering counter. BPE merges across the joins can make the whole a few tokens
    longer than that sum, so the whole is counted once more: a cut section that takes it over is cut again with the
    overshoot taken off its room, and a whole last section that takes it over is left out."""
    sections: list[Section] = []
    blocks: list[str] = []
    used = count(header(zig_version) + SEPARATOR)
    cut_from: str | None = None  # the whole block the last one was cut from
    for hit in hits:
        block = render_section(hit.section)
        need = count(block + SEPARATOR)
        if used + need <= budget:
            sections.append(hit.section)
            blocks.append(block)
            used += need
            continue
        room = budget - used
        if room >= MIN_CUT and (head := _cut(block, room, count)) is not None:
            sections.append(hit.section)
            blocks.append(head)
            cut_from = block
            break
    whole = getattr(count, "__wrapped__", count)  # each request's text is new: counted, not remembered
    while blocks:
        text = SEPARATOR.join([header(zig_version), *blocks])
        tokens = whole(text)
        if tokens <= budget:
            return Context(zig_version, tuple(sections), tuple(blocks), text, tokens, cut_from is not None)
        if cut_from is not None:  # each pass takes at least a token off the room, so this ends
            room -= tokens - budget
            if room >= MIN_CUT and (head := _cut(cut_from, room, count)) is not None:
                blocks[-1] = head
                continue
        sections.pop()
        blocks.pop()
        cut_from = None  # only the last block can be the cut one
    return Context(zig_version, (), (), "", 0, False)


def retrieve(index: Index, query: str, budget: int = DEFAULT_BUDGET, k: int = DEFAULT_K,
             count: TokenCounter = estimate_tokens) -> Context:
    """The context for one request: the index's k best sections for `query`, cut to `budget` tokens."""
    return fit(index.zig_version, index.search(query, k), budget, count)
