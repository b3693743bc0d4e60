"""What a newcomer meets first: the README's quick start, its list of emulator faults, the
serialization round trip and token counting, each checked against what the code does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import textwrap
from contextlib import aclosing, closing
from pathlib import Path
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps, loads

from langchain_together_stream import TogetherConfigurationError, TogetherLLM
from langchain_together_stream.emulator import FAULTS, TogetherEmulator
from tests.conftest import make_llm
from tests.scripted_server import Reply, ScriptedServer, completion_chunk, sse_body

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    found = re.findall(rf"```{language}\n(.*?)^ *```", text, flags=re.DOTALL | re.MULTILINE)
    return [textwrap.dedent(block) for block in found]


def run_snippet(code: str, **names: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme", **names})
    return out.getvalue()


def test_the_quick_start_prints_what_the_readme_shows() -> None:
    quick_start = section("Quick start")
    code = next(block for block in blocks(quick_start, "python") if "TogetherEmulator" in block)
    shown = blocks(quick_start, "text")[0]
    assert run_snippet(code) == shown


def test_the_readme_lists_every_emulator_fault_and_no_other() -> None:
    text = section("The command and the offline emulator")
    table = text.split("**Faults on demand**", 1)[1]
    listed: set[str] = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        names_cell, description = line.strip("|").split("|", 1)
        names = re.findall(r"`([^`]+)`", names_cell)
        if any("<status>" in name for name in names):
            statuses = re.findall(r"\b([1-5]\d\d)\b", description.split(":", 1)[0])
            assert statuses, line
            names = [name.replace("<status>", s) for name in names for s in statuses]
        listed.update(names)
    assert listed == set(FAULTS)


# --- loads(dumps(llm)) ---------------------------------------------------------------------


@pytest.fixture
def emulator() -> Any:
    with TogetherEmulator() as emu:
        yield emu


def test_the_documented_loads_call_round_trips(emulator: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "key-from-env")
    llm = TogetherLLM(
        model="m/x", api_key="key-given", base_url=emulator.base_url, temperature=0.3, seed=7
    )
    guarantees = section("Guarantees")
    code = next(block for block in blocks(guarantees, "python") if "loads(" in block)
    names: dict[str, Any] = {"llm": llm, "TogetherLLM": TogetherLLM}
    run_snippet(code + "\nresult['restored'] = restored\n", result=names, **names)
    restored = names["restored"]
    assert isinstance(restored, TogetherLLM)
    assert dumpd(restored) == dumpd(llm)
    assert restored.api_key is not None
    assert restored.api_key.get_secret_value() == "key-from-env"  # the key is never dumped
    assert restored.invoke("Alan Turing was") == llm.invoke("Alan Turing was")
    assert emulator.requests[-1].headers["authorization"] == "[REDACTED]"


def test_loads_takes_the_key_from_secrets_map(monkeypatch: Any) -> None:
    llm = TogetherLLM(model="m/x", api_key="key-given")
    restored = loads(
        dumps(llm),
        valid_namespaces=["langchain_together_stream"],
        allowed_objects=[TogetherLLM],
        secrets_map={"TOGETHER_API_KEY": "key-from-map"},
    )
    assert restored.api_key.get_secret_value() == "key-from-map"


def test_loads_without_any_key_says_how_to_give_one() -> None:
    llm = TogetherLLM(model="m/x", api_key="key-given")
    with pytest.raises(TogetherConfigurationError, match="TOGETHER_API_KEY"):
        loads(
            dumps(llm),
            valid_namespaces=["langchain_together_stream"],
            allowed_objects=[TogetherLLM],
        )


# --- get_num_tokens --------------------------------------------------------------------------


def test_get_num_tokens_without_a_tokenizer_is_a_typed_error_saying_how_to_count() -> None:
    llm = TogetherLLM(model="meta-llama/Llama-3.3-70B-Instruct-Turbo", api_key="k")
    # No GPT-2 warning, no ImportError: pytest turns warnings into errors here.
    with pytest.raises(TogetherConfigurationError) as info:
        llm.get_num_tokens("Alan Turing was")
    message = str(info.value)
    assert "custom_get_token_ids" in message
    assert "usage" in message
    assert "meta-llama/Llama-3.3-70B-Instruct-Turbo" in message


def test_get_num_tokens_uses_the_given_tokenizer() -> None:
    llm = TogetherLLM(model="m/x", api_key="k", custom_get_token_ids=lambda text: [1] * len(text))
    assert llm.get_num_tokens("four") == 4


# --- what closes a stream (README "Guarantees") ----------------------------------------------

# A token every 0.1 s for 10 s; the server notices a hang-up within one pause.
TRICKLE: list[bytes | float] = []
for _index in range(100):
    TRICKLE += [*sse_body(completion_chunk(f" t{_index}"), done=False), 0.1]


def _break_then_close_sync(llm: TogetherLLM, server: ScriptedServer) -> bool:
    it = llm.stream("x")
    for _ in it:
        break
    open_after_break = server.wait_disconnect(timeout=0.5) is None
    it.close()
    return open_after_break


def _break_then_close_async(llm: TogetherLLM, server: ScriptedServer) -> bool:
    async def run() -> bool:
        it = llm.astream("x")
        async for _ in it:
            break
        await asyncio.sleep(0.5)
        open_after_break = server.seen[-1].disconnected_at is None
        await it.aclose()  # type: ignore[attr-defined]
        return open_after_break

    return asyncio.run(run())


@pytest.mark.parametrize(
    "break_then_close", [_break_then_close_sync, _break_then_close_async], ids=["sync", "async"]
)
def test_a_break_keeps_the_connection_until_the_stream_is_closed(
    serve: Any, break_then_close: Any
) -> None:
    server = serve(Reply(body=TRICKLE))
    # As generators work: the name `it` keeps the stream, and its connection, alive.
    assert break_then_close(make_llm(server), server)
    assert server.wait_disconnect(timeout=5) is not None


def test_closing_closes_the_connection_when_the_block_is_left(serve: Any) -> None:
    server = serve(Reply(body=TRICKLE))
    llm = make_llm(server)
    with closing(llm.stream("x")) as tokens:  # type: ignore[type-var]
        for _ in tokens:
            break
    assert server.wait_disconnect(timeout=5) is not None


def test_aclosing_closes_the_connection_when_the_block_is_left(serve: Any) -> None:
    server = serve(Reply(body=TRICKLE))
    llm = make_llm(server)

    async def run() -> None:
        async with aclosing(llm.astream("x")) as tokens:  # type: ignore[type-var]
            async for _ in tokens:
                break

    asyncio.run(run())
    assert server.wait_disconnect(timeout=5) is not None
