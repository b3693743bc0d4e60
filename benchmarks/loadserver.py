"""A loopback load server for the benchmarks: raw sockets, pre-rendered SSE bodies.

Run it as its own process (`python -m benchmarks.loadserver`) so it never competes with the
client for the GIL; it prints its port on the first line of stdout. The request path selects
the reply, so every client can be pointed at it with a plain `base_url`:

    POST /{framing}/{tokens}/{interval_us}/v1/completions

- `framing`: `chunked` (one HTTP chunk per event, keep-alive) or `close` (no length, the
  connection closes at the end of the body);
- `tokens`: how many token events before the final one (which carries an empty text, the
  finish reason and the usage), followed by `data: [DONE]`;
- `interval_us`: 0 writes the whole pre-rendered body at once (throughput); otherwise one
  event every `interval_us` microseconds, each token's text being the server's
  `time.monotonic_ns()` just before the write (latency; the clock is shared by every process on
  the machine).

Events have the exact shape of Together's /v1/completions chunks
(`tests/scripted_server.py:completion_chunk`).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from functools import lru_cache

from tests.scripted_server import completion_chunk

_PLACEHOLDER = "\x00TOKEN\x00"
_TEMPLATE = json.dumps(completion_chunk(_PLACEHOLDER)).replace(json.dumps(_PLACEHOLDER), "{}")
_FINAL = json.dumps(
    completion_chunk(
        "",
        "length",
        usage={"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    )
)
MAX_TOKENS = 2_000_000
MAX_PACED_SECONDS = 30.0


def token_text(index: int) -> str:
    """The text of token `index` in a throughput stream (5-7 characters, like real tokens)."""
    return f" w{index % 10000}"


def event(text: str) -> bytes:
    """One SSE event carrying `text` in Together's completion chunk shape."""
    return b"data: " + _TEMPLATE.replace("{}", json.dumps(text)).encode() + b"\n\n"


def _frame(data: bytes, *, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data


_TAIL = b"data: " + _FINAL.encode() + b"\n\n" + b"data: [DONE]\n\n"


@lru_cache(maxsize=8)
def body(tokens: int, *, chunked: bool) -> bytes:
    """The whole response body for a throughput stream of `tokens` tokens, framed."""
    parts = [_frame(event(token_text(i)), chunked=chunked) for i in range(tokens)]
    parts.append(_frame(_TAIL, chunked=chunked))
    if chunked:
        parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _head(*, chunked: bool) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
    return (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        f"Cache-Control: no-cache\r\n{framing}\r\n\r\n"
    ).encode()


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
            parts = path.strip("/").split("/")
            framing, tokens, interval_us = parts[0], min(int(parts[1]), MAX_TOKENS), int(parts[2])
            chunked = framing == "chunked"
            sock.sendall(_head(chunked=chunked))
            if interval_us == 0:
                sock.sendall(body(tokens, chunked=chunked))
            else:
                _paced(sock, tokens, interval_us / 1e6, chunked=chunked)
            if not chunked:
                break
    except (OSError, ValueError, IndexError):
        pass
    finally:
        reader.close()
        sock.close()


def _paced(sock: socket.socket, tokens: int, interval: float, *, chunked: bool) -> None:
    start = time.monotonic()
    deadline = start + MAX_PACED_SECONDS
    for i in range(tokens):
        due = start + i * interval
        now = time.monotonic()
        if now > deadline:
            break
        if due > now:
            time.sleep(due - now)
        sock.sendall(_frame(event(str(time.monotonic_ns())), chunked=chunked))
    sock.sendall(_frame(_TAIL, chunked=chunked) + (b"0\r\n\r\n" if chunked else b""))


def serve_forever(listener: socket.socket) -> None:
    """Accept connections until the process ends, one thread per connection."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


def main() -> None:
    """Listen on 127.0.0.1, print the port, serve until stdin closes or 20 minutes pass."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    threading.Thread(target=serve_forever, args=(listener,), daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    # The parent holds our stdin; when it exits (or crashes) we exit too.
    watchdog = threading.Thread(target=sys.stdin.read, daemon=True)
    watchdog.start()
    watchdog.join(timeout=20 * 60)


if __name__ == "__main__":
    main()
