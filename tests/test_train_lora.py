"""train_lora.py end to end on CPU: a tiny random Qwen3 (real tokenizer) on a small release dir written per DATA.md."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open
from transformers import TrainerCallback

import train_lora
from ziglora.io import read_jsonl, write_json, write_jsonl
from ziglora.stage import output_entry

HELDOUT_MARKER = "HELDOUT-ANSWER-7f3a"


def _sections(source: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        title = f"{source} topic {i}"
        code = f"const value_{i}: u32 = {i};\ntest \"value {i}\" {{\n    try expect(value_{i} == {i});\n}}"
        text = (f"## {title}\n\nIn this release, topic {i} works like this: declare it with const and test it.\n\n"
                f"test_{i}.zig\n\n```zig\n{code}\n```")
        out.append({"source": source, "title_path": [title], "level": 2, "anchor": f"t{i}", "text": text,
                    "code_blocks": [{"file": f"test_{i}.zig", "code": code}]})
    return out


def write_release(root, version="0.14.0"):
    """A release dir with every output kind and a manifest with real checksums."""
    rel = root / f"zig-{version}"
    files = {
        "langref_sections.jsonl": ("doc_sections", _sections("langref", 12)),
        "release_notes_sections.jsonl": ("doc_sections", _sections("release-notes", 4)),
        "langref_examples.jsonl": ("examples", [
            {"id": f"langref/ex_{i}.zig", "source": "langref", "file": f"ex_{i}.zig",
             "code": f"test \"ex {i}\" {{\n    try std.testing.expect({i} + 1 == {i + 1});\n}}\n",
             "command": f"zig test ex_{i}.zig", "expected_output": "All 1 tests passed.\n", "expected_error": None,
             "section": ["langref topic 1"], "validation": {"status": "ok"}} for i in range(6)]),
        "stdlib.jsonl": ("stdlib", [{"path": "std/mem.zig", "text": "pub fn eql(a: u8, b: u8) bool {\n"
                                     "    return a == b;\n}\n\n" * 20}]),
        "cookbook.jsonl": ("chat", [
            {"id": f"cookbook/{i}", "source": "cookbook", "file": f"0{i}-01.zig", "code": "pub fn main() void {}",
             "validation": {"status": "ok"},
             "messages": [{"role": "user", "content": f"Recipe {i}: print hello"},
                          {"role": "assistant", "content": "```zig\npub fn main() void {}\n```"}]} for i in range(4)]),
        "qa_train.jsonl": ("chat", [
            {"id": f"qa/{i}", "source": "qa", "messages": [{"role": "user", "content": f"What is topic {i}?"},
                                                            {"role": "assistant", "content": f"Topic {i} is a const."}]}
            for i in range(6)]),
        "qa_heldout.jsonl": ("eval_facts", [{"q": "secret?", "accept": "x", "answer": HELDOUT_MARKER,
                                            "section": ["x"]}]),
    }
    outputs = []
    for name, (kind, records) in files.items():
        write_jsonl(rel / name, records)
        outputs.append(output_entry(rel, rel / name, kind, len(records)))
    write_json(rel / "manifest.json", {"zig_version": version, "compiler": version, "sources": [],
                                       "outputs": outputs, "validation": {}})
    prompts = root / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt": f"In Zig {version}, how do I do thing {i}?",
                           "completion": f"Use `thing{i}()` from std.", "topic": "t"} for i in range(5)])
    return rel, prompts


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path)


def run_args(model_dir, rel, prompts, out, *extra):
    return ["--model", str(model_dir), "--data", str(rel), "--prompts", str(prompts), "--output", str(out),
            "--max-seq-len", "256", "--batch-size", "1", "--grad-accum", "1", "--eval-steps", "2",
            "--logging-steps", "1", "--warmup-steps-excluded", "1", *extra]


def settings(argv):
    return train_lora.HfArgumentParser(train_lora.Settings).parse_args_into_dataclasses(argv)[0]


def test_train_writes_servable_adapter_and_report(tiny_qwen3_dir, release, tmp_path, capsys):
    rel, prompts = release
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "3", "--lora-rank", "8", "--eval-share", "0.2")
    assert train_lora.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "loss_curve.png",
         "serve_command.txt", "tokenizer.json", "tokenizer_config.json", "train_report.json"])
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_qwen3_dir)
    assert cfg["r"] == 8 and not cfg.get("modules_to_save")
    assert set(cfg["target_modules"]) == set(train_lora.LORA_TARGETS)
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)
    assert {k.split(".")[-3] for k in keys} == set(train_lora.LORA_TARGETS)  # ...<proj>.lora_A.weight
    assert train_lora.check_adapter(out) == []
    report = json.loads((out / "train_report.json").read_text())
    assert report["steps"] == 3 and report["data"]["truncated_tokens"] == 0
    assert report["data"]["padding_share"] <= 0.02
    sources = {r["source"] for r in report["data"]["token_table"]}
    assert sources == {"langref", "release-notes", "langref-examples", "stdlib", "cookbook", "qa", "prompts"}
    assert report["tokens_per_s"] > 0 and report["eval_loss"] > 0
    serve = (out / "serve_command.txt").read_text()
    assert f"--lora-modules ziglora={out.resolve()} --max-lora-rank 8" in serve and "enable_thinking" in serve
    assert not (tmp_path / "adapter-checkpoints" / "adapter_config.json").exists()  # checkpoints live apart
    assert "truncated" in capsys.readouterr().out  # the token table was printed


def test_throughput_counts_real_tokens_of_measured_steps_only():
    class Echo(torch.nn.Module):
        def forward(self, input_ids):
            return input_ids

    model, args, state = Echo(), SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(global_step=0)
    meter = train_lora.Throughput(skip=1, pad_token_id=0)
    meter.on_train_begin(args, state, None, model=model)
    for step, rows in enumerate([[[5, 6, 0]], [[7, 8, 9], [3, 0, 0]], [[1, 0, 0]]], start=1):
        meter.on_step_begin(args, state, None)
        model(input_ids=torch.tensor(rows))
        state.global_step = step
        meter.on_step_end(args, state, None)
        model(input_ids=torch.tensor([[4, 4, 4]]))  # an eval forward between steps trains nothing
    result = meter.result(world_size=1)
    assert result["measured_steps"] == 2 and result["measured_tokens"] == 4 + 1  # step 1 is warm-up


def token_table_of_one_step(model_dir: Path, release: tuple[Path, Path], out: Path, *flags: str) -> list[dict]:
    """Train one step with these flags; the report's token table (what went into training, per source)."""
    rel, prompts = release
    assert train_lora.main(run_args(model_dir, rel, prompts, out, "--max-steps", "1", "--eval-share", "0",
                                    *flags)) == 0
    return json.loads((out / "train_report.json").read_text())["data"]["token_table"]


