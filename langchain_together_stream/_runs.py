"""`stream` and `astream` as langchain-core runs them, with the answer added up in linear time.

langchain-core's `BaseLLM.stream` adds each chunk to the running total with `generation +=
chunk`, which copies the whole text every time: quadratic in the answer's length (about 2 µs
a token at 20,000 tokens, 110 µs at 200,000). These functions are that method line for line,
with the total kept by `Aggregate` instead. They use langchain-core internals, so they are
used only with the langchain-core versions they were checked against (`FAST_STREAM`); with
any other version `TogetherLLM` leaves `stream`/`astream` to langchain-core. The tests run the
same scenarios through both and compare every callback.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import llms as _core_llms
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import RunnableConfig, ensure_config

from langchain_together_stream._chunks import Aggregate

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.language_models.llms import BaseLLM

# The one free function `BaseLLM.stream` calls; absent from some langchain-core releases.
_filter_invocation_params_for_tracing: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
    _core_llms, "_filter_invocation_params_for_tracing", None
)

_CHECKED_MINORS = ((1, 7),)
"""The langchain-core releases whose `BaseLLM.stream`/`astream` these functions copy."""


def _langchain_core_minor() -> tuple[int, int]:
    major, minor, *_ = importlib.metadata.version("langchain-core").split(".")
    return int(major), int(minor)


FAST_STREAM = (
    _filter_invocation_params_for_tracing is not None and _langchain_core_minor() in _CHECKED_MINORS
)
"""Whether `stream_run`/`astream_run` match the installed langchain-core."""


def _start(
    llm: BaseLLM,
    *,
    input: LanguageModelInput,
    config: RunnableConfig | None,
    stop: list[str] | None,
    kwargs: dict[str, Any],
    manager_class: type[CallbackManager] | type[AsyncCallbackManager],
) -> tuple[str, Any, dict[str, Any]]:
    """The prompt, the configured callback manager and the `on_llm_start` arguments."""
    assert _filter_invocation_params_for_tracing is not None  # only used when FAST_STREAM
    prompt = llm._convert_input(input).to_string()
    config = ensure_config(config)
    params = llm._dict_for_compat()
    params["stop"] = stop
    params = {**params, **kwargs}
    inheritable_metadata = {
        **(config.get("metadata") or {}),
        **llm._get_ls_params_with_defaults(stop=stop, **kwargs),
    }
    manager = manager_class.configure(
        config.get("callbacks"),
        llm.callbacks,
        llm.verbose,
        config.get("tags"),
        llm.tags,
        inheritable_metadata,
        llm.metadata,
        langsmith_inheritable_metadata=_filter_invocation_params_for_tracing(params),
    )
    start = {
        "invocation_params": params,
        "options": {"stop": stop},
        "name": config.get("run_name"),
        "run_id": config.pop("run_id", None),
        "batch_size": 1,
    }
    return prompt, manager, start


def _result(total: Aggregate) -> LLMResult:
    return LLMResult(generations=[[total.result()]] if total else [])


def stream_run(
    llm: BaseLLM,
    input: LanguageModelInput,
    config: RunnableConfig | None,
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> Iterator[str]:
    """`BaseLLM.stream` for an LLM that implements `_stream`.

    Args:
        llm: The LLM.
        input: The prompt, in any form LangChain accepts.
        config: The run's config.
        stop: Stop sequences.
        kwargs: Further arguments for `_stream`.

    Yields:
        Each chunk's text.
    """
    prompt, manager, start = _start(
        llm, input=input, config=config, stop=stop, kwargs=kwargs, manager_class=CallbackManager
    )
    (run_manager,) = manager.on_llm_start(llm._serialized, [prompt], **start)
    total = Aggregate()
    try:
        for chunk in llm._stream(prompt, stop=stop, run_manager=run_manager, **kwargs):
            yield chunk.text
            total.add(chunk)
    except BaseException as e:
        run_manager.on_llm_error(e, response=_result(total))
        raise
    if not total:
        err = ValueError("No generation chunks were returned")
        run_manager.on_llm_error(err, response=LLMResult(generations=[]))
        raise err
    run_manager.on_llm_end(_result(total))


async def astream_run(
    llm: BaseLLM,
    input: LanguageModelInput,
    config: RunnableConfig | None,
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> AsyncIterator[str]:
    """`BaseLLM.astream` for an LLM that implements `_astream`.

    Args:
        llm: The LLM.
        input: The prompt, in any form LangChain accepts.
        config: The run's config.
        stop: Stop sequences.
        kwargs: Further arguments for `_astream`.

    Yields:
        Each chunk's text.
    """
    prompt, manager, start = _start(
        llm,
        input=input,
        config=config,
        stop=stop,
        kwargs=kwargs,
        manager_class=AsyncCallbackManager,
    )
    (run_manager,) = await manager.on_llm_start(llm._serialized, [prompt], **start)
    total = Aggregate()
    try:
        async for chunk in llm._astream(prompt, stop=stop, run_manager=run_manager, **kwargs):
            yield chunk.text
            total.add(chunk)
    except BaseException as e:
        await run_manager.on_llm_error(e, response=_result(total))
        raise
    if not total:
        err = ValueError("No generation chunks were returned")
        await run_manager.on_llm_error(err, response=LLMResult(generations=[]))
        raise err
    await run_manager.on_llm_end(_result(total))
