"""A loopback HTTP proxy in front of an S3 server that answers some requests itself, the way
S3 does when it throttles (503 SlowDown, 503 ServiceUnavailable) or refuses (403 AccessDenied).

Every other request is forwarded byte for byte, so the client under test speaks real S3
protocol to a real server, with real faults in between.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
THROTTLES = (
    ("SlowDown", "Please reduce your request rate."),
    ("ServiceUnavailable", "Service is unable to handle request."),
)


@dataclass
class ProxyLog:
    forwarded: list[tuple[str, str]] = field(default_factory=list)
    throttled: list[tuple[str, str]] = field(default_factory=list)
    denied: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class FaultPlan:
    throttle_every: int = 0
    """Answer every Nth request with a 503 (0: never)."""
    deny: Callable[[str, str], bool] = lambda method, path: False
    """Answer 403 AccessDenied when this says so for (method, path)."""


def _error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>proxy</RequestId></Error>"
    ).encode()


class S3FaultProxy:
    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        target = urlsplit(upstream)
        self.upstream_host = target.hostname or "127.0.0.1"
        self.upstream_port = target.port or 80
        self.plan = plan
        self.log = ProxyLog()
        self._count = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> S3FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self, method: str, path: str) -> tuple[int, str, str] | None:
        with self._lock:
            self._count += 1
            if self.plan.deny(method, path):
                self.log.denied.append((method, path))
                return 403, "AccessDenied", "Access Denied"
            if self.plan.throttle_every and self._count % self.plan.throttle_every == 0:
                self.log.throttled.append((method, path))
                code, message = THROTTLES[len(self.log.throttled) % 2]
                return 503, code, message
            self.log.forwarded.append((method, path))
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = bytearray()
                    while True:
                        size_line = self.rfile.readline()
                        raw += size_line
                        size = int(size_line.split(b";")[0].strip(), 16)
                        if size == 0:
                            while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                                raw += line
                            raw += b"\r\n"
                            return bytes(raw)
                        raw += self.rfile.read(size + 2)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self) -> None:
                body = self._read_body()
                fault = proxy._next_fault(self.command, self.path)
                if fault is not None:
                    status, code, message = fault
                    payload = _error_body(code, message)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=60
                )
                try:
                    upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        upstream.putheader(name, value)
                    upstream.endheaders(body or None)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    declared = answer.getheader("Content-Length")
                    length = declared if self.command == "HEAD" and declared else len(payload)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

        return Handler
