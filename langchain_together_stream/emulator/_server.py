"""The emulator's public object: server lifecycle, request log and counters."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from langchain_together_stream._net import is_loopback
from langchain_together_stream.emulator._chat import ChatResponder
from langchain_together_stream.emulator._handler import Handler
from langchain_together_stream.emulator._ratelimit import AccountRateLimit, Ledger

__all__ = ["EmulatorHTTPServer", "RecordedRequest", "Responder", "TogetherEmulator"]

logger = logging.getLogger("langchain_together_stream.emulator")

#: ``(prompt, request JSON) -> full answer text``, or None for the default generator.
Responder = Callable[[str, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received, as a snapshot.

    Attributes:
        method: HTTP method.
        path: Request target as sent (path and query).
        headers: Request headers with lower-case names; ``authorization`` (and other
            credential headers) are replaced by ``"[REDACTED]"``, so their presence is
            visible but the key never is.
        json: The parsed JSON body, or None if there was none or it did not parse.
        connection_id: Which TCP connection carried it (1 for the first accepted).
        started_at: ``time.monotonic()`` when the request head was read.
        finished_at: ``time.monotonic()`` when handling ended, None while in progress.
        disconnected_at: ``time.monotonic()`` when the server noticed the client hung up
            before the response was complete, else None.
        tokens_sent: Token events written (a final empty eos chunk counts as one).
        fault: The fault applied, or None.
        status: HTTP status sent, None if no status line was sent.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    connection_id: int
    started_at: float
    finished_at: float | None
    disconnected_at: float | None
    tokens_sent: int
    fault: str | None
    status: int | None


@dataclass
class _Record:
    method: str
    path: str
    headers: dict[str, str]
    connection_id: int
    started_at: float
    json: Any = None
    finished_at: float | None = None
    disconnected_at: float | None = None
    tokens_sent: int = 0
    fault: str | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> RecordedRequest:
        return RecordedRequest(
            method=self.method,
            path=self.path,
            headers=dict(self.headers),
            json=self.json,
            connection_id=self.connection_id,
            started_at=self.started_at,
            finished_at=self.finished_at,
            disconnected_at=self.disconnected_at,
            tokens_sent=self.tokens_sent,
            fault=self.fault,
            status=self.status,
        )


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that tracks its connections so it can stop quickly."""

    daemon_threads = True
    # stop() joins handler threads itself, with a deadline.
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: TogetherEmulator) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._conn_threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._opened = 0
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (slow where DNS is absent)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._opened

    def register_connection(self, sock: socket.socket) -> int:
        """Count a new connection and return its id."""
        with contextlib.suppress(OSError):
            # Each SSE event must leave at once, not wait for Nagle.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._opened += 1
            return self._opened

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on its own daemon thread."""
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="together-emulator-conn",
            daemon=True,
        )
        with self._lock:
            self._conn_threads.add(thread)
            self._sockets.add(request)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            logger.debug("connection from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._conn_threads.discard(threading.current_thread())
                self._sockets.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log at debug level instead of printing a traceback to stderr."""
        logger.debug("error serving %s", client_address, exc_info=True)

    def stop_connections(self, timeout: float) -> int:
        """Wake every handler, then join them; return how many are still alive."""
        self.stopping.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._conn_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in threads)


