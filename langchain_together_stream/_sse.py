"""Bytes to Server-Sent Events; the only place that knows SSE framing.

`EventDecoder` is push-based, so the sync and async transports feed it whatever their HTTP
client read and get back the events those bytes completed. sseclient-py parses the fields of
each event. In front of it, the decoder cuts the byte stream into complete events so that the
result follows the WHATWG algorithm where sseclient-py alone does not, and so that a hostile
server cannot grow memory without bound:

- CR, LF and CRLF all end lines, even when a CRLF is split across two reads (lines are
  normalised to LF before sseclient-py sees them);
- one UTF-8 byte order mark at the start of the stream is dropped;
- an event not closed by a blank line when the stream ends is discarded, never dispatched;
- an event larger than `max_event_bytes` raises instead of being buffered.
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
    (`b"\\n\\n"`), or `b""` while no event is complete.
    """

    __slots__ = ("_at_start", "_carry", "_max_event_bytes", "_pending")

    def __init__(self, *, max_event_bytes: int) -> None:
        """Start before the first byte of a stream.

        Args:
            max_event_bytes: The largest event accepted.
        """
        self._max_event_bytes = max_event_bytes
        self._pending = b""  # LF-normalised bytes after the last blank line
        self._carry = b""  # raw bytes not yet normalisable: a trailing CR, or a partial BOM
        self._at_start = True

    def feed(self, chunk: bytes) -> bytes:
        """Take one read.

        Args:
            chunk: The next bytes of the body.

        Returns:
            Complete events, ending with a blank line, or `b""`.

        Raises:
            TogetherStreamError: An unfinished event grew past `max_event_bytes`.
        """
        raw = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if self._at_start:
            if len(raw) < len(_BOM) and _BOM.startswith(raw):
                self._carry = raw
                return b""
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            self._at_start = False
        if b"\r" in raw:
            if raw.endswith(b"\r"):
                # It may be the first half of a CRLF split across reads.
                self._carry = b"\r"
                raw = raw[:-1]
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._pending + raw if self._pending else raw
        end = buffer.rfind(b"\n\n")
        cut = end + 2 if end >= 0 else 0
        if cut == len(buffer):
            complete, self._pending = buffer, b""
        else:
            complete, self._pending = buffer[:cut], buffer[cut:]
        if len(self._pending) > self._max_event_bytes:
            msg = f"Together sent an event larger than {self._max_event_bytes} bytes."
            raise TogetherStreamError(msg)
        return complete

    def is_lone_data_line(self, chunk: bytes) -> bool:
        r"""Whether `chunk` is one whole `data:` line and its blank line, with nothing held.

        Framing would pass such a read through unchanged (`b"data: ...\n\n"`, no CR, no
        bytes carried from earlier reads), so the caller may take it as one event without
        `feed`; nearly every read of a Together stream is one.

        Args:
            chunk: The next bytes of the body.

        Returns:
            True when `chunk` is exactly one complete single-line event.
        """
        return (
            not (self._pending or self._carry or self._at_start)
            and chunk.startswith(b"data:")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
            and len(chunk) <= self._max_event_bytes
        )

    def end(self) -> bytes:
        """Finish the stream: a last event closed by a trailing CR, or `b""`.

        Returns:
            The last complete event, if the final CR completed one.
        """
        if self._carry == b"\r" and (self._pending + b"\n").endswith(b"\n\n"):
            return self._pending + b"\n"
        return b""


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
        if self._framer.is_lone_data_line(chunk):
            # Measured 1.06x on the whole sync stream: no framing, split or list building.
            value = chunk[6:-2] if chunk[5:6] == b" " else chunk[5:-2]
            try:
                return [_new_event(("message", value.decode("utf-8")))]
            except UnicodeDecodeError as exc:
                raise _not_utf8(exc) from None
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
        raise _not_utf8(exc) from None


def _not_utf8(exc: UnicodeDecodeError) -> TogetherStreamError:
    msg = f"Together sent bytes that are not valid UTF-8: {exc.object[exc.start : exc.end]!r}"
    return TogetherStreamError(msg)


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
