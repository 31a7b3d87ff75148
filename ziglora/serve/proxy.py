"""An OpenAI-compatible HTTP proxy in front of vLLM that adds retrieved documentation to every chat request.

Each POST /v1/chat/completions gets the release's best sections for its last user message (ziglora/retrieve) as a
system message just before that message; everything else (/v1/models, other paths, the response bodies, streamed
server-sent events, the upstream's errors with their status) passes through unchanged. Faults end with an
OpenAI-style JSON error, never a hang: upstream unreachable 502, upstream silent past the timeout 504 (mid-stream:
an error event, then the stream ends), a body that is not a chat request 400, one over the size limit 413, more
requests in flight than allowed 503. Standard library only (http.server, http.client): nothing to install beside
vLLM, and bytes pass through as they come.
"""
from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ziglora.retrieve.context import DEFAULT_BUDGET, DEFAULT_K, TokenCounter, estimate_tokens, prepare, retrieve
from ziglora.retrieve.index import Index

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
# Headers of one connection, not of the message (RFC 9110 7.6.1): never forwarded either way.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-connection"}
CHUNK = 64 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # an oversized body up to this much is read and dropped, so its client reads the 413


class Rejected(Exception):
    """A request the proxy answers itself, with this status and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, kind: str):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


@dataclass(frozen=True)
class Settings:
    budget: int = DEFAULT_BUDGET  # tokens of retrieved context per request
    k: int = DEFAULT_K
    max_in_flight: int = 16  # requests forwarded at once; more wait up to queue_timeout_s, then get 503
    queue_timeout_s: float = 30.0
    upstream_timeout_s: float = 600.0  # silence from the upstream (connect, headers or between body bytes) -> 504
    client_timeout_s: float = 60.0  # a client that stops sending its request mid-way is dropped
    max_request_bytes: int = 8 * 1024 * 1024


def error_body(status: int, message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


def _text(content: object) -> str:
    """A message's text: a string, or the text parts of the OpenAI content-parts form."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def chat_query(messages: list[dict]) -> tuple[int, str] | None:
    """(position, retrieval query) of the last user message, or None without one. Paragraphs that also appear in a
    system message are left out of the query: a client's boilerplate repeated there (Aider appends its format
    reminder to the user's message) says nothing about what the user asks."""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return None
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    paragraphs = re.split(r"\n\s*\n", _text(messages[users[-1]].get("content")))
    query = "\n\n".join(p for p in paragraphs if p.strip() and p.strip() not in system)
    return users[-1], query


