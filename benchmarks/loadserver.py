"""A loopback load server for the benchmarks: raw sockets, pre-rendered SSE bodies.

Run it as its own process (`python -m benchmarks.loadserver`) so it never competes with the
client for the GIL; it prints its port on the first line of stdout. The request path selects
the reply, so every client can be pointed at it with a plain `base_url`:

    POST /{framing}/{tokens}/{interval_us}/v1/completions
    POST /{framing}/{tokens}/{interval_us}/v1/chat/completions

- `framing`: `chunked` (one HTTP chunk per event, keep-alive) or `close` (no length, the
  connection closes at the end of the body);
- `tokens`: how many token events before the final one (which carries an empty text, the
  finish reason and the usage), followed by `data: [DONE]`;
- `interval_us`: 0 writes the whole pre-rendered body at once (throughput); otherwise one
  event every `interval_us` microseconds, each token's text being the server's
  `time.monotonic_ns()` just before the write (latency; the clock is shared by every process on
  the machine).

Events have the exact shape of Together's /v1/completions chunks
(`tests/scripted_server.py:completion_chunk`), or, on a `/chat/completions` path, of its chat
chunks (`tests/chat_chunks.py:chat_chunk`: `delta.content`, the finish chunk with `"stop"`,
a seed above 2**63 and usage with a top-level `cached_tokens`).

Two servers answer the same paths. The default (`serve_forever`) runs one thread per
connection. `--asyncio` runs one event loop with a listen backlog of `--backlog` (4096), so
a burst of 1000+ concurrent paced streams neither overflows the accept queue (a dropped SYN
costs the client a 1 s retransmit) nor spends its time switching 1000 threads; in that mode a
paced reply writes its headers and first event in one send, so the first token's text is
also the server's first-byte timestamp, and `GET /stats` returns (and clears) one
`[request_read_ns, first_byte_ns]` pair per paced request, for the concurrency benchmark's
breakdown of the time to first token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from functools import lru_cache

from tests.chat_chunks import chat_chunk
from tests.scripted_server import completion_chunk

_PLACEHOLDER = "\x00TOKEN\x00"
_TEMPLATE = json.dumps(completion_chunk(_PLACEHOLDER)).replace(json.dumps(_PLACEHOLDER), "{}")
# The chat chunk carries the token twice (`text` and `delta.content`), as Together sends it.
_CHAT_TEMPLATE = json.dumps(chat_chunk(_PLACEHOLDER)).replace(json.dumps(_PLACEHOLDER), "{}")
_FINAL = json.dumps(
    completion_chunk(
        "",
        "length",
        usage={"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    )
)
_CHAT_FINAL = json.dumps(
    chat_chunk(
        "",
        "stop",
        usage={"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1, "cached_tokens": 0},
        seed=13362809677919627000,
    )
)
MAX_TOKENS = 2_000_000
MAX_PACED_SECONDS = 30.0
READ_TIMEOUT = 60.0
MAX_STATS = 100_000


def token_text(index: int) -> str:
    """The text of token `index` in a throughput stream (5-7 characters, like real tokens)."""
    return f" w{index % 10000}"


def event(text: str, *, chat: bool = False) -> bytes:
    """One SSE event carrying `text` in Together's completion (or chat) chunk shape."""
    template = _CHAT_TEMPLATE if chat else _TEMPLATE
    return b"data: " + template.replace("{}", json.dumps(text)).encode() + b"\n\n"


