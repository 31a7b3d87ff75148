"""The retriever (ziglora/retrieve): its tokenizer, the corpus it reads through manifest.json, the cached index, and
the context cut to a token budget; on a small release written here, so no `make data` is needed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ziglora.common.io import sha256_file, write_json, write_jsonl
from ziglora.data.manifest import DataError
from ziglora.retrieve.context import (
    CUT_NOTE,
    SEPARATOR,
    estimate_tokens,
    fit,
    header,
    render_section,
    retrieve,
    tokenizer_counter,
)
from ziglora.retrieve.corpus import NOTES, Section, section_id
from ziglora.retrieve.index import Hit, load_index
from ziglora.retrieve.tokenize import tokenize

LONG_CODE = "\n".join(f"    const value_{i} = compute({i});" for i in range(400))
NOTES_SECTIONS = [
    (["0.15.1 Release Notes"], "# 0.15.1 Release Notes\n\nThis release features 5 months of work.\n"),
    (["Language Changes", "usingnamespace Removed"],
     "### usingnamespace Removed\n\nThe `usingnamespace` keyword has been removed. Import declarations one by one.\n"),
    (["Language Changes", "Branch Hints"],
     "### Branch Hints\n\nUse `@branchHint(.cold)` at the start of a block; it replaces `@setCold`.\n"),
    (["Standard Library", "Allocators"],
     "### Allocators\n\n`std.heap.DebugAllocator` replaces GeneralPurposeAllocator. It detects leaks.\n"),
]
LANGREF_SECTIONS = [
    (["Introduction"], "## Introduction\n\nZig is a general-purpose programming language and toolchain.\n"),
    (["for"], "## for\n\nA for loop iterates over slices and arrays.\n"),
    (["Huge Example"],
     f"## Huge Example\n\nA long listing of values.\n\n```zig\nfn values() void {{\n{LONG_CODE}\n}}\n```\n"),
]
RECIPE = {"id": "cookbook/01-01", "source": "cookbook", "title": "Read file line by line",
          "messages": [{"role": "user", "content": "In Zig 0.15.2: Read file line by line with takeDelimiter."},
                       {"role": "assistant",
                        "content": "```zig\nwhile (try reader.takeDelimiter('\\n')) |line| {}\n```"}]}
QA = {"id": "qa/1", "source": "qa-facts", "messages": [{"role": "user", "content": "What replaced usingnamespace?"},
                                                       {"role": "assistant", "content": "Nothing: import each one."}]}


def _records(source: str, sections: list) -> list[dict]:
    return [{"source": source, "title_path": path, "level": len(path) + 1, "anchor": None, "text": text,
             "code_blocks": []} for path, text in sections]


def write_manifest(release: Path) -> None:
    """manifest.json for the files in `release`, with their real sha256 (as scripts/write_manifest.py would)."""
    kinds = {"langref_sections.jsonl": "doc_sections", "release_notes_sections.jsonl": "doc_sections",
             "cookbook.jsonl": "chat", "qa_train.jsonl": "chat"}
    outputs = [{"path": name, "kind": kind, "records": sum(1 for _ in open(release / name)),
                "bytes": (release / name).stat().st_size, "sha256": sha256_file(release / name)}
               for name, kind in kinds.items()]
    write_json(release / "manifest.json", {"zig_version": "0.15.2", "outputs": outputs})


@pytest.fixture
def release(tmp_path) -> Path:
    rel = tmp_path / "zig-0.15.2"
    write_jsonl(rel / "release_notes_sections.jsonl", _records(NOTES, NOTES_SECTIONS))
    write_jsonl(rel / "langref_sections.jsonl", _records("langref", LANGREF_SECTIONS))
    write_jsonl(rel / "cookbook.jsonl", [RECIPE])
    write_jsonl(rel / "qa_train.jsonl", [QA])
    write_manifest(rel)
    return rel


# ---------------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_keeps_identifiers_whole_and_split():
    assert tokenize("@branchHint") == ["@branchhint", "branchhint", "branch", "hint"]
    # whole forms as written; the words an identifier splits into are stemmed like any word
    assert tokenize("std.heap.DebugAllocator") == [
        "std.heap.debugallocator", "std", "heap", "debugallocator", "debug", "alloc"]
    assert tokenize("ArrayListUnmanaged on x86_64") == [
        "arraylistunmanaged", "array", "list", "unmanag", "x86_64", "x86", "64"]


def test_tokenizer_lowercases_stems_and_drops_english_stopwords_but_not_zig_keywords():
    assert tokenize("The Allocators are in the Standard Library") == ["alloc", "standard", "librari"]
    assert tokenize("debug allocator") == tokenize("DebugAllocator")[1:]  # described in words, found by its parts
    assert tokenize("if the for loop or while") == ["if", "for", "loop", "or", "while"]
    assert tokenize("Zig 0.15.1 requires Linux 5.10") == ["zig", "0.15.1", "requir", "linux", "5.10"]


# ---------------------------------------------------------------------------------------------- corpus and search


def test_sections_are_read_through_the_manifest_with_their_ids(release, tmp_path):
    index = load_index(release)
    ids = [s.id for s in index.sections]
    # both doc_sections outputs and the cookbook's recipes; the generated fact Q&A (also kind chat) is no document
    assert len(ids) == len(NOTES_SECTIONS) + len(LANGREF_SECTIONS) + 1
    assert "cookbook: Read file line by line" in ids and not any("replaced usingnamespace" in s.text
                                                                 for s in index.sections)
    # a natural question's `section` (a release-notes title path) names its section's id
    assert section_id(NOTES, ["Language Changes", "usingnamespace Removed"]) in ids
    assert index.zig_version == "0.15.2"


@pytest.mark.parametrize("query, first", [
    ("How do I mark a cold branch with @branchHint?", ["Language Changes", "Branch Hints"]),
    ("What replaced the general purpose allocator? Is there a debug allocator?", ["Standard Library", "Allocators"]),
    ("Can I still use usingnamespace?", ["Language Changes", "usingnamespace Removed"]),
])
def test_search_finds_the_section_by_identifier_or_by_its_words(release, query, first):
    hits = load_index(release).search(query, 3)
    assert hits[0].section.id == section_id(NOTES, first)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_query_naming_the_release_finds_its_notes(release):
    """Release-notes sections also carry the release's major.minor: "in 0.15" asks what changed in the release."""
    index = load_index(release)
    assert {h.section.source for h in index.search("0.15", 10)} == {NOTES}
    assert len(index.search("0.15", 10)) == len(NOTES_SECTIONS)
    assert index.search("0.14", 10) == []  # another release's name is only a word


