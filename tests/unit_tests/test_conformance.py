"""Real Together recordings from ../shared/conformance/together, replayed over a socket."""

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_together_stream import TogetherBadRequestError, TogetherStreamError
from tests.conftest import make_llm, shared_path
from tests.scripted_server import Reply, sse_body


def recordings(pattern: str) -> list[Path]:
    return sorted(shared_path("together").glob(pattern))


def expected_from(datas: list[dict[str, Any]]) -> tuple[str, str | None, dict[str, Any] | None]:
    """What a completions client should see: choices[0].text (or delta.content), in order."""
    text, finish, usage = [], None, None
    for data in datas:
        choice = (data.get("choices") or [{}])[0]
        piece = choice.get("text")
        if piece is None:
            piece = (choice.get("delta") or {}).get("content") or ""
        text.append(piece)
        finish = choice.get("finish_reason") or data.get("finish_reason") or finish
        usage = data.get("usage") or usage
    return "".join(text), finish, usage


def data_lines(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]


def test_recordings_are_present() -> None:
    assert len(recordings("*.sse")) >= 10
    assert len(recordings("parsed-openai-sdk/*.json")) >= 8


@pytest.mark.parametrize("delivery", ["as recorded", "byte at a time"])
def test_complete_sse_recordings_replay(serve: Any, delivery: str) -> None:
    complete = [
        path for path in recordings("*.sse") if path.read_text().rstrip().endswith("[DONE]")
    ]
    assert complete
    for path in complete:
        wire = path.read_bytes()
        body: list[bytes | float] = (
            [wire] if delivery == "as recorded" else [wire[i : i + 1] for i in range(len(wire))]
        )
        server = serve(Reply(body=body))
        datas = [json.loads(line) for line in data_lines(path.read_text()) if line != "[DONE]"]
        text, finish, usage = expected_from(datas)
        result = make_llm(server).generate(["x"])
        generation = result.generations[0][0]
        assert generation.text == text, path.name
        info = generation.generation_info or {}
        assert info["finish_reason"] == finish, path.name
        assert info["usage"] == usage, path.name
        assert info["id"] == datas[-1]["id"], path.name


def test_excerpts_without_done_keep_their_text(serve: Any) -> None:
    # The excerpts lost their blank lines and their end; rebuilt as events they are
    # truncated streams: a typed error that keeps every token received.
    excerpts = [
        path for path in recordings("*.sse") if not path.read_text().rstrip().endswith("[DONE]")
    ]
    assert excerpts
    for path in excerpts:
        datas = []
        for line in data_lines(path.read_text()):
            try:
                datas.append(json.loads(line))
            except json.JSONDecodeError:
                break  # the excerpt's last line may be cut mid-JSON
        server = serve(Reply(body=sse_body(*datas, done=False)))
        with pytest.raises(TogetherStreamError) as info:
            make_llm(server).invoke("x")
        assert info.value.partial_text == expected_from(datas)[0], path.name


def test_parsed_sdk_recordings_replay(serve: Any) -> None:
    for path in recordings("parsed-openai-sdk/*.json"):
        recording = json.loads(path.read_text())
        datas = [item["__data__"] for item in recording["response"]["body"]]
        server = serve(Reply(body=sse_body(*datas)))
        text, finish, usage = expected_from(datas)
        generation = make_llm(server).generate(["x"]).generations[0][0]
        assert generation.text == text, path.name
        assert (generation.generation_info or {})["finish_reason"] == finish, path.name
        assert (generation.generation_info or {})["usage"] == usage, path.name


def test_recorded_error_bodies(serve: Any) -> None:
    for path in recordings("1[34]-error-*.json"):
        body = path.read_bytes()
        server = serve(
            Reply(
                status=400,
                headers=[("Content-Type", "application/json; charset=utf-8")],
                body=[body],
                framing="length",
            )
        )
        with pytest.raises(TogetherBadRequestError) as info:
            make_llm(server).invoke("x")
        document = json.loads(body)
        assert info.value.message == document["error"]["message"]
        assert info.value.error_type == document["error"]["type"]
        assert info.value.request_id == document["id"]