def _frame(data: bytes, *, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data


_TAIL = b"data: " + _FINAL.encode() + b"\n\n" + b"data: [DONE]\n\n"
_CHAT_TAIL = b"data: " + _CHAT_FINAL.encode() + b"\n\n" + b"data: [DONE]\n\n"


def _tail(*, chat: bool) -> bytes:
    return _CHAT_TAIL if chat else _TAIL


@lru_cache(maxsize=8)
def body(tokens: int, *, chunked: bool, chat: bool = False) -> bytes:
    """The whole response body for a throughput stream of `tokens` tokens, framed."""
    parts = [_frame(event(token_text(i), chat=chat), chunked=chunked) for i in range(tokens)]
    parts.append(_frame(_tail(chat=chat), chunked=chunked))
    if chunked:
        parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _head(*, chunked: bool) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
    return (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        f"Cache-Control: no-cache\r\n{framing}\r\n\r\n"
    ).encode()


def parse_path(path: str) -> tuple[str, int, int, bool]:
    """`(framing, tokens, interval_us, chat)` from a request path (ValueError/IndexError)."""
    parts = path.strip("/").split("/")
    framing, tokens, interval_us = parts[0], min(int(parts[1]), MAX_TOKENS), int(parts[2])
    return framing, tokens, interval_us, "chat" in parts[3:]


def _read_request(reader: object) -> str | None:
    """Read one request; return its path, or None when the client closed."""
    line: bytes = reader.readline(65536)  # type: ignore[attr-defined]
    if not line:
        return None
    path = line.split(b" ")[1].decode("latin-1")
    length = 0
    while (header := reader.readline(65536)) not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        reader.read(length)  # type: ignore[attr-defined]
    return path


def _serve(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(60)
    reader = sock.makefile("rb")
    try:
        while (path := _read_request(reader)) is not None:
            framing, tokens, interval_us, chat = parse_path(path)
            chunked = framing == "chunked"
            sock.sendall(_head(chunked=chunked))
            if interval_us == 0:
                sock.sendall(body(tokens, chunked=chunked, chat=chat))
            else:
                _paced(sock, tokens, interval_us / 1e6, chunked=chunked, chat=chat)
            if not chunked:
                break
    except (OSError, ValueError, IndexError):
        pass
    finally:
        reader.close()
        sock.close()


def _paced(sock: socket.socket, tokens: int, interval: float, *, chunked: bool, chat: bool) -> None:
    start = time.monotonic()
    deadline = start + MAX_PACED_SECONDS
    for i in range(tokens):
        due = start + i * interval
        now = time.monotonic()
        if now > deadline:
            break
        if due > now:
            time.sleep(due - now)
        sock.sendall(_frame(event(str(time.monotonic_ns()), chat=chat), chunked=chunked))
    sock.sendall(_frame(_tail(chat=chat), chunked=chunked) + (b"0\r\n\r\n" if chunked else b""))


def serve_forever(listener: socket.socket) -> None:
    """Accept connections until the process ends, one thread per connection."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


# --- the asyncio server (`--asyncio`) --------------------------------------------------------


class _Stats:
    """`[request_read_ns, first_byte_ns]` of each paced reply since the last `GET /stats`."""

    def __init__(self) -> None:
        self.pairs: list[tuple[int, int]] = []

    def add(self, received: int, first_byte: int) -> None:
        if len(self.pairs) < MAX_STATS:
            self.pairs.append((received, first_byte))

    def take(self) -> bytes:
        data, self.pairs = json.dumps(self.pairs).encode(), []
        return data


class _Connection(asyncio.Protocol):
    """One keep-alive connection: callbacks and timers only, no task or stream per client.

    A paced reply is a chain of `loop.call_at` timers, one per event, so a thousand streams
    cost the server a thousand timer entries rather than a thousand coroutines or threads.
    """

    def __init__(self, stats: _Stats) -> None:
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timer = asyncio.get_running_loop().call_later(READ_TIMEOUT, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def _idle(self) -> None:
        if self.transport is not None and not self.busy:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > 1 << 20:  # not a client of this benchmark
            self._close()
            return
        self._next_request()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _next_request(self) -> None:
        if self.busy or self.transport is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for header in head[1:]:
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        received = time.monotonic_ns()
        try:
            method, path = head[0].split(" ")[:2]
            if method == "GET" and path == "/stats":
                data = self.stats.take()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
                )
                self._next_request()
                return
            framing, tokens, interval_us, chat = parse_path(path)
        except (ValueError, IndexError):
            self._close()
            return
        chunked = framing == "chunked"
        if interval_us == 0:
            self.transport.write(_head(chunked=chunked) + body(tokens, chunked=chunked, chat=chat))
            self._done(chunked=chunked)
            return
        self.busy = True
        if self.timer is not None:
            self.timer.cancel()
        start = asyncio.get_running_loop().time()
        self._paced(0, tokens, start, interval_us / 1e6, received, chunked=chunked, chat=chat)

    def _paced(
        self,
        index: int,
        tokens: int,
        start: float,
        interval: float,
        received: int,
        *,
        chunked: bool,
        chat: bool,
    ) -> None:
        if self.transport is None:
            return
        loop = asyncio.get_running_loop()
        if index < tokens and loop.time() - start < MAX_PACED_SECONDS:
            written = time.monotonic_ns()
            data = _frame(event(str(written), chat=chat), chunked=chunked)
            if index == 0:
                self.transport.write(_head(chunked=chunked) + data)
                self.stats.add(received, written)
            else:
                self.transport.write(data)
            self.timer = loop.call_at(
                start + (index + 1) * interval,
                lambda: self._paced(
                    index + 1, tokens, start, interval, received, chunked=chunked, chat=chat
                ),
            )
            return
        self.transport.write(
            (_head(chunked=chunked) if index == 0 else b"")
            + _frame(_tail(chat=chat), chunked=chunked)
            + (b"0\r\n\r\n" if chunked else b"")
        )
        self.busy = False
        self._done(chunked=chunked)

    def _done(self, *, chunked: bool) -> None:
        if not chunked:
            self._close()
            return
        self.timer = asyncio.get_running_loop().call_later(READ_TIMEOUT, self._idle)
        self._next_request()


async def serve_asyncio(listener: socket.socket, lifetime: float, backlog: int) -> None:
    """Serve on `listener` from this event loop until stdin closes or `lifetime` passes."""
    stats = _Stats()
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    # create_server listens again, with its own backlog (100) unless told otherwise.
    server = await loop.create_server(lambda: _Connection(stats), sock=listener, backlog=backlog)
    async with server:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), lifetime)


def main(argv: list[str] | None = None) -> None:
    """Listen on 127.0.0.1, print the port, serve until stdin closes or 20 minutes pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asyncio", action="store_true", help="one event loop, not threads")
    parser.add_argument("--backlog", type=int, default=128, help="listen backlog")
    args = parser.parse_args(argv)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(args.backlog)
    print(listener.getsockname()[1], flush=True)
    lifetime = 20 * 60
    if args.asyncio:
        listener.setblocking(False)
        asyncio.run(serve_asyncio(listener, lifetime, args.backlog))
        return
    threading.Thread(target=serve_forever, args=(listener,), daemon=True).start()
    # The parent holds our stdin; when it exits (or crashes) we exit too.
    watchdog = threading.Thread(target=sys.stdin.read, daemon=True)
    watchdog.start()
    watchdog.join(timeout=lifetime)


if __name__ == "__main__":
    main()