def test_a_query_sharing_no_word_with_the_corpus_finds_nothing(release):
    assert load_index(release).search("quantum chromodynamics", 5) == []
    assert retrieve(load_index(release), "quantum chromodynamics").text == ""


def test_a_section_is_also_found_by_the_questions_generated_about_it(release):
    """A user asks in words the section's text does not use; build_qa.py's questions about the section (qa-facts
    records naming it) are a second, lighter field, so those words find it too."""
    question = "Which builtin tells the optimizer that a path is unlikely to run?"
    assert section_id(NOTES, ["Language Changes", "Branch Hints"]) not in [h.section.id for h in
                                                                          load_index(release).search(question, 3)]
    asked = {"id": "qa/2", "source": "qa-facts", "section": ["Language Changes", "Branch Hints"],
             "messages": [{"role": "user", "content": "How do I tell the optimizer that a path is unlikely?"},
                          {"role": "assistant", "content": "`@branchHint(.unlikely)`."}]}
    write_jsonl(release / "qa_train.jsonl", [QA, asked])
    write_manifest(release)
    index = load_index(release)
    assert index.search(question, 3)[0].section.id == section_id(NOTES, ["Language Changes", "Branch Hints"])
    assert index.sections == load_index(release, cache_root=release / "other").sections  # still no document of its own
    reused = load_index(release)
    assert reused.reused and [h.section for h in reused.search(question, 3)] == [h.section for h in
                                                                                 index.search(question, 3)]
    # the section's own words still decide among sections the questions do not tell apart
    assert index.search("debug allocator leaks", 1)[0].section.title_path == ("Standard Library", "Allocators")


