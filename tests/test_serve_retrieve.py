"""Serving with retrieval (scripts/serve.py --retrieve, ziglora/serve/retrieving.py): the commands a dry run prints,
the release found from the adapter's train report, and the two processes run together: a stand-in for vLLM (a
loopback OpenAI-style server started as the child process) behind the real proxy, stopped by SIGTERM or by its
own death."""
from __future__ import annotations

import json
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from test_retrieve import release  # noqa: F401 - the small release written there

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "scripts" / "serve.py"

# The child process standing in for vLLM: /v1/models, and a chat answer that reports the messages it got.
FAKE_VLLM = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def _send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"data": [{"id": "ziglora"}]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        roles = [m["role"] for m in request["messages"]]
        self._send({"choices": [{"message": {"role": "assistant", "content": json.dumps(roles)}}]})

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_adapter(path: Path, report: dict | None) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen3-8B", "r": 16}))
    if report is not None:  # where results/ keeps it: beside the adapter directory
        (path.parent / "train_report.json").write_text(json.dumps(report))
    return path


def serve(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SERVE), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_dry_run_prints_vllm_behind_the_proxy_with_the_adapter_s_release(tmp_path, release):  # noqa: F811
    adapter = write_adapter(tmp_path / "run" / "adapter", {"data": {"release_dir": str(release),
                                                                    "zig_version": "0.15.2"}})
    proc = serve(str(adapter), "--device", "gpu", "--retrieve", "--host", "0.0.0.0", "--port", "8200", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    vllm, proxy = proc.stdout.splitlines()
    words = shlex.split(vllm)
    assert words[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]
    # vLLM moves to the next port and listens on loopback only; the proxy takes the host and port clients use
    assert words[words.index("--port") + 1] == "8201" and words[words.index("--host") + 1] == "127.0.0.1"
    assert proxy == (f"retrieval proxy: http://0.0.0.0:8200/v1 -> http://127.0.0.1:8201/v1, sections of {release} "
                     "(budget 2500 tokens, at most 5 sections)")
    chosen = serve(str(adapter), "--device", "gpu", "--retrieve", "--data", "raw_data/zig-0.14.0", "--vllm-port",
                   "9000", "--retrieval-budget", "600", "--retrieval-sections", "1", "--dry-run").stdout
    assert "--port 9000" in chosen
    assert chosen.endswith("sections of raw_data/zig-0.14.0 (budget 600 tokens, at most 1 section)\n")
    nothing = serve(str(adapter), "--device", "gpu", "--retrieve", "--retrieval-sections", "0", "--dry-run")
    assert nothing.returncode == 2 and nothing.stdout == ""
    assert nothing.stderr.splitlines()[-1].endswith("argument --retrieval-sections: must be a whole number of at "
                                                    "least 1, got '0'")
    plain = serve(str(adapter), "--device", "gpu", "--dry-run").stdout
    assert len(plain.splitlines()) == 1 and "--port 8000" in plain  # without --retrieve: vLLM alone, as before


def test_a_release_it_cannot_find_is_a_one_line_error(tmp_path):
    bare = write_adapter(tmp_path / "bare" / "adapter", None)
    proc = serve(str(bare), "--device", "gpu", "--retrieve", "--dry-run")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {bare}: no train_report.json beside it names the release; pass "
                                        "--data raw_data/zig-<ver>"]
    gone = write_adapter(tmp_path / "gone" / "adapter", {"data": {"release_dir": str(tmp_path / "nowhere"),
                                                                  "zig_version": "0.13.0"}})
    proc = serve(str(gone), "--device", "gpu", "--retrieve", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "names the release '0.13.0', whose corpus is not on this machine" in proc.stderr


def _start(corpus: Path, port: int, vllm_port: int, fake: list[str]) -> subprocess.Popen:
    """serve_with_retrieval in a process of its own, with `fake` as the vLLM command."""
    code = ("import sys; from pathlib import Path; from ziglora.serve.retrieving import RetrievalSettings, "
            "serve_with_retrieval; import logging; logging.basicConfig(level=logging.INFO); "
            f"sys.exit(serve_with_retrieval({fake!r}, True, Path(sys.executable), 'none', "
            f"RetrievalSettings(Path({str(corpus)!r}), '127.0.0.1', {port}, {vllm_port})))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    for _ in range(200):
        assert process.poll() is None, process.communicate()
        try:
            if requests.get(f"{url}/models", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail("the proxy never answered")


def test_the_proxy_adds_context_in_front_of_the_child_and_sigterm_stops_both(tmp_path, release):  # noqa: F811
    port, vllm_port = free_port(), free_port()
    marker = tmp_path / "fake.py"
    marker.write_text(FAKE_VLLM)
    process = _start(release, port, vllm_port, [sys.executable, str(marker), str(vllm_port)])
    url = f"http://127.0.0.1:{port}/v1"
    _wait_ready(url, process)
    reply = requests.post(f"{url}/chat/completions", timeout=30, json={
        "model": "ziglora", "messages": [{"role": "user", "content": "How do I use @branchHint?"}]})
    assert reply.ok and reply.headers["X-Retrieval-Sections"] != "0"
    assert json.loads(reply.json()["choices"][0]["message"]["content"]) == ["system", "user"]
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "chat ziglora: added 1 sections" in err  # what the proxy added is logged
    with pytest.raises(requests.ConnectionError):  # the child went with it
        requests.get(f"http://127.0.0.1:{vllm_port}/v1/models", timeout=2)


def test_the_child_dying_stops_the_proxy_with_an_error(tmp_path, release):  # noqa: F811
    port = free_port()
    dies = [sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)"]
    process = _start(release, port, free_port(), dies)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "error: vLLM exited with status 3 (its output is above); the proxy stopped with it" in err
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_a_taken_port_fails_before_vllm_starts(tmp_path, release):  # noqa: F811  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = tmp_path / "started"
        process = _start(release, port, free_port(), [sys.executable, "-c", f"open({str(started)!r}, 'w')"])
        _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and f"the proxy cannot listen on 127.0.0.1:{port}" in err
    assert not started.exists()
