"""Documents as training windows: language reference and release-notes sections, code examples and std lib files
cut into token windows of at most `max_len` tokens at heading boundaries.

Consecutive sections of one document share a window; a section too long for one is split at paragraph / code-block
boundaries, then at lines, and only a single over-long line is split inside (those tokens are counted as
`token_cut`). Every token of a document is trained (labels == input_ids).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Tokenize = Callable[[str], list[int]]


def render_example(ex: dict) -> str:
    """A langref / release-notes code example as a small document: where it sits, the code, the run."""
    where = " > ".join(ex.get("section") or [])
    parts = [f"### Example `{ex['file']}`" + (f" ({where})" if where else ""), f"```zig\n{ex['code'].rstrip()}\n```"]
    if ex.get("command"):
        result = (ex.get("expected_error") or ex.get("expected_output") or "").rstrip()
        parts.append("\n".join(["```console", f"$ {ex['command']}", *([result] if result else []), "```"]))
    return "\n\n".join(parts)


_FENCE = re.compile(r"^\s*(```|~~~)")


def text_blocks(text: str) -> list[str]:
    """Paragraphs and fenced code blocks; a blank line inside a fence does not end the block."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


@dataclass
class CutStats:
    """What splitting cost: sections split into pieces, and tokens split inside a single line."""

    split_sections: int = 0
    token_cut: int = 0


def _greedy(pieces: Iterable[list[int]], limit: int) -> list[list[int]]:
    """Join consecutive pieces (each <= limit) into as few runs of <= limit tokens as order allows."""
    runs: list[list[int]] = []
    for ids in pieces:
        if runs and len(runs[-1]) + len(ids) <= limit:
            runs[-1] = runs[-1] + ids
        else:
            runs.append(list(ids))
    return runs


def section_pieces(text: str, tokenize: Tokenize, limit: int, stats: CutStats) -> list[list[int]]:
    """Token pieces of one section, each <= limit, that concatenate back to the whole section.

    Splits only where it must: whole section, else at blank-line blocks, else at lines, and a single line
    longer than `limit` at token level (counted in stats.token_cut)."""
    ids = tokenize(text + "\n\n")
    if len(ids) <= limit:
        return [ids]
    stats.split_sections += 1
    pieces: list[list[int]] = []
    for block in text_blocks(text):
        block_ids = tokenize(block + "\n\n")
        if len(block_ids) <= limit:
            pieces.append(block_ids)
            continue
        lines = block.split("\n")
        for i, line in enumerate(lines):
            line_ids = tokenize(line + ("\n" if i < len(lines) - 1 else "\n\n"))
            if len(line_ids) <= limit:
                pieces.append(line_ids)
            else:
                stats.token_cut += len(line_ids)
                pieces.extend(line_ids[j:j + limit] for j in range(0, len(line_ids), limit))
    return _greedy(pieces, limit)


def document_windows(header: str, sections: Sequence[str], tokenize: Tokenize, max_len: int,
                     stats: CutStats) -> list[list[int]]:
    """Windows of <= max_len tokens over one document: each starts with `header` (what and which release),
    then whole consecutive sections; a section only spans windows when it alone is longer than one."""
    header_ids = tokenize(header + "\n\n")
    limit = max_len - len(header_ids)
    if limit < 16:
        raise ValueError(f"max_len {max_len} leaves no room after the {len(header_ids)}-token window header")
    pieces = [p for text in sections for p in section_pieces(text, tokenize, limit, stats)]
    return [header_ids + run for run in _greedy(pieces, limit)]
