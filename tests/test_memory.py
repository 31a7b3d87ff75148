"""A run's GPU memory plans (ziglora/train/memory.py) on made-up cards: the generation batches for a budget and a
model's shape, the `auto` cap, the kept layers; and on the tiny Qwen3, that a planned generation answers as an
unplanned one does."""
import sys
import types
from contextlib import contextmanager

import pytest
import torch

from ziglora.serve.contract import THINKING_OFF
from ziglora.train.backend import TrainingError
from ziglora.train.memory import (
    GIB,
    CardMemory,
    GenerationPlanner,
    PeakMeter,
    RunMemory,
    Shape,
    kept_layers,
    plan_batches,
    plan_ceiling,
    prompt_bytes,
    resident_bytes,
    resolve_cap,
)

QWEN3_8B = Shape.from_config(dict(num_hidden_layers=36, hidden_size=4096, intermediate_size=12288,
                                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936))
SMOLLM2 = Shape.from_config(dict(num_hidden_layers=30, hidden_size=576, intermediate_size=1536,
                                 num_attention_heads=9, num_key_value_heads=3, head_dim=64, vocab_size=49152))


def card(*, total=int(139.8 * GIB), free=120 * GIB, reserved=0, allocated=0, limit=None) -> CardMemory:
    return CardMemory(total, free, reserved, allocated, total if limit is None else limit)