def test_sources_limit_what_is_trained_and_unknown_ones_are_named(tiny_qwen3_dir, release, tmp_path):
    table = token_table_of_one_step(tiny_qwen3_dir, release, tmp_path / "adapter", "--sources", "qa,prompts")
    assert {r["source"] for r in table} == {"qa", "prompts"}
    with pytest.raises(SystemExit, match="no recipes in this release; it has .*langref"):
        train_lora.main(run_args(tiny_qwen3_dir, *release, tmp_path / "adapter", "--sources", "qa,recipes"))


@pytest.mark.parametrize("oversample, message", [("qa", "not SOURCE=SHARE"), ("qa=1.2", "each share"),
                                                  ("qa=0.6,prompts=0.5", "below 1 together")])
def test_malformed_oversample_is_refused_before_loading(oversample, message):
    with pytest.raises(SystemExit, match=message):
        settings(["--oversample", oversample])


def test_oversampled_sources_reach_their_share(tiny_qwen3_dir, release, tmp_path):
    table = token_table_of_one_step(tiny_qwen3_dir, release, tmp_path / "adapter", "--oversample", "qa=0.5")
    share = {r["source"]: r["share"] for r in table}
    sequences = {r["source"]: r["sequences"] for r in table}
    assert share["qa"] == pytest.approx(0.5, abs=0.05)
    assert sequences["prompts"] == len(list(read_jsonl(release[1])))  # not listed: one pass only


