"""Serving with retrieval: vLLM as a child process on a port of its own, and the retrieval proxy (proxy.py) in front
of it on the port clients use, so that Aider points at the proxy exactly as it would at vLLM.

The two stop together: Ctrl-C or SIGTERM stops the proxy and vLLM's whole process group (vLLM runs its engine in
processes of its own); vLLM exiting by itself stops the proxy with an error, since every request would fail.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ziglora.data.manifest import DataError
from ziglora.retrieve.context import model_counter
from ziglora.retrieve.index import load_index
from ziglora.serve.proxy import Proxy, Settings
from ziglora.serve.vllm import ServeError, server_environment

log = logging.getLogger(__name__)

STOP_GRACE_S = 30  # vLLM's shutdown, before its process group is killed
READY_POLL_S = 2


@dataclass(frozen=True)
class RetrievalSettings:
    release: Path  # raw_data/zig-<ver>: the corpus the sections come from
    host: str  # where the proxy listens; vLLM listens on 127.0.0.1 only
    port: int  # the proxy's: what clients use
    vllm_port: int
    proxy: Settings = Settings()  # its budget and sections a request, as the command line set them

    @property
    def vllm_url(self) -> str:
        return f"http://127.0.0.1:{self.vllm_port}/v1"


def adapter_release(adapter: Path) -> Path:
    """The release the adapter was trained on, from the train_report.json train_lora.py wrote beside it (in the
    adapter directory, or its parent as results/ keeps them): its release_dir, else raw_data/zig-<its version>."""
    for report in (adapter / "train_report.json", adapter.parent / "train_report.json"):
        if report.is_file():
            data = json.loads(report.read_text()).get("data") or {}
            candidates = [data.get("release_dir"), data.get("zig_version") and f"raw_data/zig-{data['zig_version']}"]
            for candidate in filter(None, candidates):
                if (Path(candidate) / "manifest.json").is_file():
                    return Path(candidate)
            raise ServeError(f"{report} names the release {data.get('zig_version')!r}, whose corpus is not on this "
                             "machine (make data); or pass --data raw_data/zig-<ver>")
    raise ServeError(f"{adapter}: no train_report.json beside it names the release; pass --data raw_data/zig-<ver>")


def proxy_line(settings: RetrievalSettings) -> str:
    """What --dry-run prints for the proxy, beside the vLLM command."""
    return (f"retrieval proxy: http://{settings.host}:{settings.port}/v1 -> {settings.vllm_url}, sections of "
            f"{settings.release} (budget {settings.proxy.budget} tokens, at most {settings.proxy.k} "
            f"section{'' if settings.proxy.k == 1 else 's'})")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to vLLM's process group, SIGKILL after the grace period."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _announce_when_ready(settings: RetrievalSettings, process: subprocess.Popen, proxy_url: str) -> None:
    """Log once vLLM answers /v1/models (loading a model takes a while; requests before that get a 502)."""
    while process.poll() is None:
        try:
            with urllib.request.urlopen(f"{settings.vllm_url}/models", timeout=READY_POLL_S):
                log.info("vLLM is ready: clients use %s (e.g. make aider BASE_URL=%s)", proxy_url, proxy_url)
                return
        except OSError:
            time.sleep(READY_POLL_S)


def serve_with_retrieval(cmd: list[str], gpu: bool, python: Path, base: str, settings: RetrievalSettings) -> int:
    """Run vLLM (`cmd`, listening on settings.vllm_port) and the proxy in front of it until Ctrl-C / SIGTERM (0) or
    vLLM's own exit (1). The index and the proxy's port are ready before vLLM starts: a missing corpus or a taken
    port fails at once, not after the model has loaded."""
    try:
        index = load_index(settings.release)
    except DataError as e:
        raise ServeError(f"--retrieve needs the release's corpus: {e}") from None
    count, counted_by = model_counter(base)
    try:
        proxy = Proxy(settings.vllm_url, index, settings.proxy, settings.host, settings.port, count)
    except OSError as e:
        raise ServeError(f"the proxy cannot listen on {settings.host}:{settings.port} ({e})") from None
    server_environment(gpu, python)
    print(shlex.join(cmd), file=sys.stderr, flush=True)
    process = subprocess.Popen(cmd, start_new_session=True)  # a group of its own: stopped whole, by us
    stopping = threading.Event()

    def watch() -> None:
        process.wait()
        if not stopping.is_set():
            proxy.shutdown()  # every request would fail: stop serving

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=_announce_when_ready, args=(settings, process, proxy.url), daemon=True).start()
    log.info("retrieval proxy at %s -> vLLM at %s (starting); Zig %s, %d sections, budget %d tokens %s, at most %d "
             "sections a request", proxy.url, settings.vllm_url, index.zig_version, len(index.sections),
             settings.proxy.budget, counted_by, settings.proxy.k)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        proxy.server_close()
        died = process.poll()
        _stop(process)
    if died is not None:
        print(f"error: vLLM exited with status {died} (its output is above); the proxy stopped with it",
              file=sys.stderr)
        return 1
    return 0
