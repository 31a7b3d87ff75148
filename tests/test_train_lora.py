"""The training stage (ziglora/train) end to end on CPU: a tiny random Qwen3 (real tokenizer) on a small release dir
written per DATA.md; train_lora.py itself by subprocess."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO
from safetensors import safe_open
from transformers import TrainerCallback

from ziglora.common import models
from ziglora.common.io import USUAL_FILE_MODE, read_jsonl, write_json, write_jsonl
from ziglora.data.stages import output_entry
from ziglora.serve.contract import LORA_PROJECTIONS, adapter_problems
from ziglora.train import backend, teacher, trainset
from ziglora.train.backend import TrainingError
from ziglora.train.run import run
from ziglora.train.settings import parse

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
            {"id": f"qa/{i}", "source": "qa", "section": [f"release-notes topic {i % 4}"],
             "messages": [{"role": "user", "content": f"What is topic {i}?"},
                          {"role": "assistant", "content": f"Topic {i} is a const."}]} for i in range(6)]),
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


def run_args(model_dir, rel, prompts, out, *extra, sources: str | None = "all"):
    """A short CPU run on every source of the release (`sources=None`: the size's default); the facts probe and
    the general answers are off unless a test turns them on (they have their own tests)."""
    return ["--model", str(model_dir), "--data", str(rel), "--prompts", str(prompts), "--output", str(out),
            "--max-seq-len", "256", "--batch-size", "1", "--grad-accum", "1", "--eval-steps", "2",
            "--logging-steps", "1", "--warmup-steps-excluded", "1", "--facts-eval", "none",
            "--general-prompts", "none", *(["--sources", sources] if sources else []), *extra]


def settings(argv):
    return parse(argv)[0]


def train(argv, extra_callbacks=()):
    """What train_lora.py runs, returning the report: settings -> backend -> recipe."""
    return run(*parse(argv), extra_callbacks=extra_callbacks)


def test_train_writes_servable_adapter_and_report(tiny_qwen3_dir, release, tmp_path, capsys):
    rel, prompts = release
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "3", "--lora-rank", "8", "--eval-share", "0.2")
    train(argv)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "loss_curve.png",
         "serve_command.txt", "tokenizer.json", "tokenizer_config.json", "train_report.json"])
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_qwen3_dir)
    assert cfg["r"] == 8 and not cfg.get("modules_to_save")
    assert set(cfg["target_modules"]) == set(LORA_PROJECTIONS)
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)
    assert {k.split(".")[-3] for k in keys} == set(LORA_PROJECTIONS)  # ...<proj>.lora_A.weight
    assert adapter_problems(out) == []
    report = json.loads((out / "train_report.json").read_text())
    assert report["steps"] == 3 and report["data"]["truncated_tokens"] == 0
    assert report["data"]["padding_share"] <= 0.02
    sources = {r["source"] for r in report["data"]["token_table"]}
    assert sources == {"langref", "release-notes", "langref-examples", "stdlib", "cookbook", "qa", "prompts"}
    assert report["tokens_per_s"] > 0 and report["eval_loss"] > 0
    serve = (out / "serve_command.txt").read_text()
    # the command that works on this machine (GPU or not), not a GPU-only `vllm serve`
    assert serve.startswith(f"make serve ADAPTER={out.resolve()}\n") and f"serve.py {out.resolve()}" in serve
    assert (out / "adapter_model.safetensors").stat().st_mode & 0o777 == USUAL_FILE_MODE  # not safetensors' 0600
    assert not (tmp_path / "adapter-checkpoints" / "adapter_config.json").exists()  # checkpoints live apart
    assert "truncated" in capsys.readouterr().out  # the token table was printed


def test_throughput_counts_real_tokens_of_measured_steps_only():
    class Echo(torch.nn.Module):
        def forward(self, input_ids):
            return input_ids

    model, args, state = Echo(), SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(global_step=0)
    from ziglora.train.callbacks import Throughput

    meter = Throughput(skip=1, pad_token_id=0)
    meter.on_train_begin(args, state, None, model=model)
    for step, rows in enumerate([[[5, 6, 0]], [[7, 8, 9], [3, 0, 0]], [[1, 0, 0]]], start=1):
        meter.on_step_begin(args, state, None)
        model(input_ids=torch.tensor(rows))
        state.global_step = step
        meter.on_step_end(args, state, None)
        model(input_ids=torch.tensor([[4, 4, 4]]))  # an eval forward between steps trains nothing
    result = meter.result(world_size=1)
    assert result["measured_steps"] == 2 and result["measured_tokens"] == 4 + 1  # step 1 is warm-up


def token_table_of_one_step(model_dir: Path, release: tuple[Path, Path], out: Path, *flags: str,
                            sources: str | None = "all") -> list[dict]:
    """Train one step with these flags; the report's token table (what went into training, per source)."""
    rel, prompts = release
    train(run_args(model_dir, rel, prompts, out, "--max-steps", "1", "--eval-share", "0", *flags, sources=sources))
    return json.loads((out / "train_report.json").read_text())["data"]["token_table"]


def test_sources_limit_what_is_trained_and_unknown_ones_are_named(tiny_qwen3_dir, release, tmp_path, capsys):
    table = token_table_of_one_step(tiny_qwen3_dir, release, tmp_path / "adapter", "--sources", "qa,prompts")
    assert {r["source"] for r in table} == {"qa", "prompts"}
    with pytest.raises(TrainingError, match="no recipes in this release; it has .*langref"):
        train(run_args(tiny_qwen3_dir, *release, tmp_path / "adapter", "--sources", "qa,recipes"))
    # a source this release happens to lack is said and skipped: the small models' default names qa-facts
    table = token_table_of_one_step(tiny_qwen3_dir, release, tmp_path / "default", sources=None)
    assert {r["source"] for r in table} == {"release-notes", "qa", "prompts"}
    assert "this release has no qa-facts; training on the others" in capsys.readouterr().out


def test_focus_trains_and_asks_only_the_sections_most_dev_questions_ask_about(tiny_qwen3_dir, release, tmp_path,
                                                                              capsys):
    rel, prompts = release
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "One?", "accept": "x", "split": "dev", "section": ["release-notes topic 1"]},
                      *[{"q": f"Two {i}?", "accept": "x", "split": "dev", "section": ["release-notes topic 2"]}
                        for i in range(2)],
                      {"q": "Test?", "accept": "x", "split": "test", "section": ["release-notes topic 1"]},
                      {"q": "Nowhere?", "accept": "x", "split": "dev"}])
    out = tmp_path / "adapter"
    train(run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "1", "--eval-share", "0", "--focus-sections",
                   "1", "--facts-eval", str(dev), "--retain-eval", "none", "--facts-eval-tokens", "2"))
    report = json.loads((out / "train_report.json").read_text())
    # topic 2 has the most dev questions: its release-notes section and its one Q&A record train, nothing else
    assert report["data"]["focus_sections"] == ["release-notes topic 2"]
    assert {r["source"]: r["records"] for r in report["data"]["token_table"]} == {"release-notes": 1, "qa": 1}
    assert report["facts"]["dev_questions"] == 2
    assert not (rel / "teacher").exists()  # no general answers, nothing distilled: no teacher pass, nothing cached
    assert "focused on 1 release-notes sections (2 dev questions): release-notes topic 2" in capsys.readouterr().out
    with pytest.raises(TrainingError, match="--focus-sections picks the sections the dev questions ask about"):
        train(run_args(tiny_qwen3_dir, rel, prompts, out, "--focus-sections", "1"))  # run_args: --facts-eval none


