"""Property tests through the whole `TogetherLLM.stream` path over a loopback socket.

One server and one `TogetherLLM` serve every example of a test, so these also show that no
input poisons the connection pool for the next call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_together_stream import TogetherError, TogetherLLM
from tests.hostile import FAST, Counter, checked_out
from tests.scripted_server import Reply, ScriptedServer, Seen, token_stream

_SETTINGS = settings(
    max_examples=60,
    deadline=None,  # real sockets; the per-call bound is the read timeout
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
_FRAMINGS = st.sampled_from(["chunked", "close", "length"])


class Box:
    """The reply the shared server sends next."""

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
            max_event_bytes=4096,
            **FAST,
        )
        yield box, llm


def _split(data: bytes, cuts: list[int]) -> list[bytes | float]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


_TOKENS = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6)


@_SETTINGS
@given(tokens=_TOKENS, cuts=st.lists(st.integers(min_value=0), max_size=40), framing=_FRAMINGS)
def test_any_split_of_a_valid_stream_gives_the_same_tokens(
    box_and_llm: tuple[Box, TogetherLLM], tokens: list[str], cuts: list[int], framing: Any
) -> None:
    box, llm = box_and_llm
    wire = b"".join(part for part in token_stream(tokens) if isinstance(part, bytes))
    box.reply = Reply(body=_split(wire, cuts), framing=framing)
    counter = Counter()
    assert list(llm.stream("x", config={"callbacks": [counter]})) == tokens
    assert counter.tokens == tokens
    assert counter.errors == []
    assert checked_out(llm) == 0


_FRAGMENTS = st.sampled_from(
    [
        b"data: ",
        b"data:",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"[DONE]",
        b": ping\n\n",
        b"event: error\n",
        b"retry: x\n",
        b"id: \x00\n",
        b'{"choices": [{"text": "a"}]}',
        b'{"choices": [{"text": "a", "finish_reason": "stop"}]}',
        b'{"error": {"message": "m"}}',
        b'{"error": "m"}',
        b'{"choices": [{"index": 3}]}',
        b'{"choices": [{"text": 5}]}',
        b'{"usage": {"prompt_tokens": -1e400}}',
        b'{"seed": 1e999}',
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"x" * 5000,
    ]
)
_BODIES = st.lists(st.one_of(st.binary(max_size=64), _FRAGMENTS), max_size=12)


@_SETTINGS
@given(pieces=_BODIES, framing=_FRAMINGS)
def test_arbitrary_bytes_from_the_server_raise_only_together_errors(
    box_and_llm: tuple[Box, TogetherLLM], pieces: list[bytes], framing: Any
) -> None:
    box, llm = box_and_llm
    box.reply = Reply(body=list(pieces), framing=framing)
    counter = Counter()
    caught: TogetherError | None = None
    text = ""
    try:
        text = "".join(llm.stream("x", config={"callbacks": [counter]}))
    except TogetherError as error:  # anything else fails the property
        caught = error
    if caught is not None:
        assert counter.errors == [caught]
        assert text_is_prefix(caught.partial_text, counter.tokens)
    else:
        assert counter.errors == []
        assert text == "".join(counter.tokens)
    assert checked_out(llm) == 0


def text_is_prefix(partial: str, tokens: list[str]) -> bool:
    """`partial_text` is exactly what reached the callbacks (plus a held final token)."""
    streamed = "".join(tokens)
    return partial.startswith(streamed)
