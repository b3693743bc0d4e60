"""The seam every model builds on: parameters derived from fields, a generic stream reader."""

import asyncio
import json
from collections.abc import AsyncGenerator, Generator

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.load import dumpd
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict

from langchain_together_stream import TogetherLLM, TogetherStreamError
from langchain_together_stream._client import TogetherClient
from langchain_together_stream._params import CompletionParams, SamplingParams
from langchain_together_stream._sse import SSEEvent
from langchain_together_stream._stream import StreamReader

# Fields that configure the client or LangChain, or are sent in a shape of their own.
_NOT_SAMPLING = {"stop", "model_kwargs", "endpoint", "streaming"}


def test_every_parameter_field_is_sent_and_nothing_else() -> None:
    langchain_fields = (
        set(TogetherLLM.model_fields)
        - set(TogetherClient.model_fields)
        - set(CompletionParams.model_fields)
        - {"endpoint", "streaming"}
    )
    assert langchain_fields == {
        "name", "cache", "verbose", "callbacks", "tags", "metadata", "custom_get_token_ids"
    }  # fmt: skip
    parameter_fields = set(CompletionParams.model_fields) - _NOT_SAMPLING
    assert set(TogetherLLM.sent_params()) == parameter_fields
    # The shared ones are what a chat model gets too; `echo` is completions-only.
    assert set(CompletionParams.sent_params()) - set(SamplingParams.sent_params()) == {"echo"}


def test_the_parameter_list_follows_the_fields_of_a_subclass() -> None:
    class WithNewParameter(CompletionParams):
        brand_new: float | None = None  # not marked SENT: a setting, not a parameter

    assert WithNewParameter.sent_params() == CompletionParams.sent_params()


# --- a reader over another assembler: what a chat model plugs in ----------------------------


class _Upper:
    """A toy assembler: upper-cases each event's data, and says 'END' at [DONE]."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @property
    def partial_text(self) -> str:
        return "".join(self.seen)

    def add(self, chunk: str) -> str | None:
        self.seen.append(chunk)
        return chunk.upper() or None

    def finish(self, *, saw_done: bool) -> str | None:
        if not saw_done:
            raise TogetherStreamError("no [DONE]")
        return "END"


def _parse(event: str, data: str) -> str:
    if event == "error":
        raise TogetherStreamError(data)
    return data


def _events(*pairs: tuple[str, str]) -> Generator[SSEEvent, None, None]:
    yield from (SSEEvent(event, data) for event, data in pairs)


def test_a_reader_yields_what_its_assembler_makes() -> None:
    reader = StreamReader(_parse, _Upper())
    events = _events(("message", "a"), ("message", ""), ("message", "b"), ("message", "[DONE]"))
    assert list(reader.chunks(events)) == ["A", "B", "END"]


def test_a_reader_sets_the_assemblers_partial_text_on_errors() -> None:
    reader = StreamReader(_parse, _Upper())
    events = _events(("message", "a"), ("message", "b"), ("error", "boom"))
    with pytest.raises(TogetherStreamError, match="boom") as info:
        list(reader.chunks(events))
    assert info.value.partial_text == "ab"


async def _aevents(*pairs: tuple[str, str]) -> AsyncGenerator[SSEEvent, None]:
    for event, data in pairs:
        yield SSEEvent(event, data)


def test_the_async_reader_asks_the_assembler_to_finish_a_cut_stream() -> None:
    reader = StreamReader(_parse, _Upper())
    seen: list[str] = []

    async def read() -> None:
        async for chunk in reader.achunks(_aevents(("message", "a"))):
            seen.append(chunk)  # noqa: PERF401  (kept before the error, unlike a comprehension)

    with pytest.raises(TogetherStreamError, match=r"no \[DONE\]") as info:
        asyncio.run(read())
    assert (seen, info.value.partial_text) == (["A"], "a")


# --- a chat model on the seam: the mixins come first ------------------------------------------


class _Chat(TogetherClient, SamplingParams, BaseChatModel):
    """The shape `ChatTogether` takes; only what these tests need."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    @property
    def _llm_type(self) -> str:
        return "toy-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    def _generate(self, *args: object, **kwargs: object) -> ChatResult:
        raise NotImplementedError


def test_a_chat_model_on_the_seam_keeps_the_key_a_secret_reference() -> None:
    chat = _Chat(model="m", api_key="sk-chat-SECRET", temperature=0.5, stop="END")
    dumped = dumpd(chat)
    assert dumped["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["TOGETHER_API_KEY"]}
    assert "sk-chat-SECRET" not in json.dumps(dumped)
    payload = chat.request_payload({"model": chat.model, "messages": []}, None, {"top_k": 5})
    assert payload == {
        "model": "m",
        "messages": [],
        "temperature": 0.5,
        "top_k": 5,
        "stop": ["END"],
    }
    request = chat.build_request("chat/completions", payload)
    assert request.url == "https://api.together.xyz/v1/chat/completions"
    assert json.loads(request.body) == payload


def test_a_model_listing_langchain_first_is_refused() -> None:
    with pytest.raises(TypeError, match=r"list TogetherClient .* before"):

        class _Wrong(BaseChatModel, TogetherClient, SamplingParams):
            pass