@pytest.mark.parametrize("oversample, message", [("qa", "not SOURCE=SHARE"), ("qa=1.2", "each share"),
                                                  ("qa=0.6,prompts=0.5", "below 1 together")])
def test_malformed_oversample_is_refused_before_loading(oversample, message):
    with pytest.raises(ValueError, match=message):
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
    s = s.resolve(params=8e9, cuda=False)  # a large model's defaults: every source, the facts oversampled
    train, evals, info = trainset.load_training_set(s, tok, trainset.read_release(s))
    text = "".join(tok.decode(row["input_ids"]) for part in (train, evals or []) for row in part)
    assert HELDOUT_MARKER not in text and "What is topic" in text
    share = next(r["share"] for r in info["token_table"] if r["source"] == "prompts")
    assert share == pytest.approx(0.10, abs=0.03)  # the default --oversample share


def test_a_few_steps_lower_the_loss_on_a_repeated_batch(tiny_qwen3_dir, tmp_path):
    rel = tmp_path / "zig-0.14.0"  # one short document: every optimizer step sees the same packed sequence
    write_jsonl(rel / "langref_sections.jsonl", _sections("langref", 1))
    write_json(rel / "manifest.json", {"zig_version": "0.14.0", "outputs": [
        output_entry(rel, rel / "langref_sections.jsonl", "doc_sections", 1)]})
    out = tmp_path / "adapter"
    argv = run_args(tiny_qwen3_dir, rel, "none", out, "--max-steps", "6", "--learning-rate", "1e-2",
                    "--eval-share", "0")
    train(argv)
    losses = [e["loss"] for e in json.loads((out / "train_report.json").read_text())["loss_log"] if "loss" in e]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5, losses  # lr 0 on step 1 would keep it flat


