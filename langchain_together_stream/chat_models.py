"""Together AI chat models as a streaming LangChain chat model."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing, closing
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict

from langchain_together_stream._chat_chunks import ChatAssembler
from langchain_together_stream._chat_messages import to_wire_messages
from langchain_together_stream._client import TogetherClient
from langchain_together_stream._http import StreamRequest
from langchain_together_stream._params import ChatParams
from langchain_together_stream._stream import StreamReader
from langchain_together_stream._wire.chat import ChatDelta, parse_chat_chunk
from langchain_together_stream.errors import TogetherConfigurationError

# Call arguments LangChain uses for itself; never part of the request.
_NOT_SENT = frozenset({"ls_structured_output_format", "structured_output_format", "stream"})

_ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool
_StructuredOutputMethod = Literal["json_schema", "function_calling", "json_mode"]


class ChatTogether(TogetherClient, ChatParams, BaseChatModel):
    """Together AI chat models, streamed token by token, with tools, reasoning and usage.

    Every call, `invoke` and `batch` included, streams from Together's
    `/v1/chat/completions`, so each token reaches `on_llm_new_token` callbacks (and
    LangGraph's `stream_mode="messages"`) as it arrives, a failure keeps the text streamed
    before it on the exception (`partial_text`), and an early exit closes the connection so
    Together stops generating.

    Setup:
        Install `langchain-together-stream` and set `TOGETHER_API_KEY`.

        ```bash
        pip install -U langchain-together-stream
        export TOGETHER_API_KEY="your-api-key"
        ```

    Key init args — completion params:
        model: str
            Name of the Together model, e.g. `"meta-llama/Llama-3.3-70B-Instruct-Turbo"`.
        max_tokens: int | None
            Most tokens to generate (Together's default when unset).
        temperature: float | None
            Sampling temperature.
        stop: list[str] | None
            Sequences that end the generation (always sent as a list).
        reasoning: dict | None
            Together's reasoning switch for hybrid models, e.g. `{"enabled": True}`.
        reasoning_effort: str | None
            `"low"`, `"medium"` or `"high"` for models that take it (gpt-oss).

    Key init args — client params:
        api_key: SecretStr | None
            Together API key; read from `TOGETHER_API_KEY` when not given.
        base_url: str
            API root, from `TOGETHER_BASE_URL` or `https://api.together.xyz/v1`.
        timeout: float | tuple[float, float]
            Connect and idle-read timeouts in seconds.
        max_retries: int
            Retries before the first token (never after it).

    See the fields below for every parameter.

    Instantiate:
        ```python
        from langchain_together_stream import ChatTogether

        model = ChatTogether(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            max_tokens=256,
            temperature=0.7,
        )
        ```

    Invoke:
        ```python
        messages = [
            ("system", "Translate the user's sentence to French."),
            ("human", "I love programming."),
        ]
        model.invoke(messages)
        ```

        ```txt
        AIMessage(content="J'adore la programmation.", response_metadata={
            'finish_reason': 'stop', 'model_name': 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
            'model_provider': 'together', 'id': 'oghmHZ6-...', 'seed': 1431252537125239...},
            id='oghmHZ6-...', usage_metadata={'input_tokens': 45, 'output_tokens': 8,
            'total_tokens': 53, 'input_token_details': {'cache_read': 0}})
        ```

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="|")
        ```

        ```txt
        J|'|adore| la| programmation|.||
        ```

        The last chunk has `chunk_position="last"` and carries the metadata and usage, so
        the chunks add up to exactly the message `invoke` returns.

    Async:
        ```python
        await model.ainvoke(messages)

        async for chunk in model.astream(messages):
            print(chunk.text, end="|")
        ```

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="The city, e.g. Paris")


        model_with_tools = model.bind_tools([GetWeather])
        model_with_tools.invoke("What is the weather in Paris?").tool_calls
        ```

        ```txt
        [{'name': 'GetWeather', 'args': {'location': 'Paris'}, 'id': 'call_vq1o...',
          'type': 'tool_call'}]
        ```

        While streaming, calls arrive as `tool_call_chunks` keyed by `index`.

    Structured output:
        ```python
        class Joke(BaseModel):
            '''A joke to tell the user.'''

            setup: str
            punchline: str


        model.with_structured_output(Joke).invoke("Tell me a joke about cats")
        ```

        ```txt
        Joke(setup='Why was the cat sitting on the computer?', punchline='To keep an eye
        on the mouse!')
        ```

    Reasoning:
        ```python
        reasoner = ChatTogether(model="Qwen/Qwen3-235B-A22B", reasoning={"enabled": True})
        message = reasoner.invoke("What is 17 * 23?")
        message.additional_kwargs["reasoning_content"]  # also a "reasoning" content block
        ```

    Token usage:
        ```python
        model.invoke(messages).usage_metadata
        ```

        ```txt
        {'input_tokens': 45, 'output_tokens': 8, 'total_tokens': 53,
         'input_token_details': {'cache_read': 0}}
        ```

    Response metadata:
        ```python
        model.invoke(messages).response_metadata
        ```

        ```txt
        {'finish_reason': 'stop', 'model_name': 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
         'model_provider': 'together', 'id': 'oghmHZ6-...', 'seed': 14312525371252398000}
        ```
    """

    streaming: bool = False
    """Route `invoke` through LangChain's streaming callbacks path. Every call streams from
    Together and fires `on_llm_new_token` either way; this only changes LangChain's
    bookkeeping."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Return True: the model can be saved with `dumpd` and restored with `load`."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Return the import path used by LangChain serialization."""
        return ["langchain_together_stream", "chat_models"]

    @property
    def _llm_type(self) -> str:
        return "together-stream-chat"

    @property
    def _default_params(self) -> dict[str, Any]:
        return self.request_params()

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        # Everything that changes the output, so LangChain's cache keys are right.
        return {
            "model": self.model,
            "base_url": self.base_url,
            "stop": self.stop,
            **self._default_params,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "together"
        params["ls_model_name"] = kwargs.get("model", self.model)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        stop = stop if stop is not None else self.stop
        if stop:
            params["ls_stop"] = list(stop)
        return params

    def _start(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[StreamRequest, StreamReader[ChatDelta, ChatGenerationChunk]]:
        base = {"model": self.model, "messages": to_wire_messages(messages)}
        sent = {key: value for key, value in kwargs.items() if key not in _NOT_SENT}
        payload = self.request_payload(base, stop, sent)
        payload["stream"] = True
        # Some models report usage only when asked; asking costs nothing where it is sent
        # anyway.
        payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        assembler = ChatAssembler(
            model=payload["model"], with_logprobs=bool(payload.get("logprobs"))
        )
        request = self.build_request("chat/completions", payload)
        return request, StreamReader(parse_chat_chunk, assembler)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream one answer, firing `on_llm_new_token` before each chunk is yielded.

        Args:
            messages: The conversation.
            stop: Stop sequences for this call (replace the `stop` field).
            run_manager: LangChain's callback manager for this run.
            **kwargs: Further request parameters for this call (`tools`, `tool_choice`,
                `response_format`, sampling parameters, ...).

        Yields:
            One chunk per delta as it arrives; the last (`chunk_position="last"`) carries
            the response metadata and the usage.

        Raises:
            TogetherError: A typed error, with `partial_text` set to the text streamed before it.
        """
        request, reader = self._start(messages, stop, kwargs)
        chunks = reader.chunks(self._transport.stream_events(request))
        on_token = run_manager.on_llm_new_token if run_manager is not None else None
        with closing(chunks):
            for chunk in chunks:
                if on_token is not None:
                    on_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Stream one answer on the event loop, awaiting `on_llm_new_token` before each yield.

        Cancelling the task, breaking out or calling `aclose()` closes the connection at once.

        Args:
            messages: The conversation.
            stop: Stop sequences for this call (replace the `stop` field).
            run_manager: LangChain's async callback manager for this run.
            **kwargs: Further request parameters for this call.

        Yields:
            The same chunks as `_stream`.

        Raises:
            TogetherError: A typed error, with `partial_text` set to the text streamed before it.
        """
        request, reader = self._start(messages, stop, kwargs)
        chunks = reader.achunks(self._async_transport.stream_events(request))
        on_token = run_manager.on_llm_new_token if run_manager is not None else None
        async with aclosing(chunks):
            async for chunk in chunks:
                if on_token is not None:
                    await on_token(chunk.text, chunk=chunk)
                yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Stream one answer and add it up into one message.

        Args:
            messages: The conversation.
            stop: Stop sequences for this call.
            run_manager: LangChain's callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            One generation whose message is the sum of the streamed chunks.
        """
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Stream one answer on the event loop and add it up into one message.

        Args:
            messages: The conversation.
            stop: Stop sequences for this call.
            run_manager: LangChain's async callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            The same result as `_generate`.
        """
        chunks = [chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)]
        # Summing is CPU work on chunks already in memory: no thread hop needed.
        return generate_from_stream(iter(chunks))

    def bind_tools(
        self,
        tools: Sequence[_ToolLike],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the model may call, in OpenAI's function format.

        Args:
            tools: Pydantic models, TypedDicts, functions, `BaseTool`s or OpenAI tool dicts.
            tool_choice: Which tool the model must call:
                - a tool's name: that tool (sent as `{"type": "function", "function":
                  {"name": ...}}`);
                - `"auto"` (the model decides) or `"none"` (no tool), sent as they are;
                - `"any"`, `"required"` or `True`: some tool. With exactly one tool bound
                  this is sent as the object naming it, which Together honours. With several,
                  `"auto"` is sent, because Together has been reported to reject
                  `"required"` ("Invalid request"); the call is then likely but not forced;
                - a dict: sent as it is;
                - `None` or `False`: nothing sent (Together's default, `"auto"`).
            strict: Ask for arguments that follow the schema exactly (sent per tool).
            parallel_tool_calls: Whether the model may call several tools at once.
            **kwargs: Further request parameters to bind.

        Returns:
            The model with the tools bound.

        Raises:
            TogetherConfigurationError: `tool_choice` names a tool that is not bound.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        choice = _tool_choice(tool_choice, [tool["function"]["name"] for tool in formatted])
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: _StructuredOutputMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A model that answers with data of the given shape.

        Args:
            schema: A pydantic class (answers are instances of it), a TypedDict, or a JSON
                schema / OpenAI tool dict (answers are dicts). Optional for `json_mode`.
            method: How the shape is asked for:
                - `"json_schema"` (default): `response_format={"type": "json_schema",
                  "json_schema": {"name", "schema"}}`, Together's structured outputs;
                - `"function_calling"`: the schema bound as the one tool, and forced;
                - `"json_mode"`: `response_format={"type": "json_object"}`; the prompt
                  must describe the shape.
            include_raw: Return `{"raw": AIMessage, "parsed": ..., "parsing_error": ...}`
                instead of raising on a parsing error.
            strict: Ask Together to follow the schema exactly.
            **kwargs: Not supported; raises when given.

        Returns:
            A runnable producing the parsed answer (or the dict above).

        Raises:
            TogetherConfigurationError: An unknown method, unknown arguments, or no schema
                where one is required.
        """
        if kwargs:
            msg = f"Unsupported arguments for with_structured_output: {sorted(kwargs)}"
            raise TogetherConfigurationError(msg)
        if method not in ("json_schema", "function_calling", "json_mode"):
            msg = (
                f"Unknown method {method!r}: use 'json_schema', 'function_calling' or 'json_mode'."
            )
            raise TogetherConfigurationError(msg)
        pydantic_class = (
            schema if isinstance(schema, type) and is_basemodel_subclass(schema) else None
        )
        output_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        bound: Runnable[LanguageModelInput, Any]
        parser: Runnable[Any, Any]
        if method == "json_mode":
            bound = self.bind(
                response_format={"type": "json_object"},
                ls_structured_output_format=output_format,
            )
            parser = _json_parser(pydantic_class)
        elif schema is None:
            msg = f"with_structured_output(method={method!r}) needs a schema."
            raise TogetherConfigurationError(msg)
        elif method == "json_schema":
            json_schema = convert_to_json_schema(schema, strict=strict)
            wrapper: dict[str, Any] = {
                "name": _schema_name(json_schema.get("title")),
                "schema": json_schema,
            }
            if strict is not None:
                wrapper["strict"] = strict
            bound = self.bind(
                response_format={"type": "json_schema", "json_schema": wrapper},
                ls_structured_output_format=output_format,
            )
            parser = _json_parser(pydantic_class)
        else:
            tool_name = convert_to_openai_tool(schema)["function"]["name"]
            bound = self.bind_tools(
                [schema],
                tool_choice=tool_name,
                strict=strict,
                parallel_tool_calls=False,
                ls_structured_output_format=output_format,
            )
            parser = (
                PydanticToolsParser(tools=[pydantic_class], first_tool_only=True)
                if pydantic_class is not None
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
        if not include_raw:
            return bound | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=bound) | parse.with_fallbacks(
            [no_parse], exception_key="parsing_error"
        )


def _schema_name(title: object) -> str:
    # OpenAI-compatible servers take [A-Za-z0-9_-]{1,64} here; a JSON schema title is free text.
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", title if isinstance(title, str) else "").strip("_")
    return name[:64] or "output"


def _json_parser(pydantic_class: type | None) -> Runnable[Any, Any]:
    if pydantic_class is not None:
        return PydanticOutputParser(pydantic_object=pydantic_class)
    return JsonOutputParser()


def _tool_choice(
    choice: dict[str, Any] | str | bool | None, names: list[str]
) -> dict[str, Any] | str | None:
    if choice is None or choice is False:
        return None
    if isinstance(choice, dict):
        return choice
    if choice in ("auto", "none"):
        return choice
    if choice is True or choice in ("any", "required"):
        if len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        return "auto"
    if isinstance(choice, str) and choice in names:
        return {"type": "function", "function": {"name": choice}}
    msg = f"tool_choice={choice!r} names no bound tool; bound: {names}."
    raise TogetherConfigurationError(msg)