class TogetherEmulator:
    """An offline, Together-compatible completions and chat server on 127.0.0.1.

    Use it as a context manager::

        with TogetherEmulator() as emu:
            post(f"{emu.base_url}/completions", ...)

    Args:
        port: TCP port; 0 picks a free one.
        time_to_first_token: Seconds before the first token event.
        tokens_per_second: Pace of token events; None sends as fast as possible.
        api_keys: None accepts any non-empty bearer key; a collection accepts only those.
        responder: ``(prompt, request_json) -> text | None``: the full answer the
            "model" gives (tokenized and streamed, honouring ``max_tokens``/``stop``);
            None falls back to the default corpus generator.
        host: Interface to bind. Only loopback unless ``allow_remote`` is True.
        rate_limit: An account-level limit (requests/s, tokens/min) answered with 429s and
            503 bursts as Together does; None admits everything. Either way ``ledger``
            counts the tokens served.
        allow_remote: Permit a non-loopback ``host`` (the CLI's explicit ``--host``).
        chat_responder: ``(messages, request_json) -> ChatReply | str | None`` for
            ``/v1/chat/completions``: text, tool calls and reasoning to stream; None
            falls back to the default chat behaviour (see ``emulator._chat``).
        reject_required_tool_choice: Answer ``tool_choice: "required"`` with 400, as
            Together was reported to; False treats it like ``"auto"``.

    Raises:
        ValueError: ``host`` is not loopback and ``allow_remote`` is False.
    """

    def __init__(
        self,
        port: int = 0,
        time_to_first_token: float = 0.0,
        tokens_per_second: float | None = None,
        api_keys: Collection[str] | None = None,
        responder: Responder | None = None,
        *,
        host: str = "127.0.0.1",
        rate_limit: AccountRateLimit | None = None,
        allow_remote: bool = False,
        chat_responder: ChatResponder | None = None,
        reject_required_tool_choice: bool = True,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            msg = f"refusing to bind non-loopback host {host!r}"
            raise ValueError(msg)
        if time_to_first_token < 0:
            msg = "time_to_first_token must be >= 0"
            raise ValueError(msg)
        if tokens_per_second is not None and tokens_per_second <= 0:
            msg = "tokens_per_second must be > 0 or None"
            raise ValueError(msg)
        self.host = host
        self.time_to_first_token = float(time_to_first_token)
        self.tokens_per_second = tokens_per_second
        self.api_keys: frozenset[str] | None = None if api_keys is None else frozenset(api_keys)
        self.responder = responder
        self.chat_responder = chat_responder
        self.reject_required_tool_choice = reject_required_tool_choice
        self.account = rate_limit if rate_limit is not None else AccountRateLimit()
        self._requested_port = port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._records: list[_Record] = []
        self._attempts: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TogetherEmulator:
        """Bind and start serving in a background thread.

        Returns:
            self, for chaining.
        """
        if self._server is not None:
            return self
        server = EmulatorHTTPServer((self.host, self._requested_port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="together-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("Together emulator listening on %s", self.base_url)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, close every connection and join threads within ``timeout``."""
        server, self._server = self._server, None
        if server is None:
            return
        deadline = time.monotonic() + timeout
        server.shutdown()
        alive = server.stop_connections(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            self._thread = None
        server.server_close()
        if alive:
            logger.warning("%d emulator connection threads still running after stop()", alive)

    def __enter__(self) -> TogetherEmulator:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._running().server_port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``: legacy ``POST {root_url}/inference``."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: ``POST {base_url}/completions``."""
        return f"{self.root_url}/v1"

    # ------------------------------------------------------------------ observation

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._cond:
            return [r.snapshot() for r in self._records]

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far (lets tests assert connection pooling)."""
        server = self._server
        return 0 if server is None else server.connections_opened

    @property
    def ledger(self) -> Ledger:
        """Requests admitted and refused, and tokens of the answers served in full.

        Also served as JSON at ``GET {root_url}/emulator/ledger``.
        """
        return self.account.ledger

    def clear(self) -> None:
        """Forget recorded requests, the ``*-then-ok`` fault counters and the ledger."""
        self.account.clear()
        with self._cond:
            self._records.clear()
            self._attempts.clear()

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> bool:
        """Wait until at least ``count`` requests have finished; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(r.finished_at is not None for r in self._records) >= count,
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def wait_for_disconnect(self, request_index: int = -1, timeout: float = 2.0) -> float | None:
        """Wait until the server notices that the client of a request hung up early.

        A test records ``t0 = time.monotonic()`` when it breaks out of its loop and then
        asserts ``emu.wait_for_disconnect() - t0 < 0.3``.

        Args:
            request_index: Index into ``requests`` (negative counts from the end).
            timeout: Seconds to wait.

        Returns:
            The ``time.monotonic()`` at which the hang-up was noticed, or None if it was
            not noticed within ``timeout`` or the request completed normally.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            # Bounded by the deadline; notify_all wakes it on every change of a record.
            while True:
                record = self._record_at(request_index)
                if record is not None:
                    if record.disconnected_at is not None:
                        return record.disconnected_at
                    if record.finished_at is not None:
                        return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.05))

    # ------------------------------------------------------------------ handler hooks

    def _begin(
        self, method: str, path: str, headers: dict[str, str], connection_id: int
    ) -> _Record:
        record = _Record(
            method=method,
            path=path,
            headers=headers,
            connection_id=connection_id,
            started_at=time.monotonic(),
        )
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()
        return record

    def _mark_disconnected(self, record: _Record) -> None:
        with self._cond:
            if record.disconnected_at is None:
                record.disconnected_at = time.monotonic()
            self._cond.notify_all()

    def _finish(self, record: _Record) -> None:
        with self._cond:
            record.finished_at = time.monotonic()
            self._cond.notify_all()

    def _count_attempt(self, fault: str, prompt: str) -> int:
        with self._cond:
            key = (fault, prompt)
            self._attempts[key] = self._attempts.get(key, 0) + 1
            return self._attempts[key]

    def _record_at(self, index: int) -> _Record | None:
        try:
            return self._records[index]
        except IndexError:
            return None

    def _running(self) -> EmulatorHTTPServer:
        if self._server is None:
            msg = "the emulator is not running; use start() or a with block"
            raise RuntimeError(msg)
        return self._server