def test_kv_cache_and_lora_sizes_follow_the_shape(tiny_qwen3_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ziglora.serve.contract import LORA_PROJECTIONS

    assert QWEN3_8B.kv_bytes_per_token(2) == 36 * 8 * 128 * 2 * 2
    assert SMOLLM2.kv_bytes_per_token(4) == 30 * 3 * 64 * 2 * 4
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    shape = Shape.from_config(model.config)
    assert (shape.layers, shape.heads, shape.kv_heads, shape.head_dim) == (2, 2, 1, 64)
    for targets in (LORA_PROJECTIONS, ("q_proj", "down_proj")):
        peft = get_peft_model(model, LoraConfig(r=8, target_modules=list(targets), task_type="CAUSAL_LM"))
        assert shape.lora_params(8, targets) == sum(p.numel() for p in peft.parameters() if p.requires_grad)
        model = peft.unload()


def test_the_probe_s_batches_follow_the_budget_and_the_cache_rows():
    # beside training under a 22 GiB cap: what the plan may use less what training holds
    at_probe = card(reserved=18 * GIB, allocated=int(6.3 * GIB), limit=22 * GIB)
    budget = at_probe.room - at_probe.allocated
    assert at_probe.room == plan_ceiling(22 * GIB) and round(budget / GIB, 1) == 13.5
    prompts = [80] * 202  # dev, retain and trained questions, padded to the longest
    assert plan_batches(QWEN3_8B, budget, prompts, 128, 2, rows_ahead=512) == [130, 72]  # Unsloth's own 512 rows
    assert plan_batches(QWEN3_8B, budget, prompts, 128, 2, rows_ahead=128) == [202]  # rows sized to the answer
    assert plan_batches(QWEN3_8B, budget // 2, prompts, 128, 2, rows_ahead=128) == [136, 66]  # the most first
    assert plan_batches(QWEN3_8B, budget, [80] * 300, 128, 2, rows_ahead=128)[0] == 256  # never past the most
    assert plan_batches(QWEN3_8B, 10 * 2**20, prompts, 128, 2, rows_ahead=512) == []  # not one answer fits
    # transformers' cache (the PEFT path) grows to prompt + answer only
    assert prompt_bytes(QWEN3_8B, 80, 128, 2, None) < prompt_bytes(QWEN3_8B, 80, 128, 2, 128)


def test_a_batch_is_padded_to_its_longest_prompt():
    one_long = prompt_bytes(QWEN3_8B, 300, 128, 2, 128)
    assert plan_batches(QWEN3_8B, 3 * one_long, [10, 10, 300, 10, 10], 128, 2, 128) == [3, 2]


def test_without_a_cap_the_plans_use_what_the_card_can_give():
    other_user = card(total=24 * GIB, free=10 * GIB, reserved=8 * GIB, allocated=6 * GIB)
    assert other_user.room == plan_ceiling(18 * GIB) and other_user.others == 6 * GIB
    capped = card(total=24 * GIB, free=16 * GIB, reserved=8 * GIB, allocated=6 * GIB, limit=12 * GIB)
    assert capped.room == plan_ceiling(12 * GIB) == 10 * GIB  # the cap, less its 2 GiB at the least


def test_auto_reads_a_fake_gpu_and_a_number_wins():
    # a 24 GB card with a desktop and this process's CUDA context on it, before the model loads
    desktop = card(total=int(23.99 * GIB), free=int(22.04 * GIB))
    cap, line = resolve_cap("auto", desktop)
    assert cap == int(22.04 * GIB) - GIB
    assert line == "GPU memory cap: auto = 21.04 GiB (card 23.99, others 1.95, margin 1.00)"
    assert resolve_cap("auto", desktop, margin_gib=2.0)[0] == int(22.04 * GIB) - 2 * GIB
    assert resolve_cap("22", desktop)[0] == 22 * GIB and resolve_cap("30", desktop)[0] == desktop.total
    assert resolve_cap("0", desktop) == (0, "GPU memory cap: none (--gpu-memory-cap-gib 0; card 23.99 GiB)")
    with pytest.raises(TrainingError, match="auto found no free memory"):
        resolve_cap("auto", card(total=24 * GIB, free=GIB // 2))


@pytest.mark.parametrize("flag, value", [("--gpu-memory-cap-gib", "lots"), ("--gpu-memory-cap-gib", "-1"),
                                         ("--kept-layers", "1.5"), ("--kept-layers", "all")])
def test_a_bad_cap_or_layer_count_is_refused_before_loading(flag, value):
    from ziglora.train.settings import parse

    with pytest.raises(ValueError, match=f"{flag} {value}: auto or"):
        parse([flag, value])
    assert parse(["--gpu-memory-cap-gib", "21.5", "--kept-layers", "12"])[0].kept_layers == "12"


def test_kept_layers_follow_the_cap():
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    resident = resident_bytes(QWEN3_8B, int(5.7 * GIB), 16, targets)  # the 4-bit weights, then LoRA's training bytes
    n = [kept_layers(QWEN3_8B, plan_ceiling(c * GIB), resident, 4096 * 2) for c in (10, 16, 22, 24, 40, 139)]
    assert n == sorted(n) and n[0] == 0 and n[-1] == 36 and 10 <= n[2] <= 12
    assert kept_layers(QWEN3_8B, plan_ceiling(22 * GIB), resident, 4096 * 4) < n[2]  # more tokens a step: fewer


def _tiny(tiny_qwen3_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir).eval(), AutoTokenizer.from_pretrained(tiny_qwen3_dir)


def test_planned_generation_answers_as_the_unplanned_one(tiny_qwen3_dir, capsys):
    """A card with room for three answers at a time: three batches, each released after, the same greedy answers
    as one batch of all, and one log line that says so."""
    from ziglora.train.generate import generate

    model, tokenizer = _tiny(tiny_qwen3_dir)
    prompts = [f"What is {n} plus {n}?" for n in range(7)]  # of one length
    whole = generate(model, tokenizer, prompts, 4)
    shape = Shape.from_config(model.config)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": prompts[0]}], tokenize=False,
                                         add_generation_prompt=True, **THINKING_OFF)
    length = len(tokenizer(chat, add_special_tokens=False)["input_ids"])
    three = 3 * prompt_bytes(shape, length, 4, 4, None)
    asked, released, rows = [], [], []
    real = model.generate
    model.generate = lambda **kw: asked.append(kw["input_ids"].shape[0]) or real(**kw)

    @contextmanager
    def decode_rows(new_tokens):
        rows.append(new_tokens)
        yield None  # transformers' cache

    planner = GenerationPlanner(shape, 4, lambda: card(total=64 * GIB, free=three + 2 * GIB), decode_rows,
                                released.append)
    capsys.readouterr()
    assert generate(model, tokenizer, prompts, 4, planner, "facts_probe") == whole
    assert asked == [3, 3, 1] and len(released) == 3 and rows == [4]
    assert capsys.readouterr().out.startswith("facts probe: 7 prompts in 3 batches of 3, 3, 1 (planned ")
    assert planner.calls[0]["batches"] == [3, 3, 1] and planner.calls[0]["purpose"] == "facts_probe"
    small = GenerationPlanner(shape, 4, lambda: card(total=64 * GIB, free=2 * GIB), decode_rows, released.append)
    with pytest.raises(TrainingError, match="facts probe: not even one answer of 4 new tokens fits"):
        generate(model, tokenizer, prompts, 4, small, "facts_probe")


def test_a_batch_that_runs_out_of_memory_anyway_is_asked_in_halves_and_says_so(tiny_qwen3_dir, capsys):
    """The last resort where a plan is wrong: generate is made to raise torch's out-of-memory error above 3 prompts
    (a CPU has no such limit): the answers are those of one batch, in order, each question asked once, and the log
    says it happened."""
    from ziglora.train.generate import generate

    model, tokenizer = _tiny(tiny_qwen3_dir)
    prompts = [f"What is {n} plus {n}?" for n in range(7)]
    whole = generate(model, tokenizer, prompts, 4)
    real, asked = model.generate, []

    def limited(**kwargs):
        if kwargs["input_ids"].shape[0] > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        asked.append(kwargs["input_ids"].shape[0])
        return real(**kwargs)

    model.generate = limited
    capsys.readouterr()
    assert generate(model, tokenizer, prompts, 4) == whole
    assert sum(asked) == len(prompts) and max(asked) <= 3
    assert "answers: out of memory at a batch of 7 (unplanned: at most 256 a batch): retrying it in halves" in \
        capsys.readouterr().out
    model.generate = lambda **kwargs: (_ for _ in ()).throw(torch.OutOfMemoryError("CUDA out of memory (test)"))
    # not even one prompt fits: an error naming what ran out (not --batch-size), not an endless loop
    with pytest.raises(TrainingError, match="out of memory generating one answer of 4 new tokens"):
        generate(model, tokenizer, prompts, 4)


def test_each_phase_has_its_own_peak_and_the_run_s_is_the_highest(monkeypatch):
    """torch's peak counters, faked: each phase's peak is read where it ends, then the counters restart."""
    peaks = iter([6, 12, 3, 9, 16, 10])  # load, general answers, load again, training, facts probe, training
    now = {"peak": 0}
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: now["peak"] * GIB)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device: (now["peak"] + 1) * GIB)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: now.update(peak=next(peaks, 0)))
    meter = PeakMeter(0)
    now["peak"] = next(peaks)
    meter.close()  # general answers begin: the load ends
    meter.close("general_answers")
    meter.enter("training")  # the Trainer is built
    meter.close()
    meter.close("facts_probe")
    gpu = RunMemory(21.0, "GPU memory cap: 21.00 GiB", 11, 36, None, meter)
    report = gpu.report()
    assert report["peak_allocated_gib"] == 16 and report["peak_reserved_gib"] == 17
    assert {p: v["peak_allocated_gib"] for p, v in report["memory"]["phases"].items()} == {
        "load": 6, "general_answers": 12, "training": 10, "facts_probe": 16}
    assert report["memory"]["kept_layers"] == 11 and report["memory"]["generation"] == []


