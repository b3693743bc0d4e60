import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_together_stream import TogetherLLM
from langchain_together_stream._sse import EventDecoder, EventFramer, SSEEvent, iter_events
from langchain_together_stream.errors import TogetherStreamError
from tests.conftest import make_llm, shared_path
from tests.scripted_server import (
    Reply,
    ScriptedServer,
    Seen,
    completion_chunk,
    sse_body,
    token_stream,
)

LIMIT = 1 << 20


def parse(chunks: list[bytes], limit: int = LIMIT) -> list[tuple[str, str]]:
    return [tuple(event) for event in iter_events(iter(chunks), max_event_bytes=limit)]


def load_vectors() -> list[dict[str, Any]]:
    return json.loads(shared_path("sse", "vectors.json").read_text(encoding="utf-8"))


def one_byte_reads(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_conformance_vectors_whole_chunked_and_byte_at_a_time() -> None:
    vectors = load_vectors()
    assert len(vectors) >= 60
    failures = []
    for vector in vectors:
        expected = [(event["event"], event["data"]) for event in vector["events"]]
        wire = vector["input"].encode("utf-8")
        deliveries = {
            "whole": [wire],
            "chunks": [
                piece.encode("utf-8") for piece in vector.get("chunks") or [vector["input"]]
            ],
            "bytes": one_byte_reads(wire),
        }
        for how, chunks in deliveries.items():
            got = parse(chunks)
            if got != expected:
                failures.append((vector["name"], how, expected, got))
    assert failures == []


def test_crlf_split_between_reads_is_one_line_end() -> None:
    assert parse([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [
        ("message", "a"),
        ("message", "b"),
    ]


def test_lone_cr_ends_lines() -> None:
    assert parse([b"data: a\r\rdata: b\r\r"]) == [("message", "a"), ("message", "b")]


def test_bom_split_across_reads_is_dropped_once() -> None:
    assert parse([b"\xef", b"\xbb", b"\xbfdata: x\n\n"]) == [("message", "x")]


def test_unterminated_last_event_is_discarded() -> None:
    assert parse([b"data: a\n\ndata: b\n"]) == [("message", "a")]


def test_comments_and_multiline_data() -> None:
    wire = b": keep-alive\n\nevent: error\ndata: one\ndata: two\n\n"
    assert parse([wire]) == [("error", "one\ntwo")]


def test_utf8_split_mid_codepoint_decodes() -> None:
    wire = "data: 日本語 🎉\n\n".encode()
    assert parse(one_byte_reads(wire)) == [("message", "日本語 🎉")]


def test_invalid_utf8_is_a_stream_error() -> None:
    with pytest.raises(TogetherStreamError, match="UTF-8"):
        parse([b"data: \xff\xfe\n\n"])


def test_oversized_event_raises_before_buffering_more() -> None:
    def endless() -> Any:
        yield b"data: "
        while True:
            yield b"x" * 65536

    with pytest.raises(TogetherStreamError, match="larger than 1048576 bytes"):
        list(iter_events(endless(), max_event_bytes=LIMIT))


def test_many_data_lines_without_a_blank_line_are_capped_too() -> None:
    def endless() -> Any:
        while True:
            yield b"data: x\n" * 1000

    with pytest.raises(TogetherStreamError):
        list(iter_events(endless(), max_event_bytes=LIMIT))


def test_frames_end_on_blank_lines_only() -> None:
    framer = EventFramer(max_event_bytes=LIMIT)
    frames = [framer.feed(b"data: a\n\ndata: b"), framer.feed(b"\n\n"), framer.end()]
    assert frames == [b"data: a\n\n", b"data: b\n\n", b""]


stream_texts = st.lists(
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
        max_size=20,
    ),
    min_size=1,
    max_size=8,
)


@given(
    datas=stream_texts,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_any_split_of_a_stream_gives_the_same_events(
    datas: list[str], cuts: list[int], newline: str
) -> None:
    wire = "".join(f"data:{data}{newline}{newline}" for data in datas).encode()
    points = sorted({min(cut, len(wire)) for cut in cuts} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in zip(points, points[1:])]
    assert parse(chunks) == [("message", data.removeprefix(" ")) for data in datas]


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_arbitrary_bytes_give_events_or_a_stream_error(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in zip(points, points[1:])]
    try:
        events = list(iter_events(iter(chunks), max_event_bytes=64))
    except TogetherStreamError:
        return
    assert all(isinstance(event, SSEEvent) for event in events)


@given(st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_the_single_data_line_shortcut_agrees_with_sseclient(value: bytes) -> None:
    from sseclient import SSEClient

    from langchain_together_stream._sse import _event

    piece = b"data:" + value
    try:
        expected = [(e.event, e.data) for e in SSEClient(iter((piece + b"\n\n",))).events()]
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            _event(piece)
        return
    assert [tuple(_event(piece))] == expected  # type: ignore[arg-type]


# --- max_event_bytes: the size of an event, however the reads split it ------------------------


def test_an_event_larger_than_the_limit_in_one_read_is_refused() -> None:
    wire = b"data: " + b"x" * 4994 + b"\n\ndata: after\n\n"
    with pytest.raises(TogetherStreamError, match="larger than 1000 bytes"):
        parse([wire], limit=1000)


def test_a_refused_event_is_refused_even_when_more_events_follow_it() -> None:
    wire = b"data: a\n\n" + b"data: " + b"x" * 1000 + b"\n\n" + b"data: b\n\n" * 50
    with pytest.raises(TogetherStreamError, match="larger than 1000 bytes"):
        parse([wire], limit=1000)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_an_event_of_exactly_the_limit_is_accepted_with_its_line_end_in_a_later_read(
    newline: bytes,
) -> None:
    line = b"data: " + b"x" * 994  # 1000 bytes: the limit
    for cut in range(len(line) - 2, len(line) + 2 * len(newline) + 1):
        wire = line + newline + newline
        assert parse([wire[:cut], wire[cut:]], limit=1000) == [("message", "x" * 994)], cut
    with pytest.raises(TogetherStreamError):
        parse([line + b"x" + newline + newline], limit=1000)


def test_the_size_counts_every_line_of_the_event_without_line_ends() -> None:
    event = b": note\r\nevent: e\r\ndata: ab\r\n\r\n"  # 6 + 8 + 8 = 22 bytes of lines
    assert parse([event], limit=22) == [("e", "ab")]
    assert parse(one_byte_reads(event), limit=22) == [("e", "ab")]
    with pytest.raises(TogetherStreamError):
        parse([event], limit=21)
    with pytest.raises(TogetherStreamError):
        parse(one_byte_reads(event), limit=21)


events_and_limits = st.lists(
    st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=3),
    min_size=1,
    max_size=5,
)


@given(
    events=events_and_limits,
    limit=st.integers(min_value=1, max_value=120),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=12),
)
def test_the_limit_decides_the_same_way_for_every_split(
    events: list[list[int]], limit: int, newline: bytes, cuts: list[int]
) -> None:
    # Each event is a few `data:` lines of given lengths; it is refused exactly when the bytes
    # of its lines (line ends excluded) exceed the limit, whatever the reads look like.
    wire = b""
    expected = []
    fits = True
    for lengths in events:
        lines = [b"data:" + b"y" * n for n in lengths]
        wire += b"".join(line + newline for line in lines) + newline
        fits = fits and sum(map(len, lines)) <= limit
        if fits:
            expected.append(("message", "\n".join("y" * n for n in lengths)))
    points = sorted({min(cut, len(wire)) for cut in cuts} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in zip(points, points[1:])]
    got: list[tuple[str, str]] = []
    try:
        for event in iter_events(iter(chunks), max_event_bytes=limit):
            got.append(tuple(event))  # type: ignore[arg-type]  # noqa: PERF401 (kept up to the error)
    except TogetherStreamError:
        assert not fits
        # Only events before the refused one can have been dispatched.
        assert got == expected[: len(got)]
    else:
        assert fits
        assert got == expected


# --- CR line ends: an event goes out as soon as its bytes prove it complete -------------------


def dispatched_without_end(chunks: list[bytes], limit: int = LIMIT) -> list[tuple[str, str]]:
    """Events returned by `feed` alone: what a caller has before the stream ends."""
    decoder = EventDecoder(max_event_bytes=limit)
    return [tuple(event) for chunk in chunks for event in decoder.feed(chunk)]  # type: ignore[misc]


def test_a_cr_ended_event_is_dispatched_without_waiting_for_more_bytes() -> None:
    assert dispatched_without_end([b"data: a\r\r"]) == [("message", "a")]
    assert dispatched_without_end([b"data: a\r", b"\r"]) == [("message", "a")]
    # The LF of a CRLF split across reads is skipped, not taken for a blank line.
    assert dispatched_without_end([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [
        ("message", "a\nb")
    ]


def test_every_vector_is_dispatched_by_feed_alone_in_its_chunks_and_byte_at_a_time() -> None:
    # The vectors' expected events all end with a blank line, so none may wait for end().
    failures = []
    for vector in load_vectors():
        expected = [(event["event"], event["data"]) for event in vector["events"]]
        wire = vector["input"].encode("utf-8")
        chunks = [piece.encode("utf-8") for piece in vector.get("chunks") or [vector["input"]]]
        for how, reads in {"chunks": chunks, "bytes": one_byte_reads(wire)}.items():
            if dispatched_without_end(reads) != expected:
                failures.append((vector["name"], how))
    assert failures == []


sse_like = st.lists(
    st.one_of(
        st.sampled_from(
            [b"data:", b"data: x", b"event: e", b": c", b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf"]
        ),
        st.binary(max_size=4),
    ),
    max_size=30,
).map(b"".join)


@given(data=sse_like)
def test_whatever_a_prefix_proves_complete_is_already_dispatched(data: bytes) -> None:
    # After each byte, `feed` has returned exactly the events a stream ending there would
    # give: nothing is held back waiting for bytes that cannot change it.
    decoder = EventDecoder(max_event_bytes=LIMIT)
    got: list[SSEEvent] = []
    try:
        for end in range(1, len(data) + 1):
            got += decoder.feed(data[end - 1 : end])
            assert got == list(iter_events([data[:end]], max_event_bytes=LIMIT))
    except TogetherStreamError:
        return  # invalid UTF-8: refused either way


# --- the same promises over a real socket, on the sync and the async path ---------------------


def stream_sync(llm: TogetherLLM) -> list[tuple[str, float]]:
    """Each token with the monotonic time it reached the caller."""
    return [(token, time.monotonic()) for token in llm.stream("x")]


def stream_async(llm: TogetherLLM) -> list[tuple[str, float]]:
    async def run() -> list[tuple[str, float]]:
        return [(token, time.monotonic()) async for token in llm.astream("x")]

    return asyncio.run(run())


PATHS = pytest.mark.parametrize("stream", [stream_sync, stream_async], ids=["sync", "async"])
SOCKET_LIMIT = 1000


def sized_event(size: int, newline: bytes) -> tuple[str, bytes]:
    """A valid token event whose one `data:` line is exactly `size` bytes, and its token."""

    def line_of(text: str) -> bytes:
        return b"data: " + json.dumps({"choices": [{"index": 0, "text": text}]}).encode()

    text = "x" * (size - len(line_of("")))
    line = line_of(text)
    assert len(line) == size
    return text, line + newline + newline


def rest_of_stream() -> bytes:
    return b"".join(p for p in token_stream(["b", "c"], "eos") if isinstance(p, bytes))


class Box:
    """The reply the module's server sends next."""

    reply = Reply()

    def __call__(self, seen: Seen) -> Reply:
        return self.reply


@pytest.fixture(scope="module")
def box_and_llm() -> Iterator[tuple[Box, TogetherLLM]]:
    box = Box()
    with ScriptedServer(box) as server:
        llm = TogetherLLM(
            model="test/model",
            api_key="k",
            base_url=server.base_url,
            max_retries=0,
            max_event_bytes=SOCKET_LIMIT,
            timeout=(2.0, 2.0),
        )
        yield box, llm


@PATHS
@settings(
    max_examples=25,
    deadline=None,  # real sockets; every call is bounded by the read timeout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    over=st.sampled_from([0, 1]),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_the_event_limit_over_a_socket_whatever_the_tcp_writes(
    box_and_llm: tuple[Box, TogetherLLM],
    stream: Any,
    over: int,
    newline: bytes,
    cuts: list[int],
) -> None:
    box, llm = box_and_llm
    text, event = sized_event(SOCKET_LIMIT + over, newline)
    wire = event + rest_of_stream()
    points = sorted({0, len(wire), *(cut % (len(wire) + 1) for cut in cuts)})
    box.reply = Reply(body=[wire[a:b] for a, b in zip(points, points[1:]) if b > a])
    if over:
        with pytest.raises(TogetherStreamError, match=f"larger than {SOCKET_LIMIT} bytes"):
            stream(llm)
    else:
        assert [token for token, _ in stream(llm)] == [text, "b", "c"]


@PATHS
@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_a_5000_byte_event_in_one_write_is_refused_under_a_1000_byte_limit(
    serve: Any, stream: Any, framing: Any
) -> None:
    _, event = sized_event(5000, b"\n")
    server = serve(Reply(body=[event + rest_of_stream()], framing=framing))
    with pytest.raises(TogetherStreamError, match="larger than 1000 bytes"):
        stream(make_llm(server, max_event_bytes=1000, max_retries=0))


@PATHS
def test_cr_ended_tokens_arrive_as_they_are_sent(serve: Any, stream: Any) -> None:
    # Tokens written at 0, 0.5 and 1.0 s, then 3 s of silence before the end. A decoder that
    # waits for the byte after a CR hands each token over only with the next write.
    sent: list[float] = []

    def body() -> Iterator[bytes | float]:
        for index, pause in enumerate([0.5, 0.5, 3.0]):
            sent.append(time.monotonic())
            yield b"data: " + json.dumps(completion_chunk(f"t{index}")).encode() + b"\r\r"
            yield pause
        yield b"data: " + json.dumps(completion_chunk("", "eos")).encode() + b"\r\r"
        yield b"data: [DONE]\r\r"

    server = serve(Reply(body=body()))  # type: ignore[arg-type]
    got = [(token, at) for token, at in stream(make_llm(server, timeout=(2.0, 5.0))) if token]
    assert [token for token, _ in got] == ["t0", "t1", "t2"]
    next_write = [*sent[1:], sent[-1] + 3.0]
    late = [
        f"{token} {arrived - written:.3f} s after its write"
        for (token, arrived), written, following in zip(got, sent, next_write)
        if arrived >= following
    ]
    # Each token is in the caller's hands before the next write (0.5 s and 3 s of margin).
    assert late == []


@pytest.mark.parametrize(
    "bad",
    [b"data: " + b"x" * 1000 + b"\n\n", b"data: " + b"x" * 1000, b"data: \xff\n\n"],
    ids=["oversized", "oversized-unfinished", "invalid-utf8"],
)
def test_good_events_before_a_bad_one_in_the_same_read_come_first(bad: bytes) -> None:
    decoder = EventDecoder(max_event_bytes=1000)
    got = []
    with pytest.raises(TogetherStreamError):
        got.extend(decoder.feed(b"data: a\n\ndata: b\n\n" + bad))
    assert got == [("message", "a"), ("message", "b")]
    with pytest.raises(TogetherStreamError):  # and the stream stays failed
        decoder.feed(b"data: c\n\n")


@PATHS
@pytest.mark.parametrize(
    "bad",
    [b"data: " + b"x" * 1000 + b"\n\n", b'data: {"choices": [{"text": "\xff"}]}\n\n'],
    ids=["oversized", "invalid-utf8"],
)
def test_tokens_before_a_bad_event_in_the_same_write_are_kept(
    serve: Any, stream: Any, bad: bytes
) -> None:
    good = b"".join(p for p in sse_body(completion_chunk("Hal"), completion_chunk("f"), done=False))
    server = serve(Reply(body=[good + bad]))
    with pytest.raises(TogetherStreamError) as info:
        stream(make_llm(server, max_event_bytes=1000, max_retries=0))
    assert info.value.partial_text == "Half"
