"""`stream` and `astream` as langchain-core runs them, with the answer added up in linear time.

langchain-core's `BaseLLM.stream` adds each chunk to the running total with `generation +=
chunk`, which copies the whole text every time: quadratic in the answer's length (about 2 µs
a token at 20,000 tokens, 110 µs at 200,000). These functions are that method line for line,
with the total kept by `Aggregate` instead.

They copy langchain-core's run logic and call its internals, so they are used only when the
installed langchain-core has exactly the code they were copied from: `FAST_STREAM` compares a
fingerprint of the installed `BaseLLM.stream`/`astream` and of every internal used here
(their syntax trees, docstrings and formatting left out) with the fingerprints in `_CHECKED`.
On any other code `TogetherLLM` leaves `stream`/`astream` to langchain-core (correct, but
quadratic), and the test suite fails so that the difference is seen and the copy updated. The
tests run the same scenarios through both and compare every callback.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import llms as _core_llms
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import RunnableConfig, ensure_config

from langchain_together_stream._chunks import Aggregate

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput

# The one free function `BaseLLM.stream` calls; absent from some langchain-core releases.
_filter_invocation_params_for_tracing: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
    _core_llms, "_filter_invocation_params_for_tracing", None
)

_CHECKED = {
    "143201c5921e": "langchain-core 1.4.2 to 1.8.4",
}
"""Fingerprints (`installed_fingerprint`) of the langchain-core code these functions copy or
call, with the releases that have it; every release from 1.4.2 to 1.8.4 was checked. Older
ones have other code (1.0.0 to 1.2.0: a4e74eb107b4, 1.2.31: 71482a9cc5f2, 1.3.0 to 1.4.1:
da705e064d68), hence the langchain-core floor of 1.4.2. To check a new release:
`pip install --no-deps langchain-core==X` into a scratch venv that has this package, then
`python -c "from langchain_together_stream import _runs; print(_runs.installed_fingerprint())"`;
if it differs, compare `BaseLLM.stream`/`astream` with the functions below first."""

# What `stream_run`/`astream_run` copy (the first two) or call. A name missing from the
# installed langchain-core changes the fingerprint as a changed body does.
_COPIED = ("stream", "astream")
_USED = ("_convert_input", "_dict_for_compat", "_get_ls_params_with_defaults", "_serialized")


def _canonical(node: object) -> str:
    # `ast.dump` differs between Python versions (3.13 leaves out empty fields, 3.12 added
    # `type_params`), so the tree is written out here with empty fields always left out.
    if isinstance(node, list):
        return "[" + ",".join(_canonical(item) for item in node) + "]"
    if not isinstance(node, ast.AST):
        return repr(node)
    body = getattr(node, "body", None)
    fields = []
    for name in node._fields:
        value = getattr(node, name, None)
        if name == "body" and isinstance(body, list) and _is_docstring(body):
            value = body[1:]
        if value is None or value == []:
            continue
        fields.append(f"{name}={_canonical(value)}")
    return f"{type(node).__name__}({','.join(fields)})"


def _is_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


def fingerprint(sources: dict[str, str | None]) -> str:
    """A short hash of some functions' code, blind to formatting, comments and docstrings.

    Args:
        sources: Each function's name and source (None when it does not exist).

    Returns:
        Twelve hex digits.
    """
    digest = hashlib.sha256()
    for name in sorted(sources):
        source = sources[name]
        tree = "missing" if source is None else _canonical(ast.parse(textwrap.dedent(source)).body)
        digest.update(f"{name}:{tree}\n".encode())
    return digest.hexdigest()[:12]


def _source(obj: object) -> str | None:
    # Properties and cached properties: the function behind them.
    function = getattr(obj, "fget", None) or getattr(obj, "func", None) or obj
    try:
        return inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):  # no source shipped: nothing to compare, so no fast path
        return None


def installed_fingerprint() -> str:
    """The fingerprint of the installed langchain-core's code that `_runs` copies or calls.

    Returns:
        The value `_CHECKED` is keyed by.
    """
    sources = {
        f"BaseLLM.{name}": _source(inspect.getattr_static(BaseLLM, name, None))
        for name in (*_COPIED, *_USED)
    }
    sources["_filter_invocation_params_for_tracing"] = (
        None
        if _filter_invocation_params_for_tracing is None
        else _source(_filter_invocation_params_for_tracing)
    )
    return fingerprint(sources)


FAST_STREAM = installed_fingerprint() in _CHECKED
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