def test_training_never_reads_heldout_questions(tiny_qwen3_dir, release):
    from transformers import AutoTokenizer

    rel, prompts = release
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    s = settings(["--data", str(rel), "--prompts", str(prompts), "--max-seq-len", "256", "--eval-share", "0.2"])
    train, evals, info = train_lora.load_training_set(s, tok)
    text = "".join(tok.decode(row["input_ids"]) for part in (train, evals or []) for row in part)
    assert HELDOUT_MARKER not in text and "What is topic" in text
    share = next(r["share"] for r in info["token_table"] if r["source"] == "prompts")
    assert share == pytest.approx(0.15, abs=0.03)


def test_a_few_steps_lower_the_loss_on_a_repeated_batch(tiny_qwen3_dir, tmp_path):
    rel = tmp_path / "zig-0.14.0"  # one short document: every optimizer step sees the same packed sequence
    write_jsonl(rel / "langref_sections.jsonl", _sections("langref", 1))
    write_json(rel / "manifest.json", {"zig_version": "0.14.0", "outputs": [
        output_entry(rel, rel / "langref_sections.jsonl", "doc_sections", 1)]})
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, "none", out, "--max-steps", "6", "--learning-rate", "1e-2",
                    "--eval-share", "0")
    assert train_lora.main(argv) == 0
    losses = [e["loss"] for e in json.loads((out / "train_report.json").read_text())["loss_log"] if "loss" in e]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5, losses  # lr 0 on step 1 would keep it flat


class StopAt(TrainerCallback):
    """Ends training after a checkpoint, as a killed run would (the kill happens after the save)."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def test_resume_ends_with_the_same_step_count(tiny_qwen3_dir, release, tmp_path):
    rel, prompts = release
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "5", "--eval-share", "0")
    first = train_lora.train(settings(argv), extra_callbacks=(StopAt(2),))
    assert first["steps"] == 2
    second = train_lora.train(settings([*argv, "--resume"]))
    assert second["resumed_from"].endswith("checkpoint-2")
    assert second["steps"] == 5 == second["max_steps"]
    ckpts = sorted(p.name for p in (tmp_path / "adapter-checkpoints").iterdir())
    assert ckpts == ["checkpoint-4", "checkpoint-5"]  # save_total_limit 2


def test_bad_rank_is_refused():
    with pytest.raises(SystemExit, match="vLLM only serves ranks"):
        settings(["--lora-rank", "12"])


@pytest.mark.parametrize("damage, message", [
    ("checksum", "does not match its sha256"),
    ("missing", "listed in manifest.json but missing"),
    ("empty", "lists no outputs"),
    ("no-manifest", "manifest.json is missing"),
])
def test_bad_release_dir_says_rerun_make_data(tiny_qwen3_dir, release, tmp_path, damage, message):
    rel, prompts = release
    if damage == "checksum":
        with open(rel / "langref_sections.jsonl", "a") as f:
            f.write("\n")
    elif damage == "missing":
        (rel / "stdlib.jsonl").unlink()
    elif damage == "empty":
        write_json(rel / "manifest.json", {"zig_version": "0.14.0", "outputs": []})
    else:
        (rel / "manifest.json").unlink()
    with pytest.raises(SystemExit, match=f"(?s){message}.*make data"):
        train_lora.main(run_args(tiny_qwen3_dir, rel, prompts, tmp_path / "a", "--max-steps", "1"))


def test_model_missing_offline_says_what_to_do(release, tmp_path, monkeypatch):
    rel, prompts = release
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read once, when the hub is imported
    with pytest.raises(SystemExit, match="(?s)cannot load model 'nobody/no-such-model'.*offline.*--model <local dir>"):
        train_lora.main(["--model", "nobody/no-such-model", "--data", str(rel), "--prompts", str(prompts),
                         "--output", str(tmp_path / "a")])


def test_smollm2_is_converted_once_to_a_plain_model_with_its_weights(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("ZIGLORA_CACHE", str(tmp_path))
    path = train_lora.resolve_model(train_lora.SMOLLM2)
    assert path == str(tmp_path / "models" / "smollm2-135m")
    assert train_lora.resolve_model(train_lora.SMOLLM2) == path  # cached: no second conversion
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)  # a plain safetensors dir: no gguf_file needed
    assert model.config.head_dim == 64 and tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    ids = tok("The capital of France is Paris. The capital of Germany is Berlin.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert loss < 5.0  # the real weights: random ones score ~ln(49152) = 10.8