def test_a_packed_record_sees_only_itself_as_when_it_is_asked_alone(tiny_qwen3_dir, tmp_path):
    """Packed bins hold a fact's phrasings side by side (same answer, same length): a record that could attend to
    an earlier one in its bin would learn to copy the answer instead of recalling it."""
    from ziglora.train.model import load_model
    from ziglora.train.trainer import batch_collator

    s, be = backend.prepare(settings(run_args(tiny_qwen3_dir, tmp_path, "none", tmp_path / "out")))
    assert s.packing == "padding_free"  # the default on CPU, as for the bf16 base on a GPU
    model, _, gpu = load_model(s, be)
    assert gpu.planner is None and gpu.report() == {}  # no GPU: nothing planned, nothing measured
    model.train()  # dropout is 0: train mode only matters for what the model's forward does with its cache
    first, second = list(range(10, 40)), list(range(50, 70))
    batch = batch_collator(s.packing, 0)([{"input_ids": first + second, "labels": first + second,
                                                    "seq_lengths": [len(first), len(second)]}])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0, len(first):]
        alone = model(input_ids=torch.tensor([second])).logits[0]
    assert torch.allclose(packed, alone, atol=1e-4), (packed - alone).abs().max()


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
    first = train(argv, extra_callbacks=(StopAt(2),))
    assert first["steps"] == 2
    second = train([*argv, "--resume"])
    assert second["resumed_from"].endswith("checkpoint-2")
    assert second["steps"] == 5 == second["max_steps"]
    ckpts = sorted(p.name for p in (tmp_path / "adapter-checkpoints").iterdir())
    assert ckpts == ["checkpoint-4", "checkpoint-5"]  # save_total_limit 2


def test_bad_rank_is_refused():
    with pytest.raises(ValueError, match="vLLM only serves ranks"):
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
    with pytest.raises(TrainingError, match=f"(?s){message}.*make data"):
        train(run_args(tiny_qwen3_dir, rel, prompts, tmp_path / "a", "--max-steps", "1"))


def test_model_missing_offline_says_what_to_do(release, tmp_path, monkeypatch):
    rel, prompts = release
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read once, when the hub is imported
    message = "(?s)cannot load model 'nobody/no-such-model'.*offline.*--model <local dir>"
    with pytest.raises(TrainingError, match=message):
        train(["--model", "nobody/no-such-model", "--data", str(rel), "--prompts", str(prompts),
               "--output", str(tmp_path / "a")])


