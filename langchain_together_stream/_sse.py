"""Bytes to Server-Sent Events; the only place that knows SSE framing.

`EventDecoder` is push-based, so the sync and async transports feed it whatever their HTTP
client read and get back the events those bytes completed. sseclient-py parses the fields of
each event. In front of it, the decoder cuts the byte stream into complete events so that the
result follows the WHATWG algorithm where sseclient-py alone does not, does not depend on how
the bytes were split into reads, and so that a hostile server cannot grow memory without bound:

- CR, LF and CRLF all end lines, even when a CRLF is split across two reads (lines are
  normalised to LF before sseclient-py sees them);
- an event is dispatched as soon as its bytes prove it complete: a CR ends a line at once, and
  an LF right after it, even one arriving in the next read, is then skipped;
- one UTF-8 byte order mark at the start of the stream is dropped;
- an event not closed by a blank line when the stream ends is discarded, never dispatched;
- an event larger than `max_event_bytes` raises instead of being buffered, however the reads
  split it.

An event's size is the number of bytes of its lines, line terminators excluded (a CRLF, a CR
and an LF all count zero), the blank line that closes it excluded too. It covers every line of
the event: field names, values, comments. So `data: xyz` followed by a blank line is 9 bytes
whatever its line endings, and an event of exactly `max_event_bytes` is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple, NoReturn

from sseclient import SSEClient

from langchain_together_stream.errors import TogetherStreamError

_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event."""

    event: str
    data: str


class EventFramer:
    r"""Regroups reads into runs of complete events with LF line endings.

    Each `feed` returns the bytes up to and including the last blank line seen so far
    (`b"\\n\\n"`), or `b""` while no event is complete.
    """

    __slots__ = ("_at_start", "_bom", "_max_event_bytes", "_pending", "_pending_size", "_skip_lf")

    def __init__(self, *, max_event_bytes: int) -> None:
        """Start before the first byte of a stream.

        Args:
            max_event_bytes: The largest event accepted (see the module docstring for how
                an event is measured).
        """
        self._max_event_bytes = max_event_bytes
        self._pending = b""  # LF-normalised bytes after the last blank line
        self._pending_size = 0  # the size of `_pending`, as the module docstring counts it
        self._bom = b""  # the start of a BOM split across the first reads
        self._at_start = True
        self._skip_lf = False  # the last read ended with a CR: a leading LF completes a CRLF

    def feed(self, chunk: bytes) -> bytes:
        """Take one read.

        Args:
            chunk: The next bytes of the body.

        Returns:
            Complete events, ending with a blank line, or `b""`.

        Raises:
            TogetherStreamError: An event is larger than `max_event_bytes`.
        """
        raw = chunk
        if self._at_start:
            raw = self._bom + raw
            if len(raw) < len(_BOM) and _BOM.startswith(raw):
                self._bom = raw
                return b""
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            self._bom, self._at_start = b"", False
        if self._skip_lf and raw:
            self._skip_lf = False
            if raw[:1] == b"\n":
                raw = raw[1:]
        if b"\r" in raw:
            # A CR ends its line now; if it turns out to be half of a CRLF split across
            # reads, the LF is dropped from the start of the next read.
            self._skip_lf = raw.endswith(b"\r")
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        buffer = pending + raw if pending else raw
        end = buffer.rfind(b"\n\n")
        if end < 0:
            # The unfinished event only grew: measure the new bytes alone.
            size = self._pending_size + len(raw) - raw.count(b"\n")
            complete = b""
        else:
            cut = end + 2
            complete, pending = buffer[:cut], buffer[cut:]
            size = len(pending) - pending.count(b"\n") if pending else 0
            if len(complete) > self._max_event_bytes:
                # Only a block this long can hold an event over the limit.
                self._check(complete)
            buffer = pending
        if size > self._max_event_bytes:
            self._refuse()
        self._pending, self._pending_size = buffer, size
        return complete

    def end(self) -> bytes:
        """Finish the stream; an unterminated last event is discarded.

        Returns:
            `b""`: `feed` has already returned every event its bytes completed.
        """
        self._pending, self._pending_size = b"", 0
        return b""

    def _check(self, block: bytes) -> None:
        limit = self._max_event_bytes
        for piece in block.split(b"\n\n"):
            if len(piece) > limit and len(piece) - piece.count(b"\n") > limit:
                self._refuse()

    def _refuse(self) -> NoReturn:
        msg = f"Together sent an event larger than {self._max_event_bytes} bytes."
        raise TogetherStreamError(msg)


class EventDecoder:
    """Push-based SSE decoder: feed it reads, get back the events they completed."""

    __slots__ = ("_framer",)

    def __init__(self, *, max_event_bytes: int) -> None:
        """Start before the first byte of a stream.

        Args:
            max_event_bytes: The largest event accepted.
        """
        self._framer = EventFramer(max_event_bytes=max_event_bytes)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Take one read of any size.

        Args:
            chunk: The next bytes of the body.

        Returns:
            The events with data that these bytes completed, in order (comments and
            data-less events are skipped).

        Raises:
            TogetherStreamError: An event is larger than `max_event_bytes` or not valid UTF-8.
        """
        return _parse(self._framer.feed(chunk))

    def end(self) -> list[SSEEvent]:
        """Finish the stream; an unterminated last event is discarded.

        Returns:
            The events completed by the end of the stream (at most one).

        Raises:
            TogetherStreamError: The last event is not valid UTF-8.
        """
        return _parse(self._framer.end())


_new_event = SSEEvent._make  # faster than a call with arguments, on the per-token path


def _parse(block: bytes) -> list[SSEEvent]:
    try:
        return [
            event
            for piece in block.split(b"\n\n")
            if piece and (event := _event(piece)) is not None
        ]
    except UnicodeDecodeError as exc:
        msg = f"Together sent bytes that are not valid UTF-8: {exc.object[exc.start : exc.end]!r}"
        raise TogetherStreamError(msg) from None


def _event(piece: bytes) -> SSEEvent | None:
    """Parse one event (the text between two blank lines), or None when it has no data."""
    if piece.startswith(b"data:") and b"\n" not in piece:
        # Nearly every event Together sends is one `data:` line. Its meaning is fixed by the
        # spec (one leading space dropped, type "message"), so it skips sseclient-py's
        # per-event objects; `test_sse` checks both routes agree on every such line.
        value = piece[6:] if piece[5:6] == b" " else piece[5:]
        return _new_event(("message", value.decode("utf-8")))
    # A fresh parser per event sees every field of it; the `id` and `retry` state it forgets
    # between events is not used.
    for parsed in SSEClient(iter((piece + b"\n\n",))).events():
        return SSEEvent(parsed.event, parsed.data)
    return None


def iter_events(chunks: Iterable[bytes], *, max_event_bytes: int) -> Iterator[SSEEvent]:
    """Parse a byte stream into events, each as soon as its closing blank line arrives.

    Args:
        chunks: The response body, in reads of any size.
        max_event_bytes: The largest event accepted.

    Yields:
        Each event with data, in order.

    Raises:
        TogetherStreamError: An event is larger than `max_event_bytes` or not valid UTF-8.
    """
    decoder = EventDecoder(max_event_bytes=max_event_bytes)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.end()
