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
from typing import NamedTuple

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
    (`b"\\n\\n"`), or `b""` while no event is complete. When a read completes some events
    and also shows one over the limit, `feed` returns the events before it and sets `error`;
    the next call raises it.
    """

    __slots__ = (
        "_at_start",
        "_bom",
        "_max_event_bytes",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "error",
    )

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
        self.error: TogetherStreamError | None = None
        """The refusal found after the events the last `feed` returned, if any."""

    def feed(self, chunk: bytes) -> bytes:
        """Take one read.

        Args:
            chunk: The next bytes of the body.

        Returns:
            Complete events, ending with a blank line, or `b""`.

        Raises:
            TogetherStreamError: An event is larger than `max_event_bytes`, and no complete
                event came before it in this read.
        """
        if self.error is not None:
            raise self.error
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
            # Only a block this long can hold an event over the limit.
            if len(complete) > self._max_event_bytes and (bad := self._oversized(complete)) >= 0:
                return self._refuse(complete[:bad])
            buffer = pending
        if size > self._max_event_bytes:
            return self._refuse(complete)
        self._pending, self._pending_size = buffer, size
        return complete

    def end(self) -> bytes:
        """Finish the stream; an unterminated last event is discarded.

        Returns:
            `b""`: `feed` has already returned every event its bytes completed.

        Raises:
            TogetherStreamError: The last `feed` found an event over the limit.
        """
        if self.error is not None:
            raise self.error
        self._pending, self._pending_size = b"", 0
        return b""

    def _oversized(self, block: bytes) -> int:
        """Where the first event over the limit starts in `block`, or -1."""
        limit = self._max_event_bytes
        start = 0
        for piece in block.split(b"\n\n"):
            if len(piece) > limit and len(piece) - piece.count(b"\n") > limit:
                return start
            start += len(piece) + 2
        return -1

    def _refuse(self, before: bytes) -> bytes:
        """Fail now, or after handing over the complete events that came before."""
        self._pending, self._pending_size = b"", 0
        self.error = TogetherStreamError(
            f"Together sent an event larger than {self._max_event_bytes} bytes."
        )
        if not before:
            raise self.error
        return before


class EventDecoder:
    """Push-based SSE decoder: feed it reads, get back the events they completed.

    A read can complete good events and then hit a bad one (too large, not UTF-8). `feed`
    then returns an iterable that yields the good ones and raises the error when it reaches
    the bad one, so the caller has the same events before the same error however the bytes
    were split into reads.
    """

    __slots__ = ("_error", "_framer")

    def __init__(self, *, max_event_bytes: int) -> None:
        """Start before the first byte of a stream.

        Args:
            max_event_bytes: The largest event accepted.
        """
        self._framer = EventFramer(max_event_bytes=max_event_bytes)
        self._error: TogetherStreamError | None = None

    def feed(self, chunk: bytes) -> Iterable[SSEEvent]:
        """Take one read of any size.

        Args:
            chunk: The next bytes of the body.

        Returns:
            The events with data that these bytes completed, in order (comments and
            data-less events are skipped); iterating past the last good one raises when an
            event after it is bad.

        Raises:
            TogetherStreamError: An event is larger than `max_event_bytes` or not valid UTF-8.
        """
        if self._error is not None:
            raise self._error
        block = self._framer.feed(chunk)
        try:
            events = _parse(block)
        except UnicodeDecodeError:
            events, self._error = _parse_until_invalid(block)
        else:
            self._error = self._framer.error
        if self._error is None:
            return events
        if not events:
            raise self._error
        return _then_raise(events, self._error)

    def end(self) -> list[SSEEvent]:
        """Finish the stream; an unterminated last event is discarded.

        Returns:
            `[]`: `feed` has already returned every complete event.

        Raises:
            TogetherStreamError: The last read held a bad event.
        """
        if self._error is not None:
            raise self._error
        self._framer.end()
        return []


_new_event = SSEEvent._make  # faster than a call with arguments, on the per-token path


def _parse(block: bytes) -> list[SSEEvent]:
    """Every event of `block`; raises UnicodeDecodeError for one that is not UTF-8."""
    return [
        event for piece in block.split(b"\n\n") if piece and (event := _event(piece)) is not None
    ]


def _parse_until_invalid(block: bytes) -> tuple[list[SSEEvent], TogetherStreamError]:
    events: list[SSEEvent] = []
    for piece in block.split(b"\n\n"):
        try:
            event = _event(piece) if piece else None
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.end]
            return events, TogetherStreamError(
                f"Together sent bytes that are not valid UTF-8: {bad!r}"
            )
        if event is not None:
            events.append(event)
    raise AssertionError  # pragma: no cover (called only for a block that failed to decode)


def _then_raise(events: list[SSEEvent], error: TogetherStreamError) -> Iterator[SSEEvent]:
    yield from events
    raise error


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