def test_smollm2_is_converted_once_to_a_plain_model_with_its_weights(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("ZIGLORA_CACHE", str(tmp_path))
    path = models.resolve_model(models.SMOLLM2)
    assert path == str(tmp_path / "models" / "smollm2-135m")
    assert models.resolve_model(models.SMOLLM2) == path  # cached: no second conversion
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)  # a plain safetensors dir: no gguf_file needed
    assert model.config.head_dim == 64 and tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    ids = tok("The capital of France is Paris. The capital of Germany is Berlin.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert loss < 5.0  # the real weights: random ones score ~ln(49152) = 10.8


def one_sequence_release(tmp_path: Path) -> Path:
    """A release of one short document: one packed sequence, so one optimizer step per epoch."""
    rel = tmp_path / "zig-0.14.0"
    write_jsonl(rel / "langref_sections.jsonl", _sections("langref", 1))
    write_json(rel / "manifest.json", {"zig_version": "0.14.0", "outputs": [
        output_entry(rel, rel / "langref_sections.jsonl", "doc_sections", 1)]})
    return rel


def probe_args(model_dir, rel, out, dev_file, *extra):
    """run_args with the facts probe on (a later flag wins over run_args' `--facts-eval none`)."""
    return run_args(model_dir, rel, "none", out, "--eval-share", "0", "--learning-rate", "1e-2",
                    "--facts-eval-tokens", "4", "--facts-eval", str(dev_file), "--retain-eval", "none", *extra)


def test_probe_stops_training_once_the_dev_facts_are_answered(tiny_qwen3_dir, tmp_path):
    rel = one_sequence_release(tmp_path)
    dev = tmp_path / "dev.jsonl"  # `^` matches any answer: the target is reached at the first evaluation
    write_jsonl(dev, [{"q": "Anything?", "accept": "^", "split": "dev"}, {"q": "Test only", "accept": "x",
                                                                          "split": "test"}])
    out = tmp_path / "adapter"
    train(probe_args(tiny_qwen3_dir, rel, out, dev, "--max-epochs", "5"))
    report = json.loads((out / "train_report.json").read_text())
    facts = report["facts"]
    assert report["steps"] == 1 and report["epochs"] == 1  # 5 allowed, stopped after the first
    assert facts["dev_questions"] == 1  # the test split is never asked during training
    assert facts["before"]["step"] == 0 and [h["step"] for h in facts["history"]] == [1]
    assert "reached --until-facts 0.9" in facts["stop_reason"]


def test_the_probe_asks_trained_clozes_back_to_tell_memorized_from_carried_over(tiny_qwen3_dir, tmp_path,
                                                                                 monkeypatch, capsys):
    """Answers scripted (a random tiny model memorizes nothing in a step): every trained cloze is answered with
    its value, no dev question is; the report then says the facts are memorized and do not carry over."""
    from ziglora.train import probe

    said: list[str] = []

    def answers(model, tok, prompts, *a, **k):
        said.extend(prompts)
        return ["It is `alpha_value` here." if "Which thing" in p else "no" for p in prompts]

    monkeypatch.setattr(probe, "greedy_answers", answers)
    rel = one_sequence_release(tmp_path)

    def cloze(i, term, **extra):
        return {"id": f"qa-facts/0.14.0/x/{i}/cloze/{term}/0", "source": "qa-facts", "kind": "cloze", "term": term,
                "messages": [{"role": "user", "content": f"Which thing {i}?"},
                             {"role": "assistant", "content": f"`{term}`: the sentence {i}."}], **extra}

    records = [cloze(i, "alpha_value") for i in range(3)] + [
        cloze(3, "S"),  # a value this short would pass on a stray letter: not asked
        cloze(4, "alpha_value", validation={"status": "failed"}),  # left out of training, so not asked back
        {**cloze(5, "alpha_value"), "kind": "term"}]  # only clozes have one value to look for
    write_jsonl(rel / "qa_train.jsonl", records)
    manifest = json.loads((rel / "manifest.json").read_text())
    manifest["outputs"].append(output_entry(rel, rel / "qa_train.jsonl", "chat", len(records)))
    write_json(rel / "manifest.json", manifest)
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "Dev question?", "accept": "yes", "split": "dev"}])
    out = tmp_path / "adapter"
    train(probe_args(tiny_qwen3_dir, rel, out, dev, "--max-epochs", "1"))
    facts = json.loads((out / "train_report.json").read_text())["facts"]
    assert facts["trained_questions"] == 3
    asked = {p.rsplit("\n\n", 1)[-1] for p in said}
    assert asked == {"Dev question?", "Which thing 0?", "Which thing 1?", "Which thing 2?"}
    assert [h["trained_passed"] for h in facts["history"]] == [3] and facts["history"][0]["dev_passed"] == 0
    assert "trained facts 3/3" in capsys.readouterr().out
    assert facts["verdict"].startswith("DID NOT LEARN") and "trained facts recalled 3/3" in facts["verdict"]
    assert "not yet memorized" not in facts["verdict"]


