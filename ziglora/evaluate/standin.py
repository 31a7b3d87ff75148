"""An OpenAI-compatible stand-in for the model server, on 127.0.0.1: it answers every chat completion with what
`reply(model, messages)` returns, streamed as server-sent events or in one JSON body, the two ways LiteLLM (and so
Aider) asks, cut at the request's max_tokens. It checks the harness around a client without a model.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[str, list[dict]], str]


CHARS_PER_TOKEN = 4  # a stand-in has no tokenizer: about 4 characters a token


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def _message_text(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # the OpenAI content-parts form
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content or "")
    return "\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "stand-in",
                     **({"parent": self.server.parents[m]} if m in self.server.parents else {})}
                    for m in self.server.models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": {"message": f"no such path {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no such path {self.path}"}})
            return
        model, messages = body.get("model", ""), body.get("messages", [])
        self.server.requests.append(body)
        content, finish = self.server.reply(model, messages), "stop"
        # a request's max_tokens cuts the reply (finish_reason length), as a model server does: a cap the client
        # sends shows in what it gets back
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit is not None and _tokens(content) > limit:
            content, finish = content[: limit * CHARS_PER_TOKEN], "length"
        usage = {"prompt_tokens": _tokens(_message_text(messages)), "completion_tokens": _tokens(content)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": "chatcmpl-standin", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": content}
            self._json(200, {**head, "object": "chat.completion", "usage": usage,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        # several chunks, as a server sends them: a client that only reads the first one would be caught
        pieces = [content[i:i + 200] for i in range(0, len(content), 200)] or [""]
        for i, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self._event({**head, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({**head, "object": "chat.completion.chunk", "usage": usage,
                     "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _event(self, obj: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
        self.wfile.flush()

    def _json(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    reply: Reply
    models: list[str]
    parents: dict[str, str]
    requests: list[dict]


class StandIn:
    """`with StandIn(reply, models) as s:` serves at s.url (up to /v1) until the block ends. `parents` lists a
    model as an adapter of another, as vLLM lists a LoRA module ({"id": adapter, "parent": base})."""

    def __init__(self, reply: Reply, models: list[str], parents: dict[str, str] | None = None):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.reply = reply
        self._server.models = models
        self._server.parents = parents or {}
        self._server.requests = []
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict]:
        """Every chat request's JSON body, in arrival order."""
        return self._server.requests

    def __enter__(self) -> StandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
