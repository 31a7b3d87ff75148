"""The training set's sequences: one release's records turned into token sequences with labels.

Pure functions on records and a tokenizer; ziglora/train/trainset.py does the I/O around them, ziglora/train/mix.py
mixes the result, and TRL packs it (best-fit decreasing) — we do not pack or pad here.

Two kinds of sequence come out, each `{"input_ids", "labels", "source"}`:
- documents (language reference and release-notes sections, code examples, std lib files) as token windows cut at
  heading boundaries (ziglora/train/windows.py); every token of a document is trained.
- chat records (hand-written prompts, generated Q&A, cookbook recipes) rendered by the model's own chat
  template, with labels on the assistant's tokens only (-100 elsewhere).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ziglora.train.windows import CutStats, Tokenize, document_windows, render_example

if TYPE_CHECKING:
    from ziglora.train.teacher import TeacherTable

IGNORE = -100  # the label PyTorch's cross-entropy (and so transformers) skips
NO_TEACHER = -1  # the teacher_row of a token no distillation teacher scored

# Std lib files first in line for the token budget: the modules user code touches most.
STDLIB_PRIORITY = (
    "std/mem.zig", "std/array_list.zig", "std/hash_map.zig", "std/fmt.zig", "std/heap.zig", "std/testing.zig",
    "std/debug.zig", "std/io.zig", "std/fs.zig", "std/fs/File.zig", "std/fs/Dir.zig", "std/process.zig",
    "std/json.zig", "std/Build.zig", "std/meta.zig", "std/math.zig", "std/sort.zig", "std/ascii.zig",
    "std/unicode.zig", "std/Thread.zig", "std/array_hash_map.zig", "std/enums.zig", "std/log.zig", "std/std.zig",
)


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


class LeftOut(Enum):
    """Why a chat record does not train."""

    FAILED_VALIDATION = "failed_validation"  # code the release's compiler rejects
    TOO_LONG = "too_long"  # longer than the window: a conversation cut short would teach stopping mid-answer


@dataclass(frozen=True)
class ChatTokens:
    """A chat record's input_ids and labels, and why it is left out of training (None: it trains)."""

    input_ids: list[int]
    labels: list[int]
    left_out: LeftOut | None = None


def trainable_chat(record: dict, tokenizer, template_kwargs: dict, max_len: int) -> ChatTokens:
    """A chat record's tokens, or why it is left out (validation failed: no tokens; too long: never cut)."""
    if failed_validation(record):
        return ChatTokens([], [], LeftOut.FAILED_VALIDATION)
    ids, labels = chat_example(record["messages"], tokenizer, template_kwargs)
    return ChatTokens(ids, labels, LeftOut.TOO_LONG if len(ids) > max_len else None)


# ---------------------------------------------------------------------------------------------- assembly


@dataclass
class SourceStats:
    """Counted while building: input records of a source, what cutting them into windows cost, and the records
    left out (compile validation failed; a chat record longer than the window, which is never cut)."""

    records: int = 0
    cuts: CutStats = field(default_factory=CutStats)
    failed_validation: int = 0
    too_long: int = 0


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
                   tokenizer, max_len: int, stdlib_tokens: int, template_kwargs: dict, general: Sequence[dict] = (),
                   teacher: TeacherTable | None = None) -> tuple[list[dict], dict[str, SourceStats]]:
    """Every training sequence of a release (before oversampling and the eval split), with per-source stats.

    `by_kind` maps a manifest kind (doc_sections, examples, stdlib, chat) to its (path, records) outputs;
    `prompts` and `general` are {prompt, completion} records (hand-written; the base model's own answers). With a
    `teacher` table every sequence also has a teacher_row column (the teacher's table row per answer token it
    scored, NO_TEACHER elsewhere)."""
    def tokenize(text: str) -> list[int]:
        # verbose=False: a whole std lib file is longer than the model's context, which is fine before windowing
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    examples: list[dict] = []
    stats: dict[str, SourceStats] = {}

    def add_document(source: str, header: str, sections: list[str]) -> None:
        st = stats.setdefault(source, SourceStats())
        for ids in document_windows(header, sections, tokenize, max_len, st.cuts):
            examples.append(_with_rows({"input_ids": ids, "labels": list(ids), "source": source}, None, teacher))

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
    chats += [("general", {"id": general_key(r["prompt"]), "messages": prompt_messages(r)}) for r in general]
    for source, record in chats:
        st = stats.setdefault(source, SourceStats())
        st.records += 1
        chat = trainable_chat(record, tokenizer, template_kwargs, max_len)
        if chat.left_out is LeftOut.FAILED_VALIDATION:
            st.failed_validation += 1
        elif chat.left_out is LeftOut.TOO_LONG:
            st.too_long += 1
        else:
            example = {"input_ids": chat.input_ids, "labels": chat.labels, "source": source}
            examples.append(_with_rows(example, record.get("id"), teacher))
    return examples, stats


def general_key(prompt: str) -> str:
    """A general answer's identity, as the teacher table knows it (a fact record has its own id)."""
    return "general:" + prompt


def _with_rows(example: dict, key: str | None, teacher: TeacherTable | None) -> dict:
    """`example` with its teacher_row column when the run distils (all NO_TEACHER where the teacher scored none)."""
    if teacher is None:
        return example
    rows = teacher.rows_for(key, example["labels"]) if key is not None else None
    return {**example, "teacher_row": rows or [NO_TEACHER] * len(example["input_ids"])}