def test_patience_waits_until_the_trained_facts_are_memorized(tiny_qwen3_dir, tmp_path, monkeypatch):
    """Answers scripted per evaluation: the dev question is right only after epoch 1, the trained clozes only from
    epoch 3 on. With patience 2, epochs 2 and 3 would have stopped the run with nothing memorized; only epochs 3
    and 4, memorized and no better, count, so training stops after epoch 4 and keeps epoch 1's adapter."""
    from ziglora.train import probe

    evaluations: list[int] = []

    def answers(model, tok, prompts, *a, **k):
        evaluations.append(len(evaluations))
        n = evaluations[-1]  # 0: before training, then after epoch n
        return [("yes" if n == 1 else "no") if "Dev question" in p else
                ("`alpha_value`" if n >= 3 else "no") for p in prompts]

    monkeypatch.setattr(probe, "greedy_answers", answers)
    rel = one_sequence_release(tmp_path)
    records = [{"id": f"qa-facts/0.14.0/x/{i}/cloze/alpha_value/0", "source": "qa-facts", "kind": "cloze",
                "term": "alpha_value", "messages": [{"role": "user", "content": f"Which thing {i}?"},
                                                    {"role": "assistant", "content": f"`alpha_value`: sentence {i}."}]}
               for i in range(2)]
    write_jsonl(rel / "qa_train.jsonl", records)
    manifest = json.loads((rel / "manifest.json").read_text())
    manifest["outputs"].append(output_entry(rel, rel / "qa_train.jsonl", "chat", len(records)))
    write_json(rel / "manifest.json", manifest)
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "Dev question?", "accept": "yes", "split": "dev"},
                      {"q": "Dev question two?", "accept": "never", "split": "dev"}])
    out = tmp_path / "adapter"
    train(probe_args(tiny_qwen3_dir, rel, out, dev, "--max-epochs", "8", "--facts-patience", "2"))
    facts = json.loads((out / "train_report.json").read_text())["facts"]
    assert [(h["dev_passed"], h["trained_passed"]) for h in facts["history"]] == [(1, 0), (0, 0), (0, 2), (0, 2)]
    assert facts["best"]["epoch"] == 1
    assert facts["stop_reason"] == "dev accuracy did not improve for 2 evaluations with the trained facts memorized"


def test_after_the_first_evaluation_only_the_retain_questions_known_then_are_asked(tiny_qwen3_dir, tmp_path,
                                                                                    monkeypatch):
    """Answers scripted: before training the model knows two of three retain questions; the later evaluations ask
    only those two (one it never knew cannot be kept), and count one of them kept."""
    from ziglora.train import probe

    asked: list[list[str]] = []

    def answers(model, tok, prompts, *a, **k):
        asked.append([p.rsplit("\n\n", 1)[-1] for p in prompts])
        first = len(asked) == 1
        return ["Paris" if "France" in p or (first and "Japan" in p) else "no idea" for p in prompts]

    monkeypatch.setattr(probe, "greedy_answers", answers)
    retain = tmp_path / "retain.jsonl"
    write_jsonl(retain, [{"id": f"r{i}", "q": f"What is the capital of {c}?", "accept": "Paris"}
                         for i, c in enumerate(("France", "Japan", "Peru"))])
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "Dev question?", "accept": "yes", "split": "dev"}])
    out = tmp_path / "adapter"
    train(probe_args(tiny_qwen3_dir, one_sequence_release(tmp_path), out, dev, "--max-epochs", "2",
                     "--until-facts", "0", "--retain-eval", str(retain)))
    facts = json.loads((out / "train_report.json").read_text())["facts"]
    questions = [[q for q in batch if q.startswith("What is the capital")] for batch in asked]
    assert questions[0] == [f"What is the capital of {c}?" for c in ("France", "Japan", "Peru")]
    assert questions[1:] == [[f"What is the capital of {c}?" for c in ("France", "Japan")]] * 2
    assert facts["retain_known_before"] == 2 and facts["retain_questions"] == 3
    assert facts["before"]["retain_kept"] == 2 and [h["retain_kept"] for h in facts["history"]] == [1, 1]


