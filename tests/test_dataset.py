"""The training set's sequences (ziglora/train/examples.py, windows.py, mix.py) on the real Qwen3 tokenizer: windows,
cuts, assistant-only labels, the prompt mix."""
import pytest
from transformers import AutoTokenizer

from ziglora.train import examples as ds
from ziglora.train import mix
from ziglora.train.windows import CutStats, document_windows, render_example, text_blocks

QWEN3_THINKING_OFF = {"enable_thinking": False}


@pytest.fixture(scope="module")
def tok(qwen3_tokenizer_dir):
    return AutoTokenizer.from_pretrained(qwen3_tokenizer_dir)


def tokenize_with(tok):
    return lambda text: tok(text, add_special_tokens=False)["input_ids"]


def section(title: str, words: int, code: str = "") -> str:
    body = " ".join(f"{title.lower()}{i}" for i in range(words))
    return f"## {title}\n\n{body}\n\n" + (f"```zig\n{code}\n```" if code else "")


def test_text_blocks_keep_fenced_code_with_blank_lines_together():
    text = "## T\n\npara one\nstill one\n\n```zig\nconst a = 1;\n\nconst b = 2;\n```\n\nlast"
    assert text_blocks(text) == ["## T", "para one\nstill one", "```zig\nconst a = 1;\n\nconst b = 2;\n```",
                                    "last"]


def test_windows_start_at_headings_and_lose_nothing(tok):
    sections = [section(name, n) for name, n in [("Alpha", 20), ("Beta", 30), ("Gamma", 10), ("Delta", 40),
                                                 ("Epsilon", 5)]]
    stats = CutStats()
    windows = document_windows("Zig 0.14.0 language reference", sections, tokenize_with(tok), 160, stats)
    texts = [tok.decode(w) for w in windows]
    assert len(windows) > 1 and all(len(w) <= 160 for w in windows)
    assert stats.split_sections == 0 and stats.token_cut == 0
    for text in texts:  # every window = header, then whole sections
        body = text.removeprefix("Zig 0.14.0 language reference\n\n")
        assert body.startswith("## "), text
    # nothing cut or dropped: the windows' bodies are the sections, in order
    assert "".join(t.removeprefix("Zig 0.14.0 language reference\n\n") for t in texts) == \
        "".join(s + "\n\n" for s in sections)


def test_long_section_splits_at_blocks_and_counts_only_an_overlong_line(tok):
    code = "\n".join(f"const v{i} = {i};" for i in range(60))  # one code block far longer than a window
    long_line = "x" * 3000  # one line longer than a window: the only thing cut inside
    sections = [section("Small", 10), section("Big", 20, code) + "\n\n" + long_line, section("After", 10)]
    stats = CutStats()
    windows = document_windows("H", sections, tokenize_with(tok), 128, stats)
    assert all(len(w) <= 128 for w in windows)
    assert stats.split_sections == 1
    assert stats.token_cut == len(tokenize_with(tok)(long_line + "\n\n"))
    bodies = "".join(tok.decode(w).removeprefix("H\n\n") for w in windows)
    assert bodies == "".join(s + "\n\n" for s in sections)  # split, never truncated
    # code lines are never broken: each one lies whole inside one window
    for i in range(60):
        assert sum(f"const v{i} = {i};" in tok.decode(w) for w in windows) == 1


def test_chat_labels_cover_exactly_the_assistant_content_and_im_end(tok):
    messages = [{"role": "user", "content": "How do I declare a constant in Zig?"},
                {"role": "assistant", "content": "Use `const x: u32 = 5;`."}]
    ids, labels = ds.chat_example(messages, tok, QWEN3_THINKING_OFF)
    trained = [t for t, lab in zip(ids, labels, strict=True) if lab != ds.IGNORE]
    assert tok.decode(trained) == "Use `const x: u32 = 5;`.<|im_end|>"
    assert ids == tok.apply_chat_template(messages, tokenize=True, enable_thinking=False, return_dict=True)["input_ids"]
    assert "<think>" in tok.decode(ids)  # Qwen3's empty think block is context, not trained


def test_chat_labels_multi_turn_train_every_assistant_turn(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a?"},
                {"role": "assistant", "content": "first answer"}, {"role": "user", "content": "b?"},
                {"role": "assistant", "content": "second answer"}]
    ids, labels = ds.chat_example(messages, tok, QWEN3_THINKING_OFF)
    trained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != ds.IGNORE])
    assert trained == "first answer<|im_end|>second answer<|im_end|>"


