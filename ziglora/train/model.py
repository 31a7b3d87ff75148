"""The model a run trains: the base model loaded by the chosen backend, with LoRA on the chosen projections."""
from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ziglora.train.backend import Backend, TrainingError
from ziglora.train.settings import Settings


def load_model(s: Settings, be: Backend) -> tuple:
    """(model with LoRA on --lora-targets, tokenizer with a pad token). Over a bf16 base PEFT keeps the LoRA weights
    in fp32 (autocast_adapter_dtype), so small updates are not rounded away."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))  # one model per process/GPU under `accelerate launch`
    if be.cuda and s.gpu_memory_cap_gib:
        total = torch.cuda.get_device_properties(local_rank).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, s.gpu_memory_cap_gib * 2**30 / total), local_rank)
    try:
        model, tokenizer = (_unsloth if be.unsloth else _peft)(s, be, local_rank)
    except OSError as e:
        raise TrainingError(f"cannot load model {be.model_path!r}: {e}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _unsloth(s: Settings, be: Backend, local_rank: int) -> tuple:
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(be.model_path, max_seq_length=s.max_seq_len,
                                                         load_in_4bit=True, dtype=torch.bfloat16,
                                                         device_map={"": local_rank})
    model = FastLanguageModel.get_peft_model(
        model, r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0, bias="none",
        target_modules=s.lora_targets.split(","), use_gradient_checkpointing="unsloth", random_state=s.seed)
    return model, tokenizer


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
    return get_peft_model(model, lora), tokenizer


def inference_modes(be: Backend) -> tuple[Callable, Callable]:
    """How to switch the model to generation and back: (to inference, to training); Unsloth has its own pair."""
    if be.unsloth:
        from unsloth import FastLanguageModel

        return FastLanguageModel.for_inference, FastLanguageModel.for_training
    return (lambda m: m.eval()), (lambda m: m.train())
