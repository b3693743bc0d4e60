import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_together_stream._sse import EventFramer, SSEEvent, iter_events
from langchain_together_stream.errors import TogetherStreamError
from tests.conftest import shared_path

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


def _events_or_error(chunks: list[bytes]) -> list[tuple[str, str]] | str:
    try:
        return parse(chunks)
    except TogetherStreamError as error:
        return str(error)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6))
def test_one_event_per_read_gives_what_one_read_of_it_all_gives(values: list[bytes]) -> None:
    # Reads of one whole `data:` line each take a shortcut past the framer; any bytes (CR, LF,
    # invalid UTF-8 included) must give the same events, or the same error, as the framer.
    reads = [b"data:" + value + b"\n\n" for value in values]
    assert _events_or_error(reads) == _events_or_error([b"".join(reads)])
