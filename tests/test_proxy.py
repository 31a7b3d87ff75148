"""The retrieval proxy (ziglora/serve/proxy.py) in front of upstreams on 127.0.0.1 that this file controls: the
stand-in model server (ziglora/evaluate/standin.py), one that never answers, one that stops mid-stream, and none.
Every fault ends with a clear JSON error within its timeout. Then the real vLLM (CPU) behind it, and the real Aider
in front of it."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from test_aider import AIDER, REPO, SETTINGS_FILES
from test_evaluate import EXERCISES
from test_retrieve import release  # noqa: F401 - the small release fixture
from test_serve_vllm import lora_adapter_dir, server  # noqa: F401 - the vLLM server shared with that file

from ziglora.evaluate.standin import StandIn
from ziglora.evaluate.suites.aider import whole_file_reply
from ziglora.retrieve.context import tokenizer_counter
from ziglora.retrieve.index import load_index
from ziglora.serve.proxy import Proxy, Settings, chat_query
from ziglora.serve.proxy import log as proxy_log

QUESTION = "Can I still write `usingnamespace` in Zig 0.15?"
REPLY = "No: usingnamespace was removed. " * 30  # longer than one streamed chunk of the stand-in


def chat(url: str, messages: list[dict] | None = None, timeout: float = 30, **body) -> requests.Response:
    messages = messages or [{"role": "user", "content": QUESTION}]
    return requests.post(f"{url}/chat/completions", json={"model": "ziglora", "messages": messages, **body},
                         timeout=timeout)


@pytest.fixture
def index(release):  # noqa: F811
    return load_index(release)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(lambda model, messages: REPLY, ["ziglora"], parents={"ziglora": "base"}) as model:
        yield model


@contextmanager
def silent_upstream() -> Iterator[str]:
    """A socket that accepts connections and never answers: an upstream that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