def test_the_verdict_says_when_under_half_of_the_trained_facts_are_recalled():
    from ziglora.train.probe import Evaluation, verdict

    before = Evaluation(0, 0.0, 0, 50, 0, 1.0)
    best = Evaluation(100, 4.0, 7, 31, 20, 1.0)
    line = verdict(before, best, 58, 53, 64)
    assert line.startswith("LEARNED: dev facts 7/58") and line.endswith(
        "trained facts recalled 20/64 (under half of what it trained on: not yet memorized)")
    assert "trained" not in verdict(before, best, 58, 53)  # no fact Q&A trained: nothing to recall


def test_the_best_evaluation_s_adapter_is_the_one_saved(tiny_qwen3_dir, tmp_path, monkeypatch):
    """Dev answers scripted per evaluation (the model's words are beside the point here): one of two right only
    after epoch 1, so epoch 1's LoRA weights must be saved although training went on to epoch 3 (patience 2;
    the target 0.9 is never reached)."""
    from ziglora.train import probe

    # two answers per evaluation: before training, then after epochs 1, 2, 3, ...
    script = iter(["no", "no", "yes", "no", *["no"] * 20])
    monkeypatch.setattr(probe, "greedy_answers", lambda model, tok, prompts, *a, **k: [next(script) for _ in prompts])

    class Weights(TrainerCallback):  # runs after the probe: the LoRA weights each evaluation saw
        seen: list[dict] = []

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            self.seen.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})

    rel = one_sequence_release(tmp_path)
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "Which word?", "accept": "yes", "split": "dev"}, {"q": "And?", "accept": "yes",
                                                                                "split": "dev"}])
    out = tmp_path / "adapter"
    report = train(probe_args(tiny_qwen3_dir, rel, out, dev, "--max-epochs", "6", "--facts-patience", "2"),
                   extra_callbacks=(Weights(),))
    facts = report["facts"]
    assert [h["dev_passed"] for h in facts["history"]] == [1, 0, 0] and report["steps"] == 3
    assert facts["best"]["step"] == 1 and "did not improve for 2" in facts["stop_reason"]
    assert facts["verdict"].startswith("DID NOT LEARN")  # 1 gained is below the 2-question floor
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
    epoch1, epoch3 = Weights.seen[0], Weights.seen[2]

    def matches(weights: dict) -> bool:  # the adapter is saved in bf16
        by_suffix = {n.split("base_model.model.")[-1].replace(".default", ""): t for n, t in weights.items()}
        return all(torch.equal(t, by_suffix[k.split("base_model.model.")[-1]].to(t.dtype)) for k, t in saved.items())

    assert matches(epoch1) and not matches(epoch3)


