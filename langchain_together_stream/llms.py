"""Together AI completions as a streaming LangChain LLM."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from contextlib import aclosing, closing
from contextvars import ContextVar
from typing import Any, Literal, TypeVar, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ContextThreadPoolExecutor, get_config_list
from pydantic import (
    ConfigDict,
)

from langchain_together_stream._chunks import Aggregate, GenerationAssembler, aggregate
from langchain_together_stream._client import TogetherClient
from langchain_together_stream._http import StreamRequest
from langchain_together_stream._params import CompletionParams
from langchain_together_stream._runs import FAST_STREAM, astream_run, stream_run
from langchain_together_stream._stream import StreamReader
from langchain_together_stream._wire.completions import StreamChunk, parse_chunk

_STREAM_FLAG = {"completions": "stream", "inference": "stream_tokens"}
_T = TypeVar("_T")

# The LLM a `generate`/`agenerate` call is running on, and what that call sends beyond the
# fields. Context-local, so concurrent calls on other threads or tasks never see it.
_CALL: ContextVar[tuple[object, dict[str, Any]] | None] = ContextVar(
    "together_stream_call", default=None
)


class TogetherLLM(TogetherClient, CompletionParams, LLM):
    """Together AI completion models, streamed token by token.

    Every call, `invoke` and `batch` included, streams from Together's completions endpoint,
    so each token reaches `on_llm_new_token` callbacks as it arrives, long generations are
    bounded by an idle timeout instead of a total deadline, and a failure keeps the text
    streamed before it on the exception (`partial_text`).

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
        from langchain_together_stream import TogetherLLM

        llm = TogetherLLM(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            max_tokens=64,
            temperature=0.7,
        )
        ```

    Invoke:
        ```python
        llm.invoke("Alan Turing was")
        ```

        ```txt
        ' a British mathematician and computer scientist who ...'
        ```

    Stream:
        ```python
        for token in llm.stream("Alan Turing was"):
            print(token, end="|")
        ```

        ```txt
         a| British| mathematician| and| computer| scientist|...
        ```

    Async:
        ```python
        await llm.ainvoke("Alan Turing was")

        async for token in llm.astream("Alan Turing was"):
            print(token, end="|")
        ```

    Metadata:
        ```python
        result = llm.generate(["Alan Turing was"])
        result.generations[0][0].generation_info
        ```

        ```txt
        {'finish_reason': 'length', 'usage': {'prompt_tokens': 5, 'completion_tokens': 64,
         'total_tokens': 69}, 'model': 'meta-llama/...', 'id': 'oBUszH9-...', 'seed': ...}
        ```
    """

    # The client settings (`model`, `api_key`, `base_url`, `timeout`, `deadline`,
    # `max_retries`, ...) are `TogetherClient`'s, the sampling parameters `CompletionParams`'.
    endpoint: Literal["completions", "inference"] = "completions"
    """`"completions"` (with `stream: true`), or Together's legacy `"inference"` endpoint
    (with `stream_tokens: true`), which lives at the host root: use it with
    `base_url="https://api.together.xyz"`."""
    streaming: bool = True
    """Accepted for compatibility with other integrations; every call streams."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Return True: the LLM can be saved with `dumpd` and restored with `load`."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Return the import path used by LangChain serialization."""
        return ["langchain_together_stream", "llms"]

    @property
    def _llm_type(self) -> str:
        return "together-stream"

    @property
    def _default_params(self) -> dict[str, Any]:
        return self.request_params()

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        # Everything that changes the output, so LangChain's cache keys are right.
        return {
            "model": self.model,
            "base_url": self.base_url,
            "endpoint": self.endpoint,
            "stop": self.stop,
            **self._default_params,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "together"
        params["ls_model_name"] = self.model
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        return params

    def _stream_request(
        self, prompt: str, stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> StreamRequest:
        payload = self.request_payload({"model": self.model, "prompt": prompt}, stop, kwargs)
        payload.pop("stream", None)
        payload.pop("stream_tokens", None)
        payload[_STREAM_FLAG[self.endpoint]] = True
        return self.build_request(self.endpoint, payload)

    def _reader(self, kwargs: Mapping[str, Any]) -> StreamReader[StreamChunk, GenerationChunk]:
        logprobs = bool(kwargs.get("logprobs", self.logprobs))
        return StreamReader(
            parse_chunk, GenerationAssembler(model=self.model, with_logprobs=logprobs)
        )

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """Stream the completion's text token by token, as `BaseLLM.stream` does.

        The callbacks, tracing and errors are langchain-core's; only the running total
        passed to `on_llm_end` is added up in linear time (see `_runs`).

        Args:
            input: The prompt, in any form LangChain accepts.
            config: The run's config (callbacks, tags, metadata, ...).
            stop: Stop sequences for this call.
            **kwargs: Further request parameters for this call.

        Returns:
            An iterator of text tokens; closing it closes the connection.
        """
        if FAST_STREAM:
            return stream_run(self, input, config, stop, kwargs)
        return super().stream(input, config, stop=stop, **kwargs)

    def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Stream the completion's text on the event loop, as `BaseLLM.astream` does.

        Args:
            input: The prompt, in any form LangChain accepts.
            config: The run's config (callbacks, tags, metadata, ...).
            stop: Stop sequences for this call.
            **kwargs: Further request parameters for this call.

        Returns:
            An async iterator of text tokens; closing or cancelling it closes the connection.
        """
        if FAST_STREAM:
            return astream_run(self, input, config, stop, kwargs)
        return super().astream(input, config, stop=stop, **kwargs)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Run every input as its own `invoke` on a thread pool, results in input order.

        `BaseLLM.batch` would send one request at a time and route every input's tokens to
        the first input's callbacks; here each input is its own run with its own callbacks,
        and up to `max_concurrency` (LangChain's default thread pool size when unset) stream
        at once.

        Args:
            inputs: The prompts, in any form LangChain accepts.
            config: One config for all inputs, or one per input.
            return_exceptions: Return each failed input's exception in its place instead of
                raising the first one.
            **kwargs: Further request parameters for every call.

        Returns:
            Each input's completion text (or exception), in order.
        """
        return Runnable.batch(self, inputs, config, return_exceptions=return_exceptions, **kwargs)

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Run every input as its own `ainvoke`, up to `max_concurrency` at once, in order.

        On the first failure (without `return_exceptions`) the other inputs are cancelled,
        closing their connections, as `agenerate` does.

        Args:
            inputs: The prompts, in any form LangChain accepts.
            config: One config for all inputs, or one per input.
            return_exceptions: Return each failed input's exception in its place instead of
                raising the first one.
            **kwargs: Further request parameters for every call.

        Returns:
            Each input's completion text (or exception), in order.
        """
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        limit = asyncio.Semaphore(configs[0].get("max_concurrency") or len(inputs))

        async def one(input: LanguageModelInput, config: RunnableConfig) -> Any:
            async with limit:
                try:
                    return await self.ainvoke(input, config, **kwargs)
                except Exception as error:
                    if return_exceptions:
                        return error
                    raise

        # Not `Runnable.abatch`: its plain `gather` leaves the other inputs streaming,
        # unobserved, after the first failure.
        return await _gather_or_cancel(
            [one(input, config) for input, config in zip(inputs, configs, strict=True)]
        )

    def asdict(self) -> dict[str, Any]:
        """The LLM's identifying parameters; during a call, with what that call sends.

        LangChain builds the cache key of `invoke`, `generate`, `batch` and their async forms
        from this dictionary and the call's `stop` alone. During a call it also holds the
        call's request parameters, which replace the fields' as in the request, and the stop
        sequences actually sent (`stop_sent`: the call's, or else the field's), so two calls
        that send different requests never share a cache entry.

        Returns:
            The parameters, and `_type`.
        """
        params = super().asdict()
        call = _CALL.get()
        if call is not None and call[0] is self:
            params.update(call[1])
        return params

    def generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        callbacks: Callbacks | list[Callbacks] | None = None,
        *,
        tags: list[str] | list[list[str]] | None = None,
        metadata: dict[str, Any] | list[dict[str, Any]] | None = None,
        run_name: str | list[str] | None = None,
        run_id: uuid.UUID | list[uuid.UUID | None] | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """`BaseLLM.generate`, with cache keys that cover everything the call sends.

        Args:
            prompts: The prompts.
            stop: Stop sequences for this call.
            callbacks: Callbacks, one for all prompts or a list with one per prompt.
            tags: Tags, for all prompts or one list per prompt.
            metadata: Metadata, for all prompts or one per prompt.
            run_name: Run names, for all prompts or one per prompt.
            run_id: Run ids, one per prompt.
            **kwargs: Further request parameters for this call.

        Returns:
            One generation per prompt, in order.
        """
        token = _CALL.set((self, self._sent_beyond_fields(stop, kwargs)))
        try:
            return super().generate(
                prompts,
                stop,
                callbacks,
                tags=tags,
                metadata=metadata,
                run_name=run_name,
                run_id=run_id,
                **kwargs,
            )
        finally:
            _CALL.reset(token)

    async def agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        callbacks: Callbacks | list[Callbacks] | None = None,
        *,
        tags: list[str] | list[list[str]] | None = None,
        metadata: dict[str, Any] | list[dict[str, Any]] | None = None,
        run_name: str | list[str] | None = None,
        run_id: uuid.UUID | list[uuid.UUID | None] | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """`BaseLLM.agenerate`, with cache keys that cover everything the call sends.

        Args:
            prompts: The prompts.
            stop: Stop sequences for this call.
            callbacks: Callbacks, one for all prompts or a list with one per prompt.
            tags: Tags, for all prompts or one list per prompt.
            metadata: Metadata, for all prompts or one per prompt.
            run_name: Run names, for all prompts or one per prompt.
            run_id: Run ids, one per prompt.
            **kwargs: Further request parameters for this call.

        Returns:
            One generation per prompt, in order.
        """
        token = _CALL.set((self, self._sent_beyond_fields(stop, kwargs)))
        try:
            return await super().agenerate(
                prompts,
                stop,
                callbacks,
                tags=tags,
                metadata=metadata,
                run_name=run_name,
                run_id=run_id,
                **kwargs,
            )
        finally:
            _CALL.reset(token)

    def _sent_beyond_fields(
        self, stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        # LangChain writes the call's `stop` over the field's in the key, so the stop
        # sequences the request carries (as `_stream_request` picks them) get a key of their own.
        return {**kwargs, "stop_sent": stop if stop is not None else self.stop}

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        """Stream one completion, firing `on_llm_new_token` before each chunk is yielded.

        Args:
            prompt: The prompt.
            stop: Stop sequences for this call (replace the `stop` field).
            run_manager: LangChain's callback manager for this run.
            **kwargs: Further request parameters for this call.

        Yields:
            One chunk per token as it arrives; the last carries `finish_reason`, `usage`,
            `model`, `id` and `seed` in `generation_info`.

        Raises:
            TogetherError: A typed error, with `partial_text` set to the text streamed before it.
        """
        request = self._stream_request(prompt, stop, kwargs)
        chunks = self._reader(kwargs).chunks(self._transport.stream_events(request))
        on_token = run_manager.on_llm_new_token if run_manager is not None else None
        with closing(chunks):
            for chunk in chunks:
                if on_token is not None:
                    on_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        """Stream one completion on the event loop, awaiting `on_llm_new_token` before each yield.

        Cancelling the task, breaking out or calling `aclose()` closes the connection at once.

        Args:
            prompt: The prompt.
            stop: Stop sequences for this call (replace the `stop` field).
            run_manager: LangChain's async callback manager for this run.
            **kwargs: Further request parameters for this call.

        Yields:
            One chunk per token as it arrives; the last carries the metadata, as `_stream`.

        Raises:
            TogetherError: A typed error, with `partial_text` set to the text streamed before it.
        """
        request = self._stream_request(prompt, stop, kwargs)
        chunks = self._reader(kwargs).achunks(self._async_transport.stream_events(request))
        on_token = run_manager.on_llm_new_token if run_manager is not None else None
        async with aclosing(chunks):
            async for chunk in chunks:
                if on_token is not None:
                    await on_token(chunk.text, chunk=chunk)
                yield chunk

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """Stream one completion and return its text.

        Args:
            prompt: The prompt.
            stop: Stop sequences for this call.
            run_manager: LangChain's callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            The generated text.
        """
        return aggregate(self._stream(prompt, stop, run_manager, **kwargs)).text

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Stream each prompt's completion, all at once on threads, and collect the results.

        Every prompt streams on its own thread (at most `max_connections` at a time), as
        `_agenerate` streams them all on the event loop; on the first failure the other
        streams are closed at their next chunk and that failure is raised.

        Args:
            prompts: The prompts.
            stop: Stop sequences for this call.
            run_manager: LangChain's callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            One generation per prompt with `generation_info`, and `llm_output` with the
            summed `token_usage` and the `model_name`.
        """
        if len(prompts) == 1:
            generations = [aggregate(self._stream(prompts[0], stop, run_manager, **kwargs))]
        else:
            generations = _collect_on_threads(
                lambda prompt, abandoned: self._collect(
                    prompt, stop, run_manager, kwargs, abandoned
                ),
                prompts,
                max_workers=self.max_connections,
            )
        return _llm_result(generations, model=self.model)

    def _collect(
        self,
        prompt: str,
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
        abandoned: threading.Event,
    ) -> GenerationChunk:
        total = Aggregate()
        stream = cast(
            "Generator[GenerationChunk, None, None]",
            self._stream(prompt, stop, run_manager, **kwargs),
        )
        with closing(stream) as chunks:
            for chunk in chunks:
                if abandoned.is_set():  # another prompt failed: close this stream now
                    raise _AbandonedError
                total.add(chunk)
        return total.result()

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        """Stream one completion on the event loop and return its text.

        Args:
            prompt: The prompt.
            stop: Stop sequences for this call.
            run_manager: LangChain's async callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            The generated text.
        """
        return (await self._acollect(prompt, stop, run_manager, kwargs)).text

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Stream every prompt's completion concurrently and collect text, metadata and usage.

        Args:
            prompts: The prompts.
            stop: Stop sequences for this call.
            run_manager: LangChain's async callback manager for this run.
            **kwargs: Further request parameters for this call.

        Returns:
            The same result as `_generate`: one generation per prompt, in order.
        """
        generations = await _gather_or_cancel(
            [self._acollect(prompt, stop, run_manager, kwargs) for prompt in prompts]
        )
        return _llm_result(generations, model=self.model)

    async def _acollect(
        self,
        prompt: str,
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
    ) -> GenerationChunk:
        # Added up as the chunks arrive, as `aggregate` does on the sync path: holding every
        # chunk of a long answer first would cost memory in proportion to its token count.
        total = Aggregate()
        async for chunk in self._astream(prompt, stop, run_manager, **kwargs):
            total.add(chunk)
        return total.result()


async def _gather_or_cancel(awaitables: list[Awaitable[_T]]) -> list[_T]:
    # On the first failure the other streams are cancelled, closing their connections,
    # instead of running on unobserved as plain `gather` would leave them.
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _AbandonedError(Exception):
    """Ends a prompt's stream early because another prompt of the same call failed."""


def _collect_on_threads(
    collect: Callable[[str, threading.Event], GenerationChunk],
    prompts: list[str],
    *,
    max_workers: int,
) -> list[GenerationChunk]:
    abandoned = threading.Event()
    # The executor copies each caller's context, so tracing and callbacks see the run's own.
    with ContextThreadPoolExecutor(max_workers=min(len(prompts), max_workers)) as pool:
        futures: list[Future[GenerationChunk]] = [
            pool.submit(collect, prompt, abandoned) for prompt in prompts
        ]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:
            abandoned.set()
            for future in pending:
                future.cancel()
    for future in futures:
        error = None if future.cancelled() else future.exception()
        if error is not None and not isinstance(error, _AbandonedError):
            raise error
    return [future.result() for future in futures]


def _llm_result(chunks: list[GenerationChunk], *, model: str) -> LLMResult:
    usage: dict[str, int] = {}
    for chunk in chunks:
        for key, value in ((chunk.generation_info or {}).get("usage") or {}).items():
            if isinstance(value, int):
                usage[key] = usage.get(key, 0) + value
    generations = [
        [Generation(text=chunk.text, generation_info=chunk.generation_info)] for chunk in chunks
    ]
    return LLMResult(
        generations=generations, llm_output={"token_usage": usage, "model_name": model}
    )
