"""Aider (from .venv-aider) with the repo's own settings files, talking to the real vLLM server through a
recording HTTP proxy on 127.0.0.1: the proxy shows what Aider really sent, body and all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from test_serve_vllm import lora_adapter_dir  # noqa: F401 - the adapter fixture shared with that file
from vllm_server import vllm_server

REPO = Path(__file__).resolve().parents[1]
AIDER = REPO / ".venv-aider" / "bin" / "aider"
SETTINGS_FILES = [".aider.conf.yml", ".aider.model.settings.yaml", ".aider.model.metadata.json"]
MESSAGE = "Write a Zig function that adds two i32 values."


class RecordingProxy(BaseHTTPRequestHandler):
    """Forwards every request to `upstream` and keeps (method, path, JSON body) of each one."""

    upstream = ""
    requests: list[tuple[str, str, dict | None]] = []

    def _relay(self, method: str):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append((method, self.path, json.loads(body) if body else None))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        # the whole answer at once, streamed or not: Aider reads server-sent events from a buffered body too
        resp = requests.request(method, type(self).upstream + self.path, data=body, headers=headers, timeout=300)
        self.send_response(resp.status_code)
        for key in ("Content-Type",):
            if key in resp.headers:
                self.send_header(key, resp.headers[key])
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    def do_GET(self):
        self._relay("GET")

    def do_POST(self):
        self._relay("POST")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory):  # noqa: F811
    server = vllm_server(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory.getbasetemp())
    RecordingProxy.upstream = server.url.removesuffix("/v1")
    RecordingProxy.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_aider_sends_the_settings_to_the_adapter(proxy, tmp_path):
    if not AIDER.is_file():
        pytest.fail(f"{AIDER} missing: `make test` installs it (target .venv-aider/.stamp)")
    repo = tmp_path / "scratch"
    repo.mkdir()
    for name in SETTINGS_FILES:
        shutil.copy(REPO / name, repo / name)
    (repo / "add.zig").write_text("const std = @import(\"std\");\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    home = tmp_path / "home"  # no ~/.aider* of the machine's user gets read, and Aider's caches stay here
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "HOSTED_VLLM_API_BASE": proxy,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # LiteLLM's bundled price list, not a download
    proc = subprocess.run(
        [str(AIDER), "--message", MESSAGE, "--yes-always", "--no-auto-commits", "--no-pretty", "--verbose",
         "add.zig"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Aider found the repo's settings through .aider.conf.yml, not by luck
    assert "Loaded model settings from:" in proc.stdout and ".aider.model.settings.yaml" in proc.stdout
    chats = [body for method, path, body in RecordingProxy.requests if path.endswith("/chat/completions")]
    assert chats, f"no chat request reached the proxy: {RecordingProxy.requests}"
    body = chats[0]
    assert body["model"] == "ziglora"
    assert body["temperature"] == 0.7 and body["top_p"] == 0.8 and body["top_k"] == 20
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert any(MESSAGE in (m.get("content") or "") for m in body["messages"] if isinstance(m.get("content"), str))
