"""Socket-level output: body framing, pacing, and noticing a client that hung up.

Everything here works on the raw connection socket so the emulator controls
every byte and every write (chunk boundaries, one-byte writes, RST).
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

__all__ = ["BodyWriter", "ClientGoneError", "Connection", "StoppingError"]

# Pacing sleeps wake at least this often to look for a hang-up, so a client that
# breaks out of its loop is noticed within a few tens of milliseconds.
_POLL_STEP = 0.01
_POLL_MASK = (
    getattr(select, "POLLIN", 1) | getattr(select, "POLLHUP", 16) | getattr(select, "POLLERR", 8)
)


class ClientGoneError(Exception):
    """The client closed or reset the connection."""


class StoppingError(Exception):
    """The emulator is shutting down."""


class Connection:
    """One accepted TCP connection, seen from the response side.

    Args:
        sock: The connected socket.
        stopping: Set when the emulator shuts down.
    """

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self._stopping = stopping
        self.aborted = False

    def send(self, data: bytes) -> None:
        """Write all of ``data``.

        Raises:
            ClientGoneError: The client went away.
            StoppingError: The emulator is shutting down.
        """
        if self._stopping.is_set():
            raise StoppingError
        try:
            self.sock.sendall(data)
        except OSError as exc:
            if self._stopping.is_set():
                raise StoppingError from exc
            raise ClientGoneError from exc

    def check(self) -> None:
        """Raise at once if the client has hung up or the emulator is stopping.

        Raises:
            ClientGoneError: The client went away.
            StoppingError: The emulator is shutting down.
        """
        if self._stopping.is_set():
            raise StoppingError
        if self._readable(0.0) and self._peer_closed():
            raise ClientGoneError

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` while watching for a hang-up or shutdown.

        Raises:
            ClientGoneError: The client went away.
            StoppingError: The emulator is shutting down.
        """
        deadline = time.monotonic() + max(0.0, seconds)
        self.check()
        # Bounded by the deadline; each turn waits at most _POLL_STEP.
        while (remaining := deadline - time.monotonic()) > 0:
            step = min(remaining, _POLL_STEP)
            if self._readable(step):
                if self._peer_closed():
                    raise ClientGoneError
                # The client sent bytes (a pipelined request); poll would return at
                # once, so sleep to avoid spinning.
                time.sleep(step)
            if self._stopping.is_set():
                raise StoppingError

    def abort(self) -> None:
        """Close with an RST instead of a FIN (SO_LINGER 0)."""
        self.aborted = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            return
        # detach + os.close: socket.close() would wait for the handler's makefile()
        # objects to close, and the connection must die now, mid-response.
        os.close(self.sock.detach())

    def _readable(self, timeout: float) -> bool:
        try:
            if hasattr(select, "poll"):
                # poll, not select: select fails for descriptors above FD_SETSIZE, which
                # hundreds of concurrent streams in one test process exceed.
                poller = select.poll()
                poller.register(self.sock, _POLL_MASK)
                return bool(poller.poll(timeout * 1000))
            readable, _, _ = select.select([self.sock], [], [], timeout)
            return bool(readable)
        except (OSError, ValueError):
            return True

    def _peer_closed(self) -> bool:
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True
        return data == b""


class BodyWriter:
    """Frames response body bytes: chunked or close-delimited, whole or byte by byte.

    Args:
        conn: Where to write.
        chunked: Use ``Transfer-Encoding: chunked`` framing.
        byte_at_a_time: Write every body byte with its own ``send``.
    """

    def __init__(self, conn: Connection, *, chunked: bool, byte_at_a_time: bool = False) -> None:
        self._conn = conn
        self._chunked = chunked
        self._byte_at_a_time = byte_at_a_time
        self.ended = False

    def write(self, data: bytes) -> None:
        """Send ``data`` as body bytes, flushed at once."""
        if not data:
            return
        if self._byte_at_a_time:
            for i in range(len(data)):
                self._write_one(data[i : i + 1])
        else:
            self._write_one(data)

    def _write_one(self, data: bytes) -> None:
        if self._chunked:
            self._conn.send(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._conn.send(data)

    def end(self) -> None:
        """Finish the body (the chunked terminator; nothing when close-delimited)."""
        if self.ended:
            return
        self.ended = True
        if self._chunked:
            self._conn.send(b"0\r\n\r\n")