def test_failed_validation_and_overlong_chats_are_left_out_and_counted(tiny_qwen3_dir, tmp_path):
    from transformers import AutoTokenizer

    rel, prompts = write_release(tmp_path)
    examples = list(read_jsonl(rel / "langref_examples.jsonl"))
    examples[0]["validation"] = {"status": "failed", "reason": "does not compile"}
    qa = list(read_jsonl(rel / "qa_train.jsonl"))
    qa[0]["messages"][1]["content"] = "word " * 400  # > 256 tokens: dropped, never cut
    write_jsonl(rel / "langref_examples.jsonl", examples)
    write_jsonl(rel / "qa_train.jsonl", qa)
    manifest = json.loads((rel / "manifest.json").read_text())
    manifest["outputs"] = [output_entry(rel, rel / o["path"], o["kind"], o["records"]) for o in manifest["outputs"]]
    write_json(rel / "manifest.json", manifest)
    s = settings(["--data", str(rel), "--prompts", str(prompts), "--max-seq-len", "256", "--eval-share", "0",
                  "--oversample", "none", "--sources", "all"])
    s = s.resolve(params=1e6, cuda=False)
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    train_ds, _, info = trainset.load_training_set(s, tok, trainset.read_release(s))
    rows = {r["source"]: r for r in info["token_table"]}
    assert info["dropped"] == {"langref-examples": {"failed_validation": 1, "too_long": 0},
                               "qa": {"failed_validation": 0, "too_long": 1}}
    assert rows["qa"]["sequences"] == 5 and rows["qa"]["dropped"] == 1 and rows["qa"]["records"] == 6
    assert info["truncated_tokens"] == 0
    text = "".join(tok.decode(ids) for ids in train_ds["input_ids"])
    assert "ex_0.zig" not in text and "ex_1.zig" in text
    s = settings(["--data", str(rel), "--prompts", str(prompts), "--max-seq-len", "256", "--eval-share", "0",
                  "--oversample", "none", "--sources", "qa"])
    s = s.resolve(params=1e6, cuda=False)
    _, _, info = trainset.load_training_set(s, tok, trainset.read_release(s))
    assert info["dropped"] == {"qa": {"failed_validation": 0, "too_long": 1}}  # not what was not trained on


def test_settings_need_no_torch_and_a_recipe_sits_between_defaults_and_flags(tmp_path):
    import subprocess
    import sys

    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning-rate: 0.003\nmax_epochs: 7\nlora_rank: 32\n")
    code = ("import sys; from ziglora.train.settings import parse; "
            "s, r = parse(['--config', sys.argv[1], '--lora-rank', '8']); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(s.learning_rate, s.max_epochs, s.lora_rank)")
    proc = subprocess.run([sys.executable, "-c", code, str(recipe)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.003", "7.0", "8"]  # recipe over defaults, flags over the recipe
    recipe.write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown settings learning_rat"):
        settings(["--config", str(recipe)])


def test_resolving_fills_the_open_defaults_in_a_new_settings_object():
    s = settings(["--output", "out/a", "--general-prompts", "none"])
    small, large = s.resolve(params=1e8, cuda=True), s.resolve(params=8e9, cuda=True)
    assert s.max_seq_len is None and s.sources is None and s.checkpoints is None  # left as parsed
    assert (small.max_seq_len, small.batch_size, small.learning_rate, small.quantize) == (2048, 4, 5e-4, "none")
    assert small.sources == "release-notes,qa-facts,qa,prompts" and small.checkpoints == "out/a-checkpoints"
    assert (large.max_seq_len, large.batch_size, large.grad_accum, large.quantize, large.sources) == (
        4096, 1, 8, "4bit", "all")
    assert (s.resolve(params=8e9, cuda=False).max_seq_len, s.resolve(8e9, False).batch_size) == (2048, 1)
    assert settings(["--max-seq-len", "512"]).resolve(params=8e9, cuda=True).max_seq_len == 512  # given: kept


def test_the_script_s_help_is_short_and_grouped_and_bad_input_exits_2(tiny_qwen3_dir, tmp_path):
    import os
    import subprocess
    import sys

    def script(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "train_lora.py"), *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "COLUMNS": "80"}, timeout=300)

    shown = script("--help")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) <= 120
    assert "--max-seq-len" in shown.stdout and "--max_seq_len" not in shown.stdout
    assert shown.stdout.count("--learning-rate") == 1  # listed once
    groups = [line.split(" (")[0] for line in shown.stdout.splitlines() if line.endswith("):")]
    assert groups == ["model", "data", "training", "distillation", "probe", "output", "experimental"]
    bad = script("--lora-rank", "12")
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "error: --lora-rank 12: vLLM only serves ranks (1, 8, 16, 32, 64, 128, 256, 320, 512)"]
    missing = script("--model", str(tiny_qwen3_dir), "--data", str(tmp_path / "zig-0.14.0"))
    assert missing.returncode == 2 and missing.stderr.splitlines()[-1].startswith("error: training data: ")


