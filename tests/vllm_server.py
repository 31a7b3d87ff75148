"""One trained adapter and one vLLM CPU server per test session, shared by test_serve_vllm.py and
test_aider.py (starting the server is the slowest step of these tests, so it happens once). Not a conftest:
the fixtures that use these live in the test files; this module trains, starts, waits for and stops."""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
START_TIMEOUT_S = 900  # a cold start on a machine busy with other work


@dataclass
class Server:
    url: str  # up to /v1
    base_model: str  # the served name of the base model
    log: Path
    proc: subprocess.Popen


_servers: dict[tuple[str, str], Server] = {}


def trained_adapter(model_dir: Path, work: Path) -> Path:
    """An adapter trained by train_lora.py itself (4 steps on a small release dir), as a user would make one.

    Trained once into `work` (the session's base temp dir, so every test file gets the same one). The high
    learning rate moves LoRA's B away from its zero start in 4 steps, so that the adapter changes what the
    tiny model answers and base and adapter can be told apart.
    """
    from test_train_lora import write_release

    out = work / "adapter"
    if (out / "adapter_config.json").is_file():
        return out
    rel, prompts = write_release(work)
    proc = subprocess.run(
        [sys.executable, str(REPO / "train_lora.py"), "--model", str(model_dir), "--data", str(rel),
         "--prompts", str(prompts), "--output", str(out), "--max-seq-len", "256", "--batch-size", "1",
         "--grad-accum", "1", "--max-steps", "4", "--lora-rank", "8", "--learning-rate", "0.05",
         "--eval-share", "0", "--warmup-steps-excluded", "1", "--general-prompts", "none"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"train_lora.py failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)  # vLLM's engine runs in child processes: end the group
        try:
            server.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def vllm_server(model_dir: Path, adapter_dir: Path, log_dir: Path) -> Server:
    """Start (once) `scripts/serve.py ADAPTER --device cpu` for this model and adapter; return when it answers."""
    key = (str(model_dir), str(adapter_dir))
    if key in _servers:
        return _servers[key]
    if not VLLM_PYTHON.is_file():
        pytest.fail(f"{VLLM_PYTHON} missing: `make test` installs it (target .venv-vllm/.stamp)")
    port = free_port()
    log = log_dir / "vllm.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}  # GiB; the default takes a share of all memory
    # The random tiny model seldom emits EOS: cap every answer server-side, or a request without
    # max_tokens (Aider sends none) generates noise up to the whole context.
    cmd = [sys.executable, str(REPO / "scripts" / "serve.py"), str(adapter_dir),
           "--device", "cpu", "--port", str(port), "--max-model-len", "2048", "--", "--max-num-seqs", "4",
           "--override-generation-config", '{"max_new_tokens": 64}']
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/v1", str(model_dir), log, proc)
    atexit.register(_stop, server)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM exited with {proc.returncode}; last log lines:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{server.url}/models", timeout=5).ok:
                _servers[key] = server
                return server
        except requests.RequestException:
            pass
        time.sleep(2)
    _stop(server)
    pytest.fail(f"vLLM did not answer within {START_TIMEOUT_S} s; last log lines:\n{log.read_text()[-4000:]}")