def parse_chat(body: bytes) -> dict:
    """The chat request's JSON object; Rejected (400) when it is not one."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Rejected(400, f"the request body is not valid JSON ({e})", "invalid_request_error") from None
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise Rejected(400, "a chat completion request needs a JSON object with a non-empty `messages` list of "
                            "message objects", "invalid_request_error")
    return request


class Proxy(ThreadingHTTPServer):
    """The proxy server: `with Proxy(upstream, index) as p:` serves at p.url in a thread until the block ends;
    serve_proxy() runs one in the foreground."""

    daemon_threads = True  # a handler waiting on a slow upstream must not hold up shutdown
    request_queue_size = 64

    def __init__(self, upstream: str, index: Index, settings: Settings = Settings(), host: str = "127.0.0.1",
                 port: int = 0, count: TokenCounter = estimate_tokens):
        """`upstream`: the model server's URL, e.g. http://127.0.0.1:8000/v1 (requests keep their own /v1/... path)."""
        up = urlsplit(upstream)
        if up.scheme not in ("http", "https") or not up.hostname:
            raise ValueError(f"upstream {upstream!r}: need an http(s)://host[:port] URL")
        super().__init__((host, port), _Handler)
        self.settings, self.index, self.count = settings, index, count
        prepare(index, count)  # every section counted now, not on the first requests
        self.upstream_prefix = up.path.rstrip("/").removesuffix("/v1")
        self.connection_class = http.client.HTTPSConnection if up.scheme == "https" else http.client.HTTPConnection
        self.upstream_host, self.upstream_port = up.hostname, up.port
        self.slots = threading.BoundedSemaphore(settings.max_in_flight)
        self.url = f"http://{self.server_address[0]}:{self.server_address[1]}/v1"

    def __enter__(self) -> Proxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.0"  # one request per connection: a body of unknown length ends with the connection

    def setup(self) -> None:
        self.timeout = self.server.settings.client_timeout_s
        super().setup()

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def _handle(self) -> None:
        s = self.server.settings
        if not self.server.slots.acquire(timeout=s.queue_timeout_s):
            self._error(503, f"the proxy already forwards {s.max_in_flight} requests; retry later", "server_busy")
            return
        try:
            body = self._read_body()
            added: dict[str, str] = {}
            if self.command == "POST" and self.path.split("?")[0].rstrip("/") == CHAT_PATH:
                body, added = self._with_context(body)
            self._forward(body, added)
        except Rejected as e:
            log.warning("%s %s: %d %s", self.command, self.path, e.status, e.message)
            self._error(e.status, e.message, e.kind)
        finally:
            self.server.slots.release()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise Rejected(411, "send the request body with a Content-Length, not chunked", "invalid_request_error")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise Rejected(400, "Content-Length is not a number", "invalid_request_error") from None
        limit = self.server.settings.max_request_bytes
        if length > limit:
            self._drain(length)
            raise Rejected(413, f"the request body has {length} bytes; this proxy takes at most {limit}",
                           "request_too_large")
        return self.rfile.read(length) if length > 0 else b""

    def _drain(self, length: int) -> None:
        """Read and drop an oversized body (up to DRAIN_LIMIT) so that the client, still sending, gets the answer."""
        left = min(length, DRAIN_LIMIT)
        try:
            while left > 0 and (chunk := self.rfile.read(min(CHUNK, left))):
                left -= len(chunk)
        except OSError:
            pass
        self.close_connection = True

    def _with_context(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """The chat request with the retrieved sections as a system message before its last user message."""
        request = parse_chat(body)
        found = chat_query(request["messages"])
        if found is None or not found[1].strip():
            log.info("chat %s: no user message to retrieve for; forwarded unchanged", request.get("model"))
            return body, {}
        position, query = found
        start = time.perf_counter()
        s = self.server.settings
        context = retrieve(self.server.index, query, s.budget, s.k, self.server.count)
        ms = (time.perf_counter() - start) * 1000
        if not context.sections:
            log.info("chat %s: nothing retrieved (%.1f ms); forwarded unchanged", request.get("model"), ms)
            return body, {}
        request["messages"].insert(position, context.system_message())
        log.info("chat %s: added %d sections, %d tokens%s in %.1f ms: %s", request.get("model"),
                 len(context.sections), context.tokens, " (the last one cut)" if context.cut else "", ms,
                 " | ".join(context.ids))
        added = {"X-Retrieval-Sections": str(len(context.sections)), "X-Retrieval-Tokens": str(context.tokens)}
        return json.dumps(request, ensure_ascii=False).encode(), added

    def _forward(self, body: bytes, added: dict[str, str]) -> None:
        srv, s = self.server, self.server.settings
        where = f"{srv.upstream_host}:{srv.upstream_port}" if srv.upstream_port else srv.upstream_host
        conn = srv.connection_class(srv.upstream_host, srv.upstream_port, timeout=s.upstream_timeout_s)
        # host and length are this hop's; the body is already read, so no 100-continue is awaited upstream
        own = HOP_BY_HOP | {"host", "content-length", "expect"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in own}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        try:
            try:
                conn.request(self.command, srv.upstream_prefix + self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
            except TimeoutError:
                raise Rejected(504, f"the model server at {where} did not answer within {s.upstream_timeout_s:g} s",
                               "upstream_timeout") from None
            except (OSError, http.client.HTTPException) as e:
                raise Rejected(502, f"the model server at {where} is not reachable ({e.__class__.__name__}: {e}); "
                                    "is vLLM running?", "upstream_unreachable") from None
            self.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            for key, value in added.items():
                self.send_header(key, value)
            self.end_headers()
            self._relay(resp, where)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse, where: str) -> None:
        """Copy the response body as it arrives; past the timeout without a byte, end it (a stream with an error
        event first)."""
        try:
            while chunk := resp.read1(CHUNK):
                self.wfile.write(chunk)
                self.wfile.flush()
        except TimeoutError:
            timeout = self.server.settings.upstream_timeout_s
            log.warning("%s %s: the model server at %s sent nothing for %g s mid-response; ended it",
                        self.command, self.path, where, timeout)
            if "text/event-stream" in (resp.getheader("Content-Type") or ""):
                message = f"the model server at {where} sent nothing for {timeout:g} s; the stream was ended"
                self.wfile.write(b"data: " + error_body(504, message, "upstream_timeout") + b"\n\n")
        except (BrokenPipeError, ConnectionResetError):
            log.info("%s %s: the client went away mid-response", self.command, self.path)
        except (OSError, http.client.HTTPException) as e:
            log.warning("%s %s: the model server at %s broke off mid-response (%s)", self.command, self.path, where, e)
        self.close_connection = True

    def _error(self, status: int, message: str, kind: str) -> None:
        data = error_body(status, message, kind)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client is gone: nobody to tell


def serve_proxy(upstream_url: str, index: Index, host: str = "127.0.0.1", port: int = 8001,
                settings: Settings = Settings(), count: TokenCounter = estimate_tokens) -> None:
    """Serve the proxy in the foreground until interrupted (Ctrl-C)."""
    proxy = Proxy(upstream_url, index, settings, host, port, count)
    log.info("retrieval proxy for %s (Zig %s, %d sections) at %s", upstream_url, index.zig_version,
             len(index.sections), proxy.url)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.server_close()