def test_serve_command_is_make_serve_from_the_checkout():
    """What `make all` trains (smollm2-zig-lora/ in the checkout) is served by `make serve ADAPTER=…`."""
    from ziglora.train.report import serve_command

    adapter = REPO / "smollm2-zig-lora"
    command = serve_command(adapter)
    assert command.splitlines()[0] == "make serve ADAPTER=smollm2-zig-lora"
    assert f"scripts/serve.py {adapter}" in command and "vllm serve" not in command


def test_general_answers_are_the_base_model_s_own_and_cut_ones_are_left_out(tiny_qwen3_dir, tmp_path, monkeypatch):
    """The answers are asked of the model before the first step, for real; which of them finished is scripted
    (a random tiny model never says end-of-turn in a few tokens), so that both kinds reach the training set."""
    rel, prompts = write_release(tmp_path)
    general = tmp_path / "general.jsonl"
    write_jsonl(general, [{"prompt": f"Say something about number {i}."} for i in range(3)])
    asked: list[list[str]] = []
    real_generate = teacher.generate

    def generate(model, tok, batch, max_new_tokens, *args):
        asked.append(list(batch))
        assert not any(p.requires_grad and p.abs().sum() for n, p in model.named_parameters()
                       if "lora_B" in n)  # LoRA still zero: the base model answers
        said = real_generate(model, tok, batch, 4)
        return [(f"Answer {i}: {text}", i != 1) for i, (text, _) in enumerate(said)]

    monkeypatch.setattr(teacher, "generate", generate)
    report = train(run_args(tiny_qwen3_dir, rel, prompts, tmp_path / "out", "--general-prompts", str(general),
                            "--max-steps", "2", "--oversample", "general=0.2"))
    assert asked == [[f"Say something about number {i}." for i in range(3)]]
    info = report["data"]["general"]
    assert info["prompts"] == 3 and info["answers_kept"] == 2 and info["answers_cut"] == 1
    row = next(r for r in report["data"]["token_table"] if r["source"] == "general")
    assert row["records"] == 2 and row["share"] >= 0.15  # oversampled to its share like any source
    train(run_args(tiny_qwen3_dir, rel, prompts, tmp_path / "out2", "--general-prompts", str(general),
                   "--max-steps", "1", sources="qa,prompts"))
    assert len(asked) == 1  # a run whose --sources leaves `general` out asks nothing


def test_a_signal_ends_training_after_the_step_and_saves_the_run(tiny_qwen3_dir, release, tmp_path):
    import os
    import signal

    class Interrupt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag; the step runs on

    rel, prompts = release
    out = tmp_path / "adapter"
    report = train(run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "8"), extra_callbacks=(Interrupt(),))
    assert report["steps"] == 3 and report["interrupted"] == "interrupted by SIGTERM at step 3"
    assert not adapter_problems(out) and json.loads((out / "train_report.json").read_text())["steps"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored after training


def test_a_signal_stops_training_although_the_facts_probe_would_go_on(tiny_qwen3_dir, tmp_path):
    """The probe decides only for itself: at an epoch's end it must not take back another callback's stop (the
    sweep's deadline once ran on for three more epochs, one step each, this way)."""
    import os
    import signal

    class Interrupt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    rel = one_sequence_release(tmp_path)  # one step an epoch, each followed by an evaluation
    dev = tmp_path / "dev.jsonl"
    write_jsonl(dev, [{"q": "Which word?", "accept": "never-said-7f3a", "split": "dev"}])
    report = train(probe_args(tiny_qwen3_dir, rel, tmp_path / "adapter", dev, "--max-epochs", "6",
                              "--facts-patience", "10"), extra_callbacks=(Interrupt(),))
    assert report["steps"] == 2 and [h["step"] for h in report["facts"]["history"]] == [1, 2]
    assert report["facts"]["stop_reason"] == "interrupted by SIGTERM at step 2"
