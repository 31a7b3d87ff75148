"""Which library trains the model, decided once, before anything imports transformers.

Unsloth patches transformers, TRL and PEFT when it is imported, so it has to be imported first; whether to use it
depends on the device and on the quantization, which depends on the model's size. So the order is: resolve the
model, count its parameters from its config, resolve the settings' size defaults, then import Unsloth where it is
used. Both results go to ziglora/train/recipe.py, which asks nothing of the environment again.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.models import resolve_model
from ziglora.train.settings import Settings


class TrainingError(RuntimeError):
    """What a user must fix before training can run (bad data, a model that cannot be loaded, out of memory)."""


@dataclass(frozen=True)
class Backend:
    name: str  # unsloth-4bit | peft-4bit | peft-bf16 | peft-cpu-fp32
    cuda: bool
    four_bit: bool
    model_path: str  # what loads: a hub id or a local directory (a built-in name resolved)
    params: float  # parameter count estimated from the config
    note: str  # why Unsloth is not used ("" when it is)

    @property
    def unsloth(self) -> bool:
        return self.name.startswith("unsloth")


def read_config(model_path: str) -> dict:
    local = Path(model_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model_path, "config.json")).read_text())
    except Exception as e:  # noqa: BLE001 - offline, unknown id, no config: all say the same to the user
        raise TrainingError(
            f"cannot load model {model_path!r}: {type(e).__name__}: {e}\nIf this machine is offline (HF_HUB_OFFLINE=1 "
            f"or no network), download it where the hub is reachable (`hf download {model_path}`) and pass --model "
            "<local dir>, or use --model smollm2-135m.") from None


def count_params(config: dict) -> float:
    """Parameters of a decoder-only transformer from its config (embeddings, attention, gated MLP)."""
    h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or h // heads
    kv = config.get("num_key_value_heads") or heads
    attention = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q and o, k and v
    mlp = 3 * h * config.get("intermediate_size", 4 * h)
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    return float(embeddings + layers * (attention + mlp))


def prepare(s: Settings) -> tuple[Settings, Backend]:
    """(the settings resolved for this model and device, the training library chosen and imported for them)."""
    import torch

    try:
        model_path = resolve_model(s.model)
    except FileNotFoundError as e:
        raise TrainingError(str(e)) from None
    params = count_params(read_config(model_path))
    cuda = torch.cuda.is_available()
    s = s.resolve(params, cuda)
    return s, choose(s, cuda, model_path, params)


def choose(s: Settings, cuda: bool, model_path: str, params: float) -> Backend:
    """The library that trains these (resolved) settings; Unsloth is imported here when it is the one."""
    if not cuda:
        return Backend("peft-cpu-fp32", False, False, model_path, params, "no CUDA GPU")
    if s.quantize != "4bit":
        # Unsloth's point is fast 4-bit kernels; a small model trains on a bf16 base (docs/RESULTS.md)
        return Backend("peft-bf16", True, False, model_path, params, "bf16 base (--quantize none)")
    if os.environ.get("ZIGLORA_NO_UNSLOTH") == "1":
        return Backend("peft-4bit", True, True, model_path, params, "ZIGLORA_NO_UNSLOTH=1")
    try:
        import unsloth  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means: use the plain transformers + PEFT path
        return Backend("peft-4bit", True, True, model_path, params, f"{type(e).__name__}: {e}")
    return Backend("unsloth-4bit", True, True, model_path, params, "")