# ---------------------------------------------------------------------------------------------- cache


def test_index_is_cached_beside_the_corpus_reused_when_unchanged_and_rebuilt_when_an_input_changes(release):
    first = load_index(release)
    assert not first.reused
    cached = release / "retrieval" / first.key
    assert (cached / "meta.json").is_file()
    assert json.loads((cached / "meta.json").read_text())["files"]["release_notes_sections.jsonl"] == sha256_file(
        release / "release_notes_sections.jsonl")
    again = load_index(release)
    assert again.reused and again.key == first.key and again.sections == first.sections
    query = "debug allocator leaks"
    assert [h.section for h in again.search(query, 3)] == [h.section for h in first.search(query, 3)]

    changed = NOTES_SECTIONS + [(["Build System", "Fuzzing"], "### Fuzzing\n\n`zig build --fuzz` fuzzes tests.\n")]
    write_jsonl(release / "release_notes_sections.jsonl", _records(NOTES, changed))
    with pytest.raises(DataError, match="does not match its sha256"):  # a file changed behind the manifest's back
        load_index(release)
    write_manifest(release)
    rebuilt = load_index(release)
    assert not rebuilt.reused and rebuilt.key != first.key
    assert rebuilt.search("fuzz my tests", 1)[0].section.title_path == ("Build System", "Fuzzing")
    # the old index is gone, no build folder is left behind
    assert sorted(p.name for p in (release / "retrieval").iterdir()) == [rebuilt.key]


def test_index_can_be_cached_elsewhere(release, tmp_path):
    index = load_index(release, cache_root=tmp_path / "cache")
    assert (tmp_path / "cache" / index.key / "meta.json").is_file() and not (release / "retrieval").exists()
    assert load_index(release, cache_root=tmp_path / "cache").reused


# ---------------------------------------------------------------------------------------------- budget and message


def test_context_keeps_whole_sections_in_rank_order_within_the_budget(release):
    index = load_index(release)
    hits = index.search("usingnamespace branchHint DebugAllocator", 5)
    assert len(hits) == 3
    whole = fit(index.zig_version, hits, budget=10_000)
    assert [s.id for s in whole.sections] == [h.section.id for h in hits] and not whole.cut
    assert whole.tokens == estimate_tokens(whole.text) and whole.text == whole.system_message()["content"]
    for budget, n in ((whole.tokens - 1, 2), (whole.tokens - 60, 1)):  # each of these sections is 50-60 tokens
        context = fit(index.zig_version, hits, budget)
        assert context.tokens <= budget and not context.cut
        assert [s.id for s in context.sections] == [h.section.id for h in hits][:n]
    assert fit(index.zig_version, hits, 10).sections == ()  # not even the header fits


def test_a_last_section_that_the_whole_count_takes_over_the_budget_is_left_out(release):
    """A tokenizer can count the joined text longer than its parts (merges across the joins): the whole decides."""
    index = load_index(release)
    hits = index.search("usingnamespace branchHint DebugAllocator", 5)
    parts = [header(index.zig_version) + SEPARATOR, *(render_section(h.section) + SEPARATOR for h in hits)]
    budget = sum(estimate_tokens(p) for p in parts)  # the three sections fit, counted part by part
    assert len(fit(index.zig_version, hits, budget).sections) == 3

    def joins_cost_more(text: str) -> int:
        return estimate_tokens(text) + 5 * text.count("\n\n#")  # a join: a section's heading after a blank line

    context = fit(index.zig_version, hits, budget, joins_cost_more)
    assert len(context.sections) == 2 and context.tokens == joins_cost_more(context.text) <= budget


