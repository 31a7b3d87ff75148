"""The training set: one release's files (through manifest.json) turned into token sequences with labels.

Pure functions on records and a tokenizer; train_lora.py does the I/O around them and hands the result
to TRL, which packs the sequences (best-fit decreasing, padding-free) — we do not pack or pad here.

Two kinds of sequence come out, each `{"input_ids", "labels", "source"}`:
- documents (language reference and release-notes sections, code examples, std lib files) as token
  windows of at most `max_len` tokens, cut at heading boundaries: consecutive sections of one document
  share a window; a section too long for one is split at paragraph / code-block boundaries, then at lines,
  and only a single over-long line is split inside (those tokens are counted as `token_cut`). Every token
  of a document is trained (labels == input_ids).
- chat records (hand-written prompts, generated Q&A, cookbook recipes) rendered by the model's own chat
  template, with labels on the assistant's tokens only (-100 elsewhere).
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

IGNORE = -100  # the label PyTorch's cross-entropy (and so transformers) skips

Tokenize = Callable[[str], list[int]]

# Std lib files first in line for the token budget: the modules user code touches most.
STDLIB_PRIORITY = (
    "std/mem.zig", "std/array_list.zig", "std/hash_map.zig", "std/fmt.zig", "std/heap.zig", "std/testing.zig",
    "std/debug.zig", "std/io.zig", "std/fs.zig", "std/fs/File.zig", "std/fs/Dir.zig", "std/process.zig",
    "std/json.zig", "std/Build.zig", "std/meta.zig", "std/math.zig", "std/sort.zig", "std/ascii.zig",
    "std/unicode.zig", "std/Thread.zig", "std/array_hash_map.zig", "std/enums.zig", "std/log.zig", "std/std.zig",
)


# ---------------------------------------------------------------------------------------------- documents


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


# ---------------------------------------------------------------------------------------------- chat


def chat_example(messages: list[dict], tokenizer, template_kwargs: dict) -> tuple[list[int], list[int]]:
    """input_ids and labels for one conversation, rendered by the tokenizer's own chat template.

    An assistant span is the message's content where the template placed it, plus the text the template closes
    the turn with (up to trailing whitespace) — for Qwen3 / ChatML exactly `content<|im_end|>`. Searched rather
    than assumed at a prefix length, because Qwen3 renders earlier turns differently (it drops their think
    blocks). Token labels come from character offsets, so the template's text is never re-assembled by hand."""
    def render(msgs: list[dict], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt,
                                             **template_kwargs)

    full = render(messages, False)
    spans, cursor = [], 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            # skip past this turn's text in `full`, so an answer that quotes the question is found in the answer
            found = full.find(msg["content"].strip(), cursor)
            cursor = found + len(msg["content"].strip()) if found >= 0 else cursor
            continue
        content = msg["content"].strip()
        alone = render(messages[: i + 1], False)  # this turn rendered last: what the template puts after it
        suffix = alone[alone.rfind(content) + len(content):].rstrip()
        start = full.find(content, cursor)
        if start < 0 or not full.startswith(suffix, start + len(content)):
            raise ValueError("cannot find an assistant message in its chat-template rendering")
        cursor = start + len(content) + len(suffix)
        spans.append((start, cursor))
    if not spans:
        raise ValueError("a chat record has no assistant message")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = [tok if any(s <= a and b <= e for s, e in spans) else IGNORE
              for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)]
    return list(enc["input_ids"]), labels


def prompt_messages(rec: dict) -> list[dict]:
    """A hand-written prompts file record ({"prompt","completion","topic"}) as a conversation."""
    return [{"role": "user", "content": rec["prompt"]}, {"role": "assistant", "content": rec["completion"]}]


# ---------------------------------------------------------------------------------------------- mixing


def oversample(examples: list[dict], other_tokens: int, share: float, seed: int) -> list[dict]:
    """Repeat `examples` so they make about `share` of all tokens (never fewer than one copy each).

    Whole copies first, then a seeded sample of the remainder, so the mix is reproducible."""
    if not examples or share <= 0:
        return list(examples)
    own = sum(len(e["input_ids"]) for e in examples)
    target = share / (1 - share) * other_tokens
    copies = max(1.0, target / own)
    out = [e for _ in range(int(copies)) for e in examples]
    extra = round((copies - int(copies)) * len(examples))
    out += random.Random(seed).sample(examples, extra)
    return out


