"""A real HTTP server on loopback for the data-stage tests (import the fixture into a test module)."""
from __future__ import annotations

import http.server
import threading

import pytest


class Routes(dict):
    """URL path -> response bytes; `hits` counts requests per path (to prove cached re-runs stay offline)."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: dict[str, int] = {}


@pytest.fixture()
def http_routes():
    """Serve `routes[path]` on 127.0.0.1; yields (base_url, routes). Unknown paths answer 404."""
    routes = Routes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            routes.hits[self.path] = routes.hits.get(self.path, 0) + 1
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