def test_a_cut_section_that_the_whole_count_takes_over_the_budget_is_cut_again_shorter():
    """The head is chosen by adding up its lines' counts; where the joined text counts longer, the section is cut
    again with the overshoot taken off its room, so a lone section slightly over the budget still sends its head."""
    lines = [f"Line {i} of the allocator changes: remap resizes in place or moves the allocation." for i in range(30)]
    section = Section(NOTES, ("Standard Library", "Allocator API Changes"),
                      "### Allocator API Changes\n\n" + "\n".join(lines) + "\n")

    def breaks_before_text_cost_more(text: str) -> int:  # as a BPE tokenizer counts a blank line before a word
        return estimate_tokens(text) + 2 * len(re.findall(r"\n(?=[^\n])", text))

    count = breaks_before_text_cost_more
    budget = count(header("0.15.2") + SEPARATOR) + count(render_section(section) + SEPARATOR) - 10
    context = fit("0.15.2", [Hit(section, 1.0)], budget, count)
    assert context.sections == (section,) and context.cut
    assert context.tokens == count(context.text) <= budget
    assert "### Allocator API Changes" in context.blocks[0] and lines[0] in context.blocks[0]
    assert context.blocks[0].endswith(CUT_NOTE) and lines[-1] not in context.blocks[0]


def test_a_section_too_long_for_the_budget_is_cut_at_a_line_with_its_code_fence_closed(release):
    index = load_index(release)
    huge = next(s for s in index.sections if s.title_path == ("Huge Example",))
    context = fit(index.zig_version, [Hit(huge, 1.0)], budget=600)
    assert context.cut and context.sections == (huge,) and context.tokens <= 600
    block = context.blocks[0]
    assert block.endswith("```\n" + CUT_NOTE) and block.count("```") == 2
    assert "const value_0 = compute(0);" in block and "value_399" not in block


def test_a_section_that_does_not_fit_gives_way_to_a_shorter_one_after_it(release):
    index = load_index(release)
    huge = next(s for s in index.sections if s.title_path == ("Huge Example",))
    short = next(s for s in index.sections if s.title_path == ("for",))
    context = fit(index.zig_version, [Hit(huge, 2.0), Hit(short, 1.0)], budget=150)  # too little left to cut
    assert context.sections == (short,) and not context.cut


def test_budget_holds_with_the_real_qwen3_tokenizer(release, qwen3_tokenizer_dir):
    count = tokenizer_counter(qwen3_tokenizer_dir / "tokenizer.json")
    index = load_index(release)
    context = retrieve(index, "Huge Example of values, debug allocator", budget=400, count=count)
    assert context.cut and context.tokens == count(context.text) and context.tokens <= 400


def test_system_message_names_the_release_then_pastes_each_section_from_its_own_heading(release):
    """A section is pasted as the oracle pastes it: its text, which starts with its own heading, and no id line."""
    index = load_index(release)
    context = retrieve(index, "Is usingnamespace removed?")
    message = context.system_message()
    assert message["role"] == "system"
    assert message["content"] == SEPARATOR.join([header("0.15.2"), *context.blocks])
    assert "Zig 0.15.2 documentation" in message["content"]
    assert context.ids[0] == section_id(NOTES, ["Language Changes", "usingnamespace Removed"])
    assert context.blocks[0] == ("### usingnamespace Removed\n\n"
                                 "The `usingnamespace` keyword has been removed. Import declarations one by one.")
    assert context.blocks == tuple(render_section(s) for s in context.sections)
    assert all(block == s.text.strip() for block, s in zip(context.blocks, context.sections, strict=True))


def test_a_corpus_the_index_cannot_be_cached_beside_is_indexed_in_memory(release, tmp_path, caplog):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    index = load_index(release, cache_root=blocked)
    assert not index.reused and index.search("usingnamespace", 1)
    assert "could not cache the retrieval index" in caplog.text