def test_a_chat_record_trains_or_says_why_it_is_left_out(tok):
    record = {"messages": [{"role": "user", "content": "a?"}, {"role": "assistant", "content": "word " * 40}]}
    kept = ds.trainable_chat(record, tok, QWEN3_THINKING_OFF, 512)
    assert kept.left_out is None and len(kept.input_ids) == len(kept.labels) > 40
    assert ds.trainable_chat(record, tok, QWEN3_THINKING_OFF, 40).left_out is ds.LeftOut.TOO_LONG  # never cut
    failed = {**record, "validation": {"status": "failed", "reason": "does not compile"}}
    assert ds.trainable_chat(failed, tok, QWEN3_THINKING_OFF, 512).left_out is ds.LeftOut.FAILED_VALIDATION


def test_oversample_reaches_share_and_is_seeded():
    prompts = [{"input_ids": [1] * 10, "labels": [1] * 10, "source": "prompts", "n": i} for i in range(20)]
    out = mix.oversample(prompts, other_tokens=5000, share=0.15, seed=1)
    tokens = sum(len(e["input_ids"]) for e in out)
    assert tokens / (tokens + 5000) == pytest.approx(0.15, abs=0.01)
    assert [e["n"] for e in out] == [e["n"] for e in mix.oversample(prompts, 5000, 0.15, seed=1)]
    assert [e["n"] for e in out] != [e["n"] for e in mix.oversample(prompts, 5000, 0.15, seed=2)]
    assert len(mix.oversample(prompts, 10, 0.15, seed=1)) == 20  # never fewer than one copy each


def test_split_eval_keeps_prompts_in_training():
    examples = [{"source": "prompts" if i % 2 else "langref", "i": i} for i in range(200)]
    train, held = mix.split_eval(examples, 0.1, seed=3)
    assert len(held) == 10 and all(e["source"] == "langref" for e in held)
    assert sorted(e["i"] for e in train + held) == list(range(200))
    assert mix.split_eval(examples, 0.1, seed=3)[1] == held


def test_stdlib_budget_takes_whole_files_priority_first(tok):
    recs = [{"path": "std/zzz.zig", "text": "const a = 1;\n" * 50},
            {"path": "std/mem.zig", "text": "pub fn f() void {}\n"},
            {"path": "std/fmt.zig", "text": "const big = 2;\n" * 400}]
    chosen = ds.select_stdlib(recs, tokenize_with(tok), budget=400)
    assert [r["path"] for r, _ in chosen] == ["std/mem.zig", "std/zzz.zig"]  # fmt does not fit whole: skipped
    assert sum(n for _, n in chosen) <= 400


def test_render_example_shows_file_code_command_and_output():
    text = render_example({"file": "t.zig", "code": "test {}\n", "command": "zig test t.zig",
                              "expected_output": "All 1 tests passed.\n", "section": ["Values", "Integers"]})
    assert text == ("### Example `t.zig` (Values > Integers)\n\n```zig\ntest {}\n```\n\n"
                    "```console\n$ zig test t.zig\nAll 1 tests passed.\n```")


def test_mix_gives_each_share_of_the_real_total_when_one_source_is_over_its_share():
    def source(name: str, n: int, size: int) -> list[dict]:
        return [{"input_ids": [1] * size, "labels": [1] * size, "source": name} for _ in range(n)]

    examples = source("docs", 10, 100) + source("facts", 50, 100) + source("prompts", 10, 10)  # 1000/5000/100
    out = mix.mix(examples, {"facts": 0.2, "prompts": 0.1}, seed=0)
    tokens = {name: sum(len(e["input_ids"]) for e in out if e["source"] == name) for name in ("docs", "facts",
                                                                                               "prompts")}
    total = sum(tokens.values())
    assert tokens["facts"] == 5000 and tokens["docs"] == 1000  # facts is 71 % in one pass: kept at one pass
    assert tokens["prompts"] / total == pytest.approx(0.1, abs=0.01)  # 10 % of everything, not of docs alone
    assert mix.mix(examples, {"facts": 0.2, "prompts": 0.1}, seed=0) == out