def test_unsloth_s_decode_cache_is_sized_to_the_answer_for_the_block_only(monkeypatch):
    from ziglora.train.model import unsloth_decode_rows

    llama, qwen3 = types.ModuleType("unsloth.models.llama"), types.ModuleType("unsloth.models.qwen3")
    llama.KV_CACHE_INCREMENT = qwen3.KV_CACHE_INCREMENT = 512
    monkeypatch.setitem(sys.modules, "unsloth.models.llama", llama)
    monkeypatch.setitem(sys.modules, "unsloth.models.qwen3", qwen3)
    with unsloth_decode_rows(128) as rows:
        assert rows == 128 and llama.KV_CACHE_INCREMENT == qwen3.KV_CACHE_INCREMENT == 128
    assert llama.KV_CACHE_INCREMENT == qwen3.KV_CACHE_INCREMENT == 512
    monkeypatch.delitem(sys.modules, "unsloth.models.llama")
    monkeypatch.delitem(sys.modules, "unsloth.models.qwen3")
    with unsloth_decode_rows(128) as rows:
        assert rows == 512  # Unsloth's setting not found: plan for its own rows


def test_the_summary_tells_the_run_s_peak_where_there_is_a_gpu():
    from ziglora.train.report import summary

    report = {"settings": {"output": "out"}, "steps": 3, "epochs": 0.1, "train_loss": 1.0, "eval_loss": None,
              "tokens_per_s": 10.0, "serve_command": "make serve ADAPTER=out\n"}
    assert "GPU memory" not in summary(report)  # CPU: nothing measured
    gpu = summary({**report, "peak_allocated_gib": 18.4})
    assert "10.0 tokens/s, peak 18.4 GiB of GPU memory; adapter in out/" in gpu
