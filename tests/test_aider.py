"""Aider (from .venv-aider) with the repo's own settings files, talking to the real vLLM server through a
recording HTTP proxy on 127.0.0.1: the proxy shows what Aider really sent, body and all. Then the aider suite
of scripts/evaluate.py: the real Aider against the stand-in server (ziglora/evaluate/standin.py) on a small track."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from test_evaluate import EXERCISES, make_exercism_archive
from test_serve_vllm import lora_adapter_dir  # noqa: F401 - the adapter fixture shared with that file
from vllm_server import vllm_server

from ziglora.evaluate.standin import StandIn

REPO = Path(__file__).resolve().parents[1]
AIDER = REPO / ".venv-aider" / "bin" / "aider"
SETTINGS_FILES = [".aider.conf.yml", ".aider.model.settings.yaml", ".aider.model.metadata.json"]
MESSAGE = "Write a Zig function that adds two i32 values."


class RecordingProxy(BaseHTTPRequestHandler):
    """Forwards every request to `upstream` and keeps (method, path, JSON body) of each one, and (model,
    finish_reason) of each chat completion it answered."""

    upstream = ""
    requests: list[tuple[str, str, dict | None]] = []
    finishes: list[tuple[str, str | None]] = []

    def _relay(self, method: str):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append((method, self.path, json.loads(body) if body else None))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        # the whole answer at once, streamed or not: Aider reads server-sent events from a buffered body too
        resp = requests.request(method, type(self).upstream + self.path, data=body, headers=headers, timeout=300)
        if self.path.endswith("/chat/completions") and resp.ok:
            type(self).finishes.append((json.loads(body)["model"], finish_reason(resp.text)))
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


def finish_reason(text: str) -> str | None:
    """The finish_reason of a chat completion, whole or streamed as server-sent events."""
    chunks = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: {")] or [text]
    reasons = [c.get("finish_reason") for chunk in chunks for c in json.loads(chunk).get("choices", [])]
    return next((r for r in reversed(reasons) if r), None)


@pytest.fixture(scope="module")
def proxy(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory):  # noqa: F811
    server = vllm_server(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory.getbasetemp())
    RecordingProxy.upstream = server.url.removesuffix("/v1")
    RecordingProxy.requests, RecordingProxy.finishes = [], []
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


# ---------------------------------------------------------------- the aider suite against the stand-in server


def test_standin_answers_litellm_streamed_and_not():
    """LiteLLM itself (Aider's client, from .venv-aider) reads the stand-in's answer both ways it asks."""
    if not AIDER.is_file():
        pytest.fail(f"{AIDER} missing: `make test` installs it (target .venv-aider/.stamp)")
    script = (
        "import sys, litellm\n"
        "kw = dict(model='hosted_vllm/reference', api_base=sys.argv[1], messages=[{'role': 'user', 'content': 'hi'}])\n"
        "whole = litellm.completion(stream=False, **kw)\n"
        "parts = ''.join(c.choices[0].delta.content or '' for c in litellm.completion(stream=True, **kw))\n"
        "print(repr(whole.choices[0].message.content)); print(repr(parts)); print(whole.usage.completion_tokens)\n"
    )
    reply = "x.zig\n```zig\n" + "const a = 1;\n" * 40 + "```\n"  # longer than one streamed chunk
    with StandIn(lambda model, messages: reply, ["reference"]) as server:
        proc = subprocess.run([str(AIDER.parent / "python"), "-c", script, server.url], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    whole, streamed, completion_tokens = proc.stdout.strip().splitlines()
    assert whole == streamed == repr(reply)
    assert int(completion_tokens) == len(reply) // 4
    assert [r["stream"] for r in server.requests] == [False, True]


def run_aider_suite(tmp_path: Path, *args: str, exercises: dict = EXERCISES) -> tuple[dict, Path]:
    """evaluate.py --suites aider on the fixture track (2 exercises, 1 incomplete): (its report, its --output)."""
    archive = tmp_path / "track.tar.gz"
    make_exercism_archive(archive, "fixture", exercises)
    proc = subprocess.run(  # --output relative to evaluate.py's directory, not to Aider's
        [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--suites", "aider", "--exercism-archive", str(archive),
         "--output", "report", "--jobs", "2", "--concurrency", "2", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "report" / "eval_report.json").read_text()), tmp_path / "report"


@pytest.mark.parametrize("answers", ["reference", "stub"])
def test_aider_suite_with_the_standin(tmp_path, answers):
    """The real Aider edits each exercise of a small exercism-layout track through the stand-in: the reference
    solutions pass on the first try, the unchanged stubs fail both tries (the second one sees the test output)."""
    report, out = run_aider_suite(tmp_path, "--answers", answers)
    [row] = report["results"]
    expect = 2 if answers == "reference" else 0
    assert (row["suite"], row["pass@1"], row["pass@2"], row["total"], row["skipped"]) == ("aider", expect, expect, 2, 1)
    tasks = {t["task"]: t for t in report["tasks"]}
    logs = out / "logs" / answers / "aider" / "add-one"
    if answers == "reference":
        assert tasks["add-one"]["metrics"]["tries"] == 1 and tasks["add-one"]["metrics"]["replies"] == 1
        assert "+    return x + 1;" in (logs / "diff-1.patch").read_text()  # Aider applied the reply
        assert "of 2 tries 0 % did not compile, 0 hit the token limit" in row["note"]
    else:
        assert all(t["metrics"]["tries"] == 2 and t["metrics"]["not_compiled"] == 2 for t in tasks.values())
        assert "implement addOne" in (logs / "test-1.txt").read_text()  # the stub's @compileError failed it
        # the second try carried the first try's test output and the first chat to the model
        second = (logs / "llm-history.txt").read_text().split("TO LLM")[-1]
        assert "implement addOne" in second and "Return the number after `x`." in second
        assert "of 4 tries 100 % did not compile" in row["note"]
    assert tasks["add-one"]["metrics"]["prompt_tokens"] > 0 and "not applied 0 %" in row["note"]
    assert "0 were killed at the time limit" in row["note"]
    assert (logs / "chat.md").is_file() and (logs / "aider-1.txt").is_file()
    assert "| aider |" in (out / "eval_report.md").read_text()
    assert report["settings"]["max_tokens"] == 2048 and report["settings"]["aider_timeout_s"] == 1800


def test_max_tokens_cuts_aiders_replies(tmp_path):
    """--max-tokens reaches the server in Aider's requests: the stand-in cuts each reference reply there
    (finish_reason length), as vLLM would, and Aider applies none of them; the report counts those tries."""
    report, out = run_aider_suite(tmp_path, "--answers", "reference", "--max-tokens", "8")
    [row] = report["results"]
    assert (row["pass@1"], row["pass@2"], row["total"]) == (0, 0, 2)
    for task in report["tasks"]:
        assert task["metrics"]["tries"] == task["metrics"]["token_limit"] == 2
        assert task["metrics"]["replies"] == 2  # counted from the log: Aider itself counts no cut reply
    logs = out / "logs" / "reference" / "aider" / "add-one"
    assert "has hit a token limit!" in (logs / "aider-1.txt").read_text()
    assert (logs / "diff-1.patch").read_text() == ""  # the cut reply changed nothing
    assert "of 4 replies; of 4 tries 100 % did not compile, 4 hit the token limit" in row["note"]
    assert report["settings"]["max_tokens"] == 8


def test_second_try_sees_a_long_first_chat_whole(tmp_path):
    """A first chat longer than Aider's summarizing threshold (1/16 of the 16k context) reaches the second try as
    it was, not as a summary the weak model (the model under test) wrote."""
    rules = "".join(f"- Rule {i}: the answer for {i} is the number after {i}, which is {i + 1}.\n" for i in range(150))
    add_one = {**EXERCISES["add-one"], ".docs/instructions.md": f"# Add one\n\nReturn the number after `x`.\n\n{rules}"}
    report, out = run_aider_suite(tmp_path, "--answers", "stub", exercises={"add-one": add_one})
    assert [t["metrics"]["tries"] for t in report["tasks"]] == [2]
    second = (out / "logs" / "stub" / "aider" / "add-one" / "llm-history.txt").read_text().split("TO LLM")[-1]
    assert "I spoke to you previously" not in second  # how Aider starts a summary
    assert "- Rule 149: the answer for 149" in second and "implement addOne" in second


def test_aider_suite_against_vllm(proxy, tmp_path):
    """The aider suite end to end with the real vLLM (the tiny model and its adapter, both listed) on the two
    exercises: every request Aider sends carries --max-tokens, and every reply stays within it."""
    before, finished_before = len(RecordingProxy.requests), len(RecordingProxy.finishes)
    report, _ = run_aider_suite(tmp_path, "--base-url", proxy, "--max-tokens", "12", "--request-timeout", "300")
    rows = {r["model"]: r for r in report["results"]}
    assert set(rows) == {report["base_model"], "ziglora"}
    assert all((r["total"], r["skipped"]) == (2, 1) for r in rows.values())
    chats = [body for _, path, body in RecordingProxy.requests[before:] if path.endswith("/chat/completions")]
    assert {body["model"] for body in chats} == set(rows)
    assert all(body["max_tokens"] == 12 for body in chats), [body.get("max_tokens") for body in chats]
    assert all(task["metrics"]["tries"] == task["metrics"]["replies"] == 2 for task in report["tasks"])
    # A try hits the token limit exactly when the server cut its reply, also where Aider's console wraps the long
    # served name of the base model (its directory) and the words that say so. The random models mostly talk past
    # 12 tokens, but not always: a reply that ends by itself is no cut.
    cut = Counter(model for model, reason in RecordingProxy.finishes[finished_before:] if reason == "length")
    assert cut[report["base_model"]] > 0
    for model in rows:
        assert sum(t["metrics"]["token_limit"] for t in report["tasks"] if t["model"] == model) == cut[model], model
