"""A loopback HTTP/1.1 server that answers with exact bytes, for wire-level tests.

The emulator speaks Together's protocol; this server speaks whatever a test scripts, byte for
byte and pause for pause, so tests can replay recordings and break framing on purpose.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
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
    version: str = "1.1"  # "1.0" for an HTTP/1.0 status line (use with framing="close")


@dataclass
class Seen:
    """What the server received, and when the client went away."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    disconnected_at: float | None = None

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

    def __init__(self, replies: list[Reply] | Callable[[Seen], Reply]) -> None:
        self._replies = replies
        self.seen: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve_connection(self.request)

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
        return f"http://{host}:{port}/v1"

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
        head = [f"HTTP/{reply.version} {reply.status} Scripted"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        if reply.framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        elif reply.framing == "length":
            size = sum(len(part) for part in reply.body if isinstance(part, bytes))
            head.append(f"Content-Length: {size}")
        else:
            head.append("Connection: close")
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
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


def _pause(sock: socket.socket, seconds: float) -> bool:
    """Wait, watching for the client to hang up; False if it did."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.01))
        if readable:
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return False
            except OSError:
                return False
    return True


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
