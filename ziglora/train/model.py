"""The model a run trains: the base model loaded by the chosen backend, with LoRA on the chosen projections, and the
GPU memory plan that goes with it (ziglora/train/memory.py): the cap, the kept layers, the generation planner."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial

import torch

from ziglora.train.backend import Backend, TrainingError
from ziglora.train.memory import (
    UNSLOTH_ROWS_AHEAD,
    GenerationPlanner,
    PeakMeter,
    RunMemory,
    Shape,
    kept_layers,
    read_card,
    resident_bytes,
    set_cap,
    training_peak,
)
from ziglora.train.report import log
from ziglora.train.settings import Settings

GPU_DTYPE_BYTES = 2  # every CUDA backend computes in bf16


def load_model(s: Settings, be: Backend) -> tuple:
    """(model with LoRA on --lora-targets, tokenizer with a pad token, the run's GPU memory plan: RunMemory, empty on
    CPU). Over a bf16 base PEFT keeps the LoRA weights in fp32 (autocast_adapter_dtype), so small updates are not
    rounded away."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))  # one model per process/GPU under `accelerate launch`
    cap, cap_line = set_cap(s.gpu_memory_cap_gib, local_rank) if be.cuda else (0, "")
    if cap_line:
        log(cap_line)
    try:
        model, tokenizer, kept = (_unsloth if be.unsloth else _peft)(s, be, local_rank)
    except OSError as e:
        raise TrainingError(f"cannot load model {be.model_path!r}: {e}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not be.cuda:
        return model, tokenizer, RunMemory()
    shape, meter = Shape.from_config(model.config), PeakMeter(local_rank)
    if be.unsloth:
        from unsloth.models._decode_graphs import release_for_training

        rows, release = unsloth_decode_rows, release_for_training
    else:
        rows, release = (lambda new_tokens: nullcontext(None)), (lambda m: None)
    planner = GenerationPlanner(shape, GPU_DTYPE_BYTES, partial(read_card, local_rank), rows, release, meter)
    return model, tokenizer, RunMemory(round(cap / 2**30, 2), cap_line, kept, shape.layers, planner, meter)


def choose_kept_layers(s: Settings, shape: Shape, local_rank: int) -> int:
    """--kept-layers for the loaded base model: a number as given (at most every layer); auto: as many as fit the
    memory a plan may use beside what training holds (read now, before LoRA is added) and one micro-step."""
    tokens = s.max_seq_len * s.batch_size
    card = read_card(local_rank)
    resident = resident_bytes(shape, card.allocated, s.lora_rank, s.lora_targets.split(","))
    n = min(shape.layers, int(s.kept_layers)) if s.kept_layers != "auto" else \
        kept_layers(shape, card.room, resident, tokens, GPU_DTYPE_BYTES)
    log(f"kept layers: {n} of {shape.layers} decoder layers keep their activations (--kept-layers {s.kept_layers}; "
        f"a step of {tokens} tokens planned at {training_peak(shape, resident, tokens, n) / 2**30:.2f} GiB of "
        f"{card.room / 2**30:.2f})")
    return n


def _unsloth(s: Settings, be: Backend, local_rank: int) -> tuple:
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(be.model_path, max_seq_length=s.max_seq_len,
                                                         load_in_4bit=True, dtype=torch.bfloat16,
                                                         device_map={"": local_rank})
    # Unsloth checkpoints every decoder layer but these (evenly spaced), and keeps that through for_training
    kept = choose_kept_layers(s, Shape.from_config(model.config), local_rank)
    model = FastLanguageModel.get_peft_model(
        model, r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0, bias="none",
        target_modules=s.lora_targets.split(","), use_gradient_checkpointing="unsloth", random_state=s.seed,
        checkpoint_skip_layers=kept)
    return model, tokenizer, kept


def _peft(s: Settings, be: Backend, local_rank: int) -> tuple:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(be.model_path)
    if be.four_bit:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(be.model_path, quantization_config=quant, dtype=torch.bfloat16,
                                                     device_map={"": local_rank})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    elif be.cuda:
        model = AutoModelForCausalLM.from_pretrained(be.model_path, dtype=torch.bfloat16, device_map={"": local_rank})
    else:
        model = AutoModelForCausalLM.from_pretrained(be.model_path, dtype=torch.float32)
    # No KV cache in a training forward: with one, transformers does not turn padding_free's restarting
    # position_ids into a block-diagonal mask, and packed records would attend to each other.
    model.config.use_cache = False
    lora = LoraConfig(r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=s.lora_targets.split(","), task_type="CAUSAL_LM")
    if s.kept_layers not in ("auto", "0"):
        log(f"--kept-layers {s.kept_layers}: only Unsloth's gradient checkpointing keeps layers; {be.name} does not")
    return get_peft_model(model, lora), tokenizer, None


def inference_modes(be: Backend) -> tuple[Callable, Callable]:
    """How to switch the model to generation and back: (to inference, to training); Unsloth has its own pair."""
    if be.unsloth:
        from unsloth import FastLanguageModel

        return FastLanguageModel.for_inference, FastLanguageModel.for_training
    return (lambda m: m.eval()), (lambda m: m.train())


@contextmanager
def unsloth_decode_rows(new_tokens: int) -> Iterator[int]:
    """Unsloth's decode KV cache holds the prompt plus KV_CACHE_INCREMENT rows whatever max_new_tokens is: in the
    block, just the rows the answers need (attention reads only the rows filled, so the answers are the same). Yields
    the rows past the prompt in effect (Unsloth's own where its setting is not found)."""
    modules = [m for name, m in list(sys.modules.items())
               if name.startswith("unsloth.models.") and isinstance(getattr(m, "KV_CACHE_INCREMENT", None), int)]
    saved = [(m, m.KV_CACHE_INCREMENT) for m in modules]
    for m in modules:
        m.KV_CACHE_INCREMENT = new_tokens
    try:
        yield new_tokens if modules else UNSLOTH_ROWS_AHEAD
    finally:
        for m, rows in saved:
            m.KV_CACHE_INCREMENT = rows
