"""A loopback forward proxy for tests: plain requests in absolute form, and CONNECT tunnels.

Host names are mapped to loopback ports (`routes`), so a test can use a name that is not
loopback (`together.test`) and still reach a local server, through the proxy only.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Proxied:
    """One request the proxy received: CONNECT or a plain HTTP request, with its headers."""

    method: str
    target: str
    headers: dict[str, str]


class ForwardProxy:
    """Forwards to `routes[host:port] -> loopback port`; refuses every other destination."""

    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = routes
        self.seen: list[Proxied] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = line.split(" ", 2)
        headers = {}
        for header in header_lines:
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        with self._lock:
            self.seen.append(Proxied(method, target, headers))
        if method == "CONNECT":
            authority = target
        else:
            parts = urlsplit(target)
            authority = f"{parts.hostname}:{parts.port or 80}"
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            kept = [h for h in header_lines if not h.lower().startswith("proxy-")]
            head = "\r\n".join([f"{method} {path} {version}", *kept]).encode("latin-1")
        port = self.routes.get(authority)
        if port is None:
            client.sendall(b"HTTP/1.1 502 No Route\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                upstream.sendall(head + b"\r\n\r\n" + rest)
            _pipe(client, upstream)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 10)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)
