"""
The HTTP plumbing: a threading HTTP/1.1 server that hands each request to the emulator, sends its answer
(or drops the connection) and never logs an API key.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import fault_error
from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import Reply

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EmulatorHTTPServer"]

log = logging.getLogger(__name__)

_KEY_IN_QUERY_RE = re.compile(r"([?&]key=)[^&\s'\"]*", re.IGNORECASE)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """
    Serves ``answer`` on ``address`` in one thread per connection.

    :param address: ``(host, port)``; port 0 picks a free one.
    :param answer: answers one request, ``(method, raw path, lower-cased headers, body)``, with a reply or
        ``None`` (drop the connection); called from the handler threads.
    :param api_key: returns the key to redact from the log.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        answer: Callable[[str, str, dict[str, str], bytes], Reply | None],
        api_key: Callable[[], str],
    ) -> None:
        self.answer = answer
        self.api_key = api_key
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Shut down every connection still open (keep-alive clients would otherwise hang on)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GeminiEmulator/1.0"
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle plus delayed ACKs add ~40 ms a call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.answer(method, self.path, headers, body)
        except Exception:
            log.exception("Gemini emulator failed to answer a %s request", method)
            reply = Reply(500, fault_error(500).body())
        if reply is None:
            self._drop_connection()
            return
        self._send_reply(reply)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send_reply(self, reply: Reply) -> None:
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urllib.parse.urlsplit(self.path).path
        log.debug("%s %s -> %s", self.command, path, code)

    def log_message(self, format: str, *args: Any) -> None:
        message = _KEY_IN_QUERY_RE.sub(r"\1<redacted>", format % args)
        api_key = self.server.api_key()
        if api_key:
            message = message.replace(api_key, "<redacted>")
        log.debug("HTTP: %s", message)