def mix(examples: list[dict], shares: dict[str, float], seed: int) -> list[dict]:
    """The training mix: sources named in `shares` ({source: share of all tokens}) repeated to their share of the
    tokens after oversampling, every other source once. Shares of sources this set lacks are ignored. A source
    that one pass already takes past its share keeps that one pass and counts with the others: the remaining
    shares are then of the real total (solved again until none is over), not of a total that pretends the big
    source had shrunk to its share (which left the prompts at 3 % instead of 10 % when the fact Q&A alone was 72 %)."""
    shares = {source: share for source, share in shares.items() if any(e["source"] == source for e in examples)}
    own = {source: sum(len(e["input_ids"]) for e in examples if e["source"] == source) for source in shares}
    while True:
        rest_tokens = sum(len(e["input_ids"]) for e in examples if e["source"] not in shares)
        total = rest_tokens / (1 - sum(shares.values()))  # tokens after oversampling
        over = {source for source, share in shares.items() if own[source] >= share * total}
        if not over:
            break
        shares = {source: share for source, share in shares.items() if source not in over}
    rest = [e for e in examples if e["source"] not in shares]
    return rest + [copy for source, share in shares.items()
                   for copy in oversample([e for e in examples if e["source"] == source], total * (1 - share), share,
                                          seed)]


def split_eval(examples: list[dict], eval_share: float, seed: int,
               keep_sources: Iterable[str] = ("prompts", "qa-facts", "general")) -> tuple[list[dict], list[dict]]:
    """Seeded train/eval split. Records of `keep_sources` (the hand-written prompts, the fact Q&A, whose learning
    the facts probe measures, and the base model's general answers) always stay in training."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    candidates = [i for i in order if examples[i]["source"] not in set(keep_sources)]
    held = set(candidates[: int(len(candidates) * eval_share)])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [examples[i] for i in sorted(held)]


@dataclass
class SourceStats:
    """Counted while building: input records of a source, what cutting them into windows cost, and the records
    left out (compile validation failed; a chat record longer than the window, which is never cut)."""

    records: int = 0
    cuts: CutStats = field(default_factory=CutStats)
    failed_validation: int = 0
    too_long: int = 0


def token_table(examples: list[dict], stats: dict[str, SourceStats], max_len: int) -> list[dict]:
    """One row per source of what goes into training (after oversampling): tokens, share, cuts, truncation.

    `truncated` counts tokens of sequences longer than max_len (packing would have to cut them): must be 0."""
    per: dict[str, dict] = {}
    for ex in examples:
        row = per.setdefault(ex["source"], {"sequences": 0, "tokens": 0, "trained_tokens": 0, "truncated": 0})
        row["sequences"] += 1
        row["tokens"] += len(ex["input_ids"])
        row["trained_tokens"] += sum(1 for lab in ex["labels"] if lab != IGNORE)
        row["truncated"] += max(0, len(ex["input_ids"]) - max_len)
    total = sum(r["tokens"] for r in per.values()) or 1
    rows = []
    for source, row in per.items():
        st = stats.get(source, SourceStats())
        rows.append({"source": source, "records": st.records, **row, "share": round(row["tokens"] / total, 4),
                     "split_sections": st.cuts.split_sections, "token_cut": st.cuts.token_cut,
                     "dropped": st.failed_validation + st.too_long})
    return rows


def format_table(rows: list[dict], padding_share: float) -> str:
    cols = ["source", "records", "sequences", "tokens", "trained_tokens", "share", "split_sections", "token_cut",
            "truncated", "dropped"]
    width = {c: max(len(c), 22 if c == "source" else 9) for c in cols}
    lines = [" ".join(f"{c:>{width[c]}}" for c in cols)]
    for r in rows:
        lines.append(" ".join(f"{r[c]:>{width[c]}.2%}" if c == "share" else f"{r[c]:>{width[c]}}" for c in cols))
    totals = {c: sum(r[c] for r in rows) for c in cols[1:] if c != "share"}
    lines.append(" ".join(f"{totals.get(c, 'total' if c == 'source' else '100%'):>{width[c]}}" for c in cols))
    lines.append(f"padding share of the packed batches: {padding_share:.2%}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- assembly

DOC_TITLES = {"langref": "language reference", "release-notes": "release notes"}
# Every source a release's training set can have, as the token table names them (docs/DATA.md): the data stage's
# documents, examples and chat records, the hand-written prompts, the base model's general answers.
SOURCES = ("langref", "langref-examples", "release-notes", "release-notes-examples", "stdlib", "cookbook", "qa",
           "qa-facts", "prompts", "general")


def failed_validation(record: dict) -> bool:
    """Did the data stage's compile validation fail this record (validate_examples.py)? Code the release's own
    compiler rejects must not be taught as the release's code; skipped and unvalidated records stay."""
    return (record.get("validation") or {}).get("status") == "failed"


