"""LangChain's LLM cache: two calls that send different requests never share an entry.

langchain-core keys an LLM's cache entries on its identifying parameters and the call's
`stop` only; `TogetherLLM` adds what each call sends (call kwargs, and the stop sequences
actually sent), for every way of calling it. The emulator counts the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache

from langchain_together_stream import TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator

Call = Callable[..., str]

FORMS: dict[str, Call] = {
    "invoke": lambda llm, prompt, **kw: llm.invoke(prompt, **kw),
    "ainvoke": lambda llm, prompt, **kw: asyncio.run(llm.ainvoke(prompt, **kw)),
    "generate": lambda llm, prompt, **kw: llm.generate([prompt], **kw).generations[0][0].text,
    "agenerate": lambda llm, prompt, **kw: (
        asyncio.run(llm.agenerate([prompt], **kw)).generations[0][0].text
    ),
    "batch": lambda llm, prompt, **kw: llm.batch([prompt, prompt + "!"], **kw)[0],
    "abatch": lambda llm, prompt, **kw: asyncio.run(llm.abatch([prompt, prompt + "!"], **kw))[0],
}


@pytest.fixture
def emulator() -> Iterator[TogetherEmulator]:
    set_llm_cache(InMemoryCache())
    try:
        with TogetherEmulator() as emu:
            yield emu
    finally:
        set_llm_cache(None)


def llm_for(emulator: TogetherEmulator, **fields: Any) -> TogetherLLM:
    settings: dict[str, Any] = {
        "model": "m",
        "api_key": "k",
        "base_url": emulator.base_url,
        "timeout": (2.0, 5.0),
        "max_tokens": 8,
        "seed": 1,
    }
    return TogetherLLM(**{**settings, **fields})


def sent(emulator: TogetherEmulator, call: Callable[[], str]) -> int:
    before = len(emulator.requests)
    call()
    return len(emulator.requests) - before


@pytest.mark.parametrize("form", sorted(FORMS))
def test_calls_sending_different_requests_never_share_an_entry(
    emulator: TogetherEmulator, form: str
) -> None:
    call = FORMS[form]
    per_call = 2 if "batch" in form else 1
    llm = llm_for(emulator)
    variants: list[dict[str, Any]] = [
        {},
        {"max_tokens": 5},
        {"max_tokens": 5, "temperature": 0.5},
        {"temperature": 0.5},
        {"stop": ["zz"]},
        {"top_k": 3, "stop": ["zz"]},
        {"max_tokens": None},  # sent as null: a different request from leaving it out
    ]
    for kwargs in variants:
        assert sent(emulator, lambda kwargs=kwargs: call(llm, "x", **kwargs)) == per_call, kwargs
    # The cache still answers a call that sends the same request again.
    for kwargs in variants:
        assert sent(emulator, lambda kwargs=kwargs: call(llm, "x", **kwargs)) == 0, kwargs


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_stop_field_is_part_of_the_key(emulator: TogetherEmulator, form: str) -> None:
    call = FORMS[form]
    assert sent(emulator, lambda: call(llm_for(emulator), "x")) >= 1
    # LangChain alone would key both on the call's stop (None) and answer from the cache.
    assert sent(emulator, lambda: call(llm_for(emulator, stop=["zz"]), "x")) >= 1
    assert sent(emulator, lambda: call(llm_for(emulator, stop=["yy"]), "x")) >= 1
    assert sent(emulator, lambda: call(llm_for(emulator, stop=["yy"]), "x")) == 0


def test_the_call_parameters_leave_no_trace_after_the_call(emulator: TogetherEmulator) -> None:
    llm = llm_for(emulator)
    before = llm.asdict()
    llm.invoke("x", max_tokens=5, stop=["zz"])
    assert llm.asdict() == before
    assert "stop_sent" not in before
