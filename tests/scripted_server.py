"""A loopback HTTP/1.1 server that answers with exact bytes, for wire-level tests.

The emulator speaks Together's protocol; this server speaks whatever a test scripts, byte for
byte and pause for pause, so tests can replay recordings and break framing on purpose.
"""

from __future__ import annotations

import json
import os
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

SSE = [("Content-Type", "text/event-stream; charset=utf-8")]


@dataclass
class Reply:
    """One scripted response. `body` items are bytes to write or float pauses in seconds."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: list(SSE))
    body: list[bytes | float] = field(default_factory=list)
    framing: Literal["chunked", "close", "length"] = "chunked"
    reset: bool = False  # end with an RST instead of a clean end
    head_delay: float = 0.0  # silence before the status line, watching for the client to leave
    head_drip: float = 0.0  # a pause after every byte of the status line and headers


@dataclass
class Seen:
    """What the server received, and when the client went away."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    disconnected_at: float | None = None
    head_sent_at: float | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def sse_body(*datas: str | dict[str, Any], done: bool = True) -> list[bytes | float]:
    """A body of `data:` events, one write each, ending with [DONE] when asked."""
    writes: list[bytes | float] = []
    for data in datas:
        text = data if isinstance(data, str) else json.dumps(data)
        writes.append(f"data: {text}\n\n".encode())
    if done:
        writes.append(b"data: [DONE]\n\n")
    return writes


def completion_chunk(text: str, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chunk in the shape Together's /v1/completions sends."""
    return {
        "id": "test-id-1",
        "object": "completion.chunk",
        "created": 1758038918,
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish_reason,
                "seed": None,
                "delta": {"token_id": 1, "role": "assistant", "content": text},
            }
        ],
        "model": "test/model",
        "usage": None,
        **extra,
    }


def token_stream(tokens: Iterable[str], finish_reason: str = "length") -> list[bytes | float]:
    """A complete, well-formed stream of the given tokens with usage on the last chunk."""
    tokens = list(tokens)
    chunks = [completion_chunk(token) for token in tokens[:-1]]
    usage = {"prompt_tokens": 3, "completion_tokens": len(tokens), "total_tokens": 3 + len(tokens)}
    chunks.append(completion_chunk(tokens[-1], finish_reason, usage=usage))
    return sse_body(*chunks)


class ScriptedServer:
    """Serves `replies` in order (the last one repeats), or whatever `replies(seen)` returns."""

    def __init__(
        self,
        replies: list[Reply] | Callable[[Seen], Reply],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """With `tls` (a server context), speak HTTPS; `handshakes` counts TLS attempts."""
        self._replies = replies
        self._tls = tls
        self.seen: list[Seen] = []
        self.connections = 0
        self.handshakes = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                if owner._tls is not None:
                    with owner._lock:
                        owner.handshakes += 1
                    try:
                        sock = owner._tls.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError):
                        return  # the client refused the certificate
                owner._serve_connection(sock)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}/v1"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_disconnect(self, index: int = -1, timeout: float = 5.0) -> float | None:
        """The monotonic time the client of request `index` hung up, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.seen and self.seen[index].disconnected_at is not None:
                    return self.seen[index].disconnected_at
            time.sleep(0.005)
        return None

    def _next_reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if callable(self._replies):
                return self._replies(seen)
            index = min(len(self.seen) - 1, len(self._replies) - 1)
            return self._replies[index]

    def _serve_connection(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        with self._lock:
            self.connections += 1
            connection = self.connections
        reader = sock.makefile("rb")
        try:
            while True:
                request = _read_request(reader, connection)
                if request is None:
                    return
                reply = self._next_reply(request)
                if not self._send(sock, reply, request):
                    return
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    def _send(self, sock: socket.socket, reply: Reply, seen: Seen) -> bool:
        """Write the reply; False when the connection must end afterwards."""
        try:
            if not _send_head(sock, _head(reply), reply):
                seen.disconnected_at = time.monotonic()
                return False
            seen.head_sent_at = time.monotonic()
            for part in reply.body:
                if isinstance(part, float):
                    if not _pause(sock, part):
                        seen.disconnected_at = time.monotonic()
                        return False
                elif reply.framing == "chunked":
                    if part:
                        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    sock.sendall(part)
            if reply.reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            if reply.framing == "chunked":
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            seen.disconnected_at = time.monotonic()
            return False
        return reply.framing != "close"


def _head(reply: Reply) -> bytes:
    head = [f"HTTP/1.1 {reply.status} Scripted"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    if reply.framing == "chunked":
        head.append("Transfer-Encoding: chunked")
    elif reply.framing == "length":
        size = sum(len(part) for part in reply.body if isinstance(part, bytes))
        head.append(f"Content-Length: {size}")
    else:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def _send_head(sock: socket.socket, head: bytes, reply: Reply) -> bool:
    """Write the status line and headers as scripted; False if the client hung up."""
    if reply.head_delay and not _pause(sock, reply.head_delay):
        return False
    if not reply.head_drip:
        sock.sendall(head)
        return True
    for index in range(len(head)):
        sock.sendall(head[index : index + 1])
        if not _pause(sock, reply.head_drip):
            return False
    return True


def _pause(sock: socket.socket, seconds: float) -> bool:
    """Wait, watching for the client to hang up; False if it did."""
    # TLS sockets refuse MSG_PEEK: peek at the TCP stream under them, through a duplicate.
    raw = socket.socket(fileno=os.dup(sock.fileno())) if isinstance(sock, ssl.SSLSocket) else sock
    try:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([raw], [], [], min(left, 0.01))
            if readable:
                try:
                    if not raw.recv(1, socket.MSG_PEEK) or _tls_closed(sock):
                        return False
                except OSError:
                    return False
        return True
    finally:
        if raw is not sock:
            raw.close()


def _tls_closed(sock: socket.socket) -> bool:
    """Over TLS, bytes from a client waiting for an answer can only be its close_notify
    (asyncio closes TLS gracefully and keeps TCP open until the peer answers it)."""
    if not isinstance(sock, ssl.SSLSocket):
        return False
    sock.settimeout(0.05)
    try:
        return not sock.recv(1)
    except (ssl.SSLWantReadError, TimeoutError):
        return False
    except (ssl.SSLError, OSError):
        return True
    finally:
        sock.settimeout(10)


def _read_request(reader: Any, connection: int) -> Seen | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return Seen(method, path, headers, body, connection)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    """`data` cut into pieces of `size` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


class StallingListener:
    """Accepts connections, reads what clients send and never answers a byte.

    An `https://` URL on it leaves the client inside its TLS handshake, waiting for a
    ServerHello: the "connecting" moment. It records when each client hung up.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.received: list[bytes] = []
        self.disconnected_at: list[float | None] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def url(self, scheme: str = "https") -> str:
        port = self._listener.getsockname()[1]
        return f"{scheme}://127.0.0.1:{port}/v1"

    def __enter__(self) -> StallingListener:
        self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                index = len(self.received)
                self.received.append(b"")
                self.disconnected_at.append(None)
            thread = threading.Thread(target=self._drain, args=(sock, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _drain(self, sock: socket.socket, index: int) -> None:
        sock.settimeout(0.05)
        with sock:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                with self._lock:
                    if not data:
                        self.disconnected_at[index] = time.monotonic()
                        return
                    self.received[index] += data
