"""Push pings against a small HTTP server in this process (loopback only, never the internet)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from remediation.agent.ping import ping_url, redacted, send_ping

SECRET = "0f7c-SECRET-uuid"


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str]]] = []
    status = 200
    delay = 0.0

    def do_POST(self) -> None:
        time.sleep(Hook.delay)
        length = int(self.headers.get("Content-Length", "0"))
        Hook.received.append((self.path, self.rfile.read(length).decode()))
        self.send_response(Hook.status)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client that gave up after its timeout: expected here


@pytest.fixture
def server() -> Iterator[str]:
    Hook.received, Hook.status, Hook.delay = [], 200, 0.0
    httpd = QuietServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/ping/{SECRET}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_ping_api_paths() -> None:
    assert ping_url("https://hc-ping.com/u/", "start") == "https://hc-ping.com/u/start"
    assert ping_url("https://hc-ping.com/u", "success") == "https://hc-ping.com/u"
    assert ping_url("https://hc-ping.com/u", "fail") == "https://hc-ping.com/u/fail"
    assert ping_url("https://hc-ping.com/u", 2) == "https://hc-ping.com/u/2"
    with pytest.raises(ValueError):
        ping_url("https://hc-ping.com/u", 256)
    assert redacted(f"https://hc-ping.com/{SECRET}") == "https://hc-ping.com/…"


def test_start_success_and_exit_status_reach_the_server(server: str) -> None:
    assert send_ping(server, "start") is None
    assert send_ping(server, 0, "outcome: healed") is None
    assert send_ping(server, "fail", "outcome: still-unhealthy") is None
    assert Hook.received == [
        (f"/ping/{SECRET}/start", ""),
        (f"/ping/{SECRET}/0", "outcome: healed"),
        (f"/ping/{SECRET}/fail", "outcome: still-unhealthy"),
    ]


def test_failures_are_one_attempt_short_and_never_name_the_secret(server: str) -> None:
    Hook.status = 503
    problem = send_ping(server, "start")
    assert problem is not None and "HTTP 503" in problem and SECRET not in problem
    assert len(Hook.received) == 1  # no retry
    Hook.status, Hook.delay = 200, 2.0
    started = time.monotonic()
    problem = send_ping(server, "start", timeout=0.3)
    assert problem is not None and SECRET not in problem and time.monotonic() - started < 1.5
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    problem = send_ping(f"http://127.0.0.1:{port}/{SECRET}", "fail")
    assert problem is not None and "refused" in problem.lower() and SECRET not in problem
    assert send_ping(f"file:///etc/{SECRET}", "start") == "ping to file://?/… not sent: only http and https URLs are allowed"
