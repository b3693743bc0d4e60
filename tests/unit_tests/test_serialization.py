"""TogetherLLM crossing boundaries: LangChain dumpd/load and pickling to a worker process."""

import asyncio
import concurrent.futures
import multiprocessing
import pickle
from typing import Any

import pytest
from langchain_core.load import dumpd, load

from langchain_together_stream import (
    TogetherLLM,
)
from tests.conftest import make_llm
from tests.hostile import KEY, TOKENS
from tests.scripted_server import Reply, token_stream


def test_dumpd_and_load_round_trip(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, temperature=0.4)
    monkeypatch.setenv("TOGETHER_API_KEY", KEY)
    restored = load(
        dumpd(llm),
        valid_namespaces=["langchain_together_stream"],
        allowed_objects=[TogetherLLM],
        secrets_from_env=True,
    )
    assert isinstance(restored, TogetherLLM)
    assert restored.temperature == 0.4
    assert restored.invoke("x") == "".join(TOKENS)


def _stream_in_worker(payload: bytes) -> str:
    llm = pickle.loads(payload)

    async def main() -> str:
        return "".join([token async for token in llm.astream("x")])

    return asyncio.run(main())


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pickled_instance_streams_in_a_worker_process(serve: Any, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    assert asyncio.run(llm.ainvoke("x")) == "".join(TOKENS)  # the parent has used its pool
    payload = pickle.dumps(llm)
    context = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_stream_in_worker, payload).result(timeout=60) == "".join(TOKENS)
