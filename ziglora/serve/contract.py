"""The serving contract: what an adapter must be for vLLM to serve it, and how it is asked. One place for the rules
that training (which checks the adapter it writes), ziglora/serve/vllm.py (which starts vLLM) and evaluation share.
Light on imports: train_lora.py reads it before torch loads."""
from __future__ import annotations

import json
from pathlib import Path

SERVED_NAME = "ziglora"  # the adapter's model name on the server (/v1/models, Aider's hosted_vllm/ziglora)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's --max-lora-rank accepts only these
# vLLM serves LoRA on linear projections only: no embeddings or lm_head (modules_to_save is refused).
LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Training renders chat data with thinking off: serving and every client use the same setting, or the model is
# asked in a template it was not trained on.
THINKING_OFF = {"enable_thinking": False}
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_problems(adapter: Path) -> list[str]:
    """What would make vLLM refuse (or mis-serve) this adapter; empty when it is fine."""
    missing = [f for f in ADAPTER_FILES if not (adapter / f).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    problems = []
    if cfg.get("modules_to_save"):
        problems.append(f"modules_to_save={cfg['modules_to_save']} (vLLM rejects it)")
    if cfg.get("r") not in VLLM_LORA_RANKS:
        problems.append(f"rank {cfg.get('r')} is not one of vLLM's {VLLM_LORA_RANKS}")
    targets = cfg.get("target_modules") or []
    if isinstance(targets, str) or not set(targets) <= set(LORA_PROJECTIONS):
        problems.append(f"target_modules {targets} are not all linear projections of {LORA_PROJECTIONS}")
    if not cfg.get("base_model_name_or_path"):
        problems.append("no base_model_name_or_path")
    from safetensors import safe_open

    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        extra = [k for k in f.keys() if "lora_" not in k]
    if extra:
        problems.append(f"non-LoRA weights in the adapter (vLLM would ignore or reject them): {extra[:3]}")
    return problems
