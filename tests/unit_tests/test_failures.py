"""How TogetherLLM fails, over real loopback sockets: one test body per behaviour, run through
the sync and the async entry points (the `path` fixture in tests/conftest.py)."""

import json
import socket
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherBadRequestError,
    TogetherConnectionError,
    TogetherError,
    TogetherLLM,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    TogetherTimeoutError,
)
from tests.conftest import make_llm
from tests.hostile import TEXT, TOKENS, Path
from tests.llm_helpers import AsyncRecorder, Recorder, json_error
from tests.scripted_server import Reply, completion_chunk, sse_body, token_stream


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, TogetherBadRequestError),
        (401, TogetherAuthenticationError),
        (402, TogetherAPIError),
        (403, TogetherAuthenticationError),
        (404, TogetherBadRequestError),
        (422, TogetherBadRequestError),
        (429, TogetherRateLimitError),
        (500, TogetherServerError),
        (502, TogetherServerError),
        (503, TogetherServerError),
        (504, TogetherServerError),
    ],
)
def test_status_errors_are_typed_with_togethers_message(
    serve: Any, path: Path, status: int, cls: type[TogetherAPIError]
) -> None:
    server = serve(json_error(status, "it went wrong", "some_type"))
    # The async path reports to an async handler, as an async application would register.
    recorder = AsyncRecorder() if path.name == "async" else Recorder()
    with pytest.raises(cls) as info:
        path.invoke(make_llm(server, max_retries=0), config={"callbacks": [recorder]})
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.error_type, error.request_id) == (status, "some_type", "req-1")
    assert "it went wrong" in str(error)
    assert error.partial_text == ""
    assert [event[0] for event in recorder.events].count("error") == 1


def test_named_error_event_mid_stream(serve: Any, path: Path) -> None:
    body = [
        *sse_body(completion_chunk("Hi"), done=False),
        b'event: error\ndata: {"message": "bad"}\n\n',
    ]
    server = serve(Reply(body=body))
    with pytest.raises(TogetherStreamError) as info:
        path.stream(make_llm(server))
    assert info.value.partial_text == "Hi"


def test_truncated_stream_keeps_partial_text(serve: Any, path: Path) -> None:
    server = serve(Reply(body=sse_body(completion_chunk("Hal"), completion_chunk("f"), done=False)))
    with pytest.raises(TogetherStreamError, match="without \\[DONE\\]") as info:
        path.invoke(make_llm(server))
    assert info.value.partial_text == "Half"


def test_finish_reason_without_done_is_complete(serve: Any, path: Path) -> None:
    server = serve(
        Reply(body=sse_body(completion_chunk("a"), completion_chunk("b", "stop"), done=False))
    )
    assert path.invoke(make_llm(server)) == "ab"


def test_malformed_json_mid_stream(serve: Any, path: Path) -> None:
    body = [*sse_body(completion_chunk("ok"), done=False), b'data: {"choices": [\n\n']
    server = serve(Reply(body=body))
    with pytest.raises(TogetherStreamError, match="not a valid completion chunk") as info:
        path.invoke(make_llm(server))
    assert info.value.partial_text == "ok"


@pytest.mark.parametrize(
    "body",
    [json.dumps({"choices": [{"text": "whole answer"}]}).encode(), b"{}"],
    ids=["completion", "empty-object"],
)
def test_non_sse_200_is_a_stream_error(serve: Any, path: Path, body: bytes) -> None:
    server = serve(
        Reply(headers=[("Content-Type", "application/json")], body=[body], framing="length")
    )
    with pytest.raises(TogetherStreamError, match="application/json"):
        path.invoke(make_llm(server))


def test_html_and_empty_error_bodies(serve: Any, path: Path) -> None:
    server = serve(
        Reply(
            status=502,
            headers=[("Content-Type", "text/html")],
            body=[b"<html><h1>Bad Gateway</h1></html>"],
            framing="length",
        ),
        Reply(status=503, headers=[], body=[], framing="length"),
    )
    llm = make_llm(server, max_retries=0)
    with pytest.raises(TogetherServerError, match="502"):
        path.invoke(llm)
    with pytest.raises(TogetherServerError, match="503"):
        path.invoke(llm)


@pytest.mark.parametrize("location", ["http://127.0.0.1:9/steal", "http://127.0.0.1:9/x"])
def test_redirect_is_not_followed(serve: Any, path: Path, location: str) -> None:
    server = serve(Reply(status=307, headers=[("Location", location)], body=[], framing="length"))
    with pytest.raises(TogetherAPIError, match="redirect") as info:
        path.invoke(make_llm(server))
    assert info.value.status_code == 307
    assert len(server.seen) == 1


def test_stall_after_tokens_times_out_with_partial_text(serve: Any, path: Path) -> None:
    server = serve(
        Reply(body=[*sse_body(completion_chunk("par"), completion_chunk("tial"), done=False), 30.0])
    )
    with pytest.raises(TogetherTimeoutError) as info:
        path.invoke(make_llm(server, timeout=(2.0, 0.3), max_retries=3))
    assert info.value.partial_text == "partial"
    assert len(server.seen) == 1


def test_stall_before_the_first_byte_is_retried_then_raised(serve: Any, path: Path) -> None:
    server = serve(Reply(body=[30.0]))
    with pytest.raises(TogetherTimeoutError):
        path.invoke(make_llm(server, timeout=(2.0, 0.2), max_retries=1))
    assert len(server.seen) == 2


def test_reset_mid_stream_is_a_connection_error(serve: Any, path: Path) -> None:
    server = serve(Reply(body=sse_body(completion_chunk("a"), done=False), reset=True))
    with pytest.raises(TogetherConnectionError) as info:
        path.invoke(make_llm(server))
    assert info.value.partial_text == "a"


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = TogetherLLM(model="m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(TogetherConnectionError):
        llm.invoke("x")


def test_every_failure_is_a_together_error_and_calls_on_llm_error_once(
    serve: Any, path: Path
) -> None:
    server = serve(Reply(body=[b"data: \xff\xfe\n\n"]))
    recorder = Recorder()
    with pytest.raises(TogetherError):
        path.invoke(make_llm(server), config={"callbacks": [recorder]})
    assert recorder.kinds().count("error") == 1


def test_events_after_done_are_ignored_and_reading_stops(serve: Any, path: Path) -> None:
    endless = [b'data: {"choices": [{"text": "more"}]}\n\n'] * 50 + [10.0]
    server = serve(Reply(body=[*token_stream(TOKENS), *endless]))
    assert path.invoke(make_llm(server)) == TEXT
    assert server.wait_disconnect(timeout=2.0) is not None  # the client stopped reading


def test_a_stall_after_done_is_not_an_error(serve: Any, path: Path) -> None:
    server = serve(Reply(body=[*token_stream(TOKENS), 10.0]))
    assert path.invoke(make_llm(server, timeout=(2.0, 0.2))) == TEXT