class _StallingStream(BaseHTTPRequestHandler):
    """Starts a server-sent event stream, sends one event, then goes quiet."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n')
        self.wfile.flush()
        time.sleep(5)

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_error(resp: requests.Response, status: int, kind: str, words: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == (kind, status) and words in error["message"]


# ---------------------------------------------------------------------------------------------- what it adds


def test_chat_request_gets_the_retrieved_sections_before_its_last_user_message(index, standin, caplog):
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": QUESTION}]
    with Proxy(standin.url, index) as proxy, caplog.at_level("INFO", logger=proxy_log.name):
        resp = chat(proxy.url, messages, temperature=0.0, chat_template_kwargs={"enable_thinking": False})
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == REPLY
    [sent] = standin.requests
    # one system message inserted just before the last user message; every other field and message as sent
    assert sent["messages"][:3] == messages[:3] and sent["messages"][4] == messages[3]
    added = sent["messages"][3]
    assert added["role"] == "system" and ("\n\n### usingnamespace Removed\n\nThe `usingnamespace` keyword has been "
                                          "removed.") in added["content"]
    assert "--- release-notes:" not in added["content"]  # the section as the oracle pastes it, no id line
    assert sent["temperature"] == 0.0 and sent["chat_template_kwargs"] == {"enable_thinking": False}
    sections, tokens = int(resp.headers["X-Retrieval-Sections"]), int(resp.headers["X-Retrieval-Tokens"])
    assert sections >= 1 and 0 < tokens <= Settings().budget
    # the log says what was added: the section ids and the tokens
    [line] = [r.getMessage() for r in caplog.records if "added" in r.getMessage()]
    assert f"added {sections} sections, {tokens} tokens" in line
    assert "release-notes: Language Changes > usingnamespace Removed" in line


def test_query_is_the_last_user_message_without_the_clients_repeated_boilerplate():
    reminder = "Reply with the whole file.\nUse the file listing format."
    messages = [{"role": "system", "content": f"Act as an expert.\n\n{reminder}"},
                {"role": "user", "content": "old question"},
                {"role": "user", "content": [{"type": "text", "text": f"Fix the allocator leak.\n\n{reminder}"}]}]
    assert chat_query(messages) == (2, "Fix the allocator leak.")
    assert chat_query([{"role": "system", "content": "x"}]) is None


def test_a_request_without_a_user_message_passes_unchanged(index, standin):
    messages = [{"role": "system", "content": "Say hi."}]
    with Proxy(standin.url, index) as proxy:
        resp = chat(proxy.url, messages)
    assert resp.status_code == 200 and "X-Retrieval-Sections" not in resp.headers
    assert standin.requests[0]["messages"] == messages


def test_streamed_answer_passes_through_event_by_event(index, standin):
    with Proxy(standin.url, index) as proxy:
        with requests.post(f"{proxy.url}/chat/completions", stream=True, timeout=30, json={
                "model": "ziglora", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}) as resp:
            assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/event-stream"
            events = [line for line in resp.iter_lines() if line]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    assert len(chunks) > 2  # the stand-in's several content chunks, then the finish
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == REPLY
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert standin.requests[0]["messages"][0]["role"] == "system"


def test_models_and_other_paths_and_upstream_errors_pass_through_unchanged(index, standin):
    with Proxy(standin.url, index) as proxy:
        for path in ("/models", "/no/such/path"):
            direct, proxied = requests.get(standin.url + path, timeout=10), requests.get(proxy.url + path, timeout=10)
            assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
        assert requests.get(f"{proxy.url}/models", timeout=10).json()["data"][0] == {
            "id": "ziglora", "object": "model", "owned_by": "stand-in", "parent": "base"}
        # an upstream error for a chat request: its status and body, as the upstream sent them
        resp = requests.post(f"{proxy.url}/completions", json={"model": "ziglora", "prompt": "x"}, timeout=10)
        assert resp.status_code == 404 and "no such path" in resp.json()["error"]["message"]


# ---------------------------------------------------------------------------------------------- faults


def test_upstream_down_is_a_502_that_says_so(index):
    with Proxy(f"http://127.0.0.1:{free_port()}/v1", index) as proxy:
        start = time.monotonic()
        assert_error(chat(proxy.url), 502, "upstream_unreachable", "is not reachable")
        assert_error(requests.get(f"{proxy.url}/models", timeout=10), 502, "upstream_unreachable", "is vLLM running")
    assert time.monotonic() - start < 5


def test_upstream_that_never_answers_is_a_504_after_the_timeout(index):
    with silent_upstream() as upstream, Proxy(upstream, index, Settings(upstream_timeout_s=1)) as proxy:
        start = time.monotonic()
        assert_error(chat(proxy.url), 504, "upstream_timeout", "did not answer within 1 s")
    assert 1 <= time.monotonic() - start < 5


def test_upstream_that_stalls_mid_stream_ends_the_stream_with_an_error_event(index):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _StallingStream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with Proxy(f"http://127.0.0.1:{upstream.server_address[1]}/v1", index,
                   Settings(upstream_timeout_s=1)) as proxy:
            start = time.monotonic()
            resp = chat(proxy.url, stream=True)
            events = [json.loads(line.removeprefix(b"data: ")) for line in resp.content.splitlines() if line]
    finally:
        upstream.shutdown()
    assert time.monotonic() - start < 4
    assert events[0]["choices"][0]["delta"]["content"] == "Hel"
    error = events[-1]["error"]
    assert error["type"] == "upstream_timeout" and "the stream was ended" in error["message"]


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not valid JSON"),
    (b'{"model": "ziglora"}', "non-empty `messages` list"),
    (b'{"model": "ziglora", "messages": "hello"}', "non-empty `messages` list"),
    (b"[1, 2]", "non-empty `messages` list"),
])
def test_malformed_chat_request_is_a_400_and_never_reaches_the_upstream(index, standin, body, words):
    with Proxy(standin.url, index) as proxy:
        resp = requests.post(f"{proxy.url}/chat/completions", data=body, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_request_error", words)
    assert standin.requests == []


def test_oversized_request_is_a_413(index, standin):
    with Proxy(standin.url, index, Settings(max_request_bytes=10_000)) as proxy:
        resp = chat(proxy.url, [{"role": "user", "content": "x" * 50_000}])
        assert_error(resp, 413, "request_too_large", "at most 10000")
        assert chat(proxy.url).status_code == 200  # the proxy goes on serving
    assert len(standin.requests) == 1


def test_requests_beyond_the_concurrency_bound_get_a_503(index):
    settings = Settings(max_in_flight=1, queue_timeout_s=0.5, upstream_timeout_s=3)
    with silent_upstream() as upstream, Proxy(upstream, index, settings) as proxy:
        first: list[requests.Response] = []
        holder = threading.Thread(target=lambda: first.append(chat(proxy.url)))
        holder.start()
        time.sleep(0.5)  # the first request holds the only slot while the upstream says nothing
        start = time.monotonic()
        assert_error(chat(proxy.url), 503, "server_busy", "already forwards 1 requests")
        assert time.monotonic() - start < 2
        holder.join(10)
    assert first[0].status_code == 504


# ---------------------------------------------------------------------------------------------- real vLLM, real Aider


def test_proxy_in_front_of_vllm_answers_with_the_retrieved_context(server, index, tiny_qwen3_dir):  # noqa: F811
    """The real vLLM (CPU, the tiny Qwen3 and its adapter): the proxied prompt is longer by the retrieved context
    (counted with the served model's own tokenizer), streams and errors come back as vLLM sent them."""
    count = tokenizer_counter(tiny_qwen3_dir / "tokenizer.json")
    body = {"model": "ziglora", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4,
            "temperature": 0}
    with Proxy(server.url, index, Settings(budget=600), count=count) as proxy:
        listed = [requests.get(f"{url}/models", timeout=30).json()["data"] for url in (proxy.url, server.url)]
        # as vLLM lists them (each listing has its own permission ids): the adapter under its parent
        assert [[(m["id"], m.get("parent")) for m in data] for data in listed] == [
            [(server.base_model, None), ("ziglora", server.base_model)]] * 2
        direct = requests.post(f"{server.url}/chat/completions", json=body, timeout=300).json()
        resp = requests.post(f"{proxy.url}/chat/completions", json=body, timeout=300)
        assert resp.status_code == 200, resp.text
        tokens = int(resp.headers["X-Retrieval-Tokens"])
        assert 0 < tokens <= 600 and resp.json()["choices"][0]["message"]["content"] is not None
        # the system message vLLM rendered: the context plus the chat template's few role markers
        extra = resp.json()["usage"]["prompt_tokens"] - direct["usage"]["prompt_tokens"]
        assert tokens <= extra <= tokens + 10, (extra, tokens)
        with requests.post(f"{proxy.url}/chat/completions", json={**body, "stream": True}, stream=True,
                           timeout=300) as streamed:
            events = [line for line in streamed.iter_lines() if line]
        assert streamed.status_code == 200 and events[-1] == b"data: [DONE]" and len(events) >= 3
        unknown = {**body, "model": "no-such-model"}
        direct_error = requests.post(f"{server.url}/chat/completions", json=unknown, timeout=60)
        proxied_error = requests.post(f"{proxy.url}/chat/completions", json=unknown, timeout=60)
        assert proxied_error.status_code == direct_error.status_code == 404
        assert proxied_error.json() == direct_error.json()


def test_aider_through_the_proxy_completes_an_exercise_edit(index, tmp_path):
    """The real Aider, with the repo's settings, talks to the proxy exactly as to vLLM; the model behind it (the
    stand-in, answering with the reference solution) gets the retrieved section, and Aider applies its edit."""
    if not AIDER.is_file():
        pytest.fail(f"{AIDER} missing: `make test` installs it (target .venv-aider/.stamp)")
    exercise = EXERCISES["vowel-count"]
    repo = tmp_path / "exercise"
    repo.mkdir()
    for name in SETTINGS_FILES:
        shutil.copy(REPO / name, repo / name)
    for name in ("vowel_count.zig", "test_vowel_count.zig"):
        (repo / name).write_text(exercise[name])
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    home = tmp_path / "home"
    home.mkdir()
    reference = exercise[".meta/example.zig"]
    with StandIn(lambda model, messages: whole_file_reply("vowel_count.zig", reference), ["ziglora"]) as model, \
            Proxy(model.url, index) as proxy:
        proc = subprocess.run(
            [str(AIDER), "--message", "Count the vowels of a string with a for loop in vowel_count.zig.",
             "--yes-always", "--no-auto-commits", "--no-pretty", "--no-check-update", "--analytics-disable",
             "--map-tokens", "0", "--read", "test_vowel_count.zig", "vowel_count.zig"],
            cwd=repo, env={**os.environ, "HOME": str(home), "HOSTED_VLLM_API_BASE": proxy.url,
                           "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (repo / "vowel_count.zig").read_text().rstrip() == reference.rstrip()  # Aider applied the edit
    messages = model.requests[0]["messages"]
    assert model.requests[0]["model"] == "ziglora" and messages[-1]["role"] == "user"
    assert messages[-2]["role"] == "system" and "\n\n## for\n\nA for loop" in messages[-2]["content"]
    assert messages[0]["role"] == "system" and "Act as an expert software developer" in messages[0]["content"]
