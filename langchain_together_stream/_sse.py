"""Bytes to Server-Sent Events; the only place that knows SSE framing.

sseclient-py parses the fields of each event. In front of it, `frame_events` cuts the byte
stream into complete events so that the result follows the WHATWG algorithm where sseclient-py
alone does not, and so that a hostile server cannot grow memory without bound:

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


def iter_events(chunks: Iterable[bytes], *, max_event_bytes: int) -> Iterator[SSEEvent]:
    """Parse a byte stream into events, each as soon as its closing blank line arrives.

    Args:
        chunks: The response body, in reads of any size.
        max_event_bytes: The largest event accepted.

    Yields:
        Each event with data, in order (comments and data-less events are skipped).

    Raises:
        TogetherStreamError: An event is larger than `max_event_bytes` or not valid UTF-8.
    """
    events = SSEClient(frame_events(chunks, max_event_bytes=max_event_bytes)).events()
    try:
        for event in events:
            yield SSEEvent(event.event, event.data)
    except UnicodeDecodeError as exc:
        msg = f"Together sent bytes that are not valid UTF-8: {exc.object[exc.start : exc.end]!r}"
        raise TogetherStreamError(msg) from None


def frame_events(chunks: Iterable[bytes], *, max_event_bytes: int) -> Iterator[bytes]:
    r"""Regroup reads into runs of complete events with LF line endings.

    Args:
        chunks: The response body, in reads of any size.
        max_event_bytes: The largest event accepted.

    Yields:
        Byte strings that each end with a blank line (`b"\\n\\n"`).

    Raises:
        TogetherStreamError: An unfinished event grew past `max_event_bytes`.
    """
    pending = b""  # LF-normalised bytes after the last blank line
    carry = b""  # raw bytes not yet normalisable: a trailing CR, or a partial BOM
    at_start = True
    for chunk in chunks:
        raw = carry + chunk if carry else chunk
        carry = b""
        if at_start:
            if len(raw) < len(_BOM) and _BOM.startswith(raw):
                carry = raw
                continue
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            at_start = False
        if b"\r" in raw:
            if raw.endswith(b"\r"):
                # It may be the first half of a CRLF split across reads.
                carry = b"\r"
                raw = raw[:-1]
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = pending + raw if pending else raw
        end = buffer.rfind(b"\n\n")
        cut = end + 2 if end >= 0 else 0
        complete, pending = (buffer, b"") if cut == len(buffer) else (buffer[:cut], buffer[cut:])
        if len(pending) > max_event_bytes:
            msg = f"Together sent an event larger than {max_event_bytes} bytes."
            raise TogetherStreamError(msg)
        if complete:
            yield complete
    if carry == b"\r" and (pending + b"\n").endswith(b"\n\n"):
        yield pending + b"\n"