def select_stdlib(records: list[dict], tokenize: Tokenize, budget: int) -> list[tuple[dict, int]]:
    """Whole std lib files, most-used modules first (STDLIB_PRIORITY, then by path), while they fit `budget`
    tokens. A file that does not fit is skipped, never cut short; the sizes are measured, not estimated."""
    rank = {p: i for i, p in enumerate(STDLIB_PRIORITY)}
    chosen, used = [], 0
    for rec in sorted(records, key=lambda r: (rank.get(r["path"], len(rank)), r["path"].count("/"), r["path"])):
        if budget - used < 64:
            break
        n = len(tokenize(rec["text"]))
        if used + n <= budget:
            chosen.append((rec, n))
            used += n
    return chosen


def build_examples(version: str, by_kind: dict[str, list[tuple[str, list[dict]]]], prompts: list[dict],
                   tokenizer, max_len: int, stdlib_tokens: int, template_kwargs: dict, general: Sequence[dict] = ()
                   ) -> tuple[list[dict], dict[str, SourceStats]]:
    """Every training sequence of a release (before oversampling and the eval split), with per-source stats.

    `by_kind` maps a manifest kind (doc_sections, examples, stdlib, chat) to its (path, records) outputs;
    `prompts` and `general` are {prompt, completion} records (hand-written; the base model's own answers)."""
    def tokenize(text: str) -> list[int]:
        # verbose=False: a whole std lib file is longer than the model's context, which is fine before windowing
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    examples: list[dict] = []
    stats: dict[str, SourceStats] = {}

    def add_document(source: str, header: str, sections: list[str]) -> None:
        st = stats.setdefault(source, SourceStats())
        for ids in document_windows(header, sections, tokenize, max_len, st.cuts):
            examples.append({"input_ids": ids, "labels": list(ids), "source": source})

    for _, records in by_kind.get("doc_sections", []):
        for source in dict.fromkeys(r["source"] for r in records):  # one document per source, in file order
            sections = [r["text"] for r in records if r["source"] == source]
            stats.setdefault(source, SourceStats()).records += len(sections)
            add_document(source, f"Zig {version} {DOC_TITLES.get(source, source)}", sections)
    for _, records in by_kind.get("examples", []):
        for source in dict.fromkeys(r["source"] for r in records):
            mine = [r for r in records if r["source"] == source]
            chosen = [render_example(r) for r in mine if not failed_validation(r)]
            st = stats.setdefault(f"{source}-examples", SourceStats())
            st.records += len(mine)
            st.failed_validation += len(mine) - len(chosen)
            add_document(f"{source}-examples", f"Zig {version} {DOC_TITLES.get(source, source)} examples", chosen)
    stdlib = [r for _, records in by_kind.get("stdlib", []) for r in records]
    for rec, _ in select_stdlib(stdlib, tokenize, stdlib_tokens):
        stats.setdefault("stdlib", SourceStats()).records += 1
        add_document("stdlib", f"Zig {version} standard library: lib/{rec['path']}", [rec["text"].rstrip()])
    chats = [(r.get("source", "chat"), r) for _, records in by_kind.get("chat", []) for r in records]
    chats += [("prompts", {"messages": prompt_messages(r)}) for r in prompts]
    chats += [("general", {"messages": prompt_messages(r)}) for r in general]
    for source, record in chats:
        st = stats.setdefault(source, SourceStats())
        st.records += 1
        tokens = trainable_chat(record, tokenizer, template_kwargs, max_len)
        if tokens == "failed_validation":
            st.failed_validation += 1
        elif tokens == "too_long":
            st.too_long += 1
        else:
            examples.append({"input_ids": tokens[0], "labels": tokens[1], "source": source})
    return examples, stats


def trainable_chat(record: dict, tokenizer, template_kwargs: dict, max_len: int) -> tuple[list[int], list[int]] | str:
    """(input_ids, labels) of a chat record that trains, or why it is left out: "failed_validation" (code the
    release's compiler rejects) or "too_long" (longer than the window: a conversation cut short would teach an
    answer that stops mid-sentence)."""
    if failed_validation(record):
        return "failed_validation"
    ids, labels = chat_example(record["messages"], tokenizer, template_kwargs)
    return "too_long" if len(ids) > max_len else (ids, labels)
