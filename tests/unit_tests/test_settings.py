"""Hostile settings and call arguments: refused with a `TogetherConfigurationError` naming the
setting, before anything is sent, on the sync and the async path; keys and passwords never
echoed.

Each call-time case runs against a scripted loopback server and checks that no connection
reached it. The checks live in the seam (`_client`, `_params`), so every model gets them.
"""

from __future__ import annotations

import asyncio
import json
import math
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.load import dumps
from pydantic import SecretStr

from langchain_together_stream import TogetherConfigurationError, TogetherLLM
from tests.conftest import make_llm
from tests.hostile import KEY, TEXT, TOKENS
from tests.scripted_server import Reply, ScriptedServer, token_stream

Call = Callable[..., str]


def _invoke(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return llm.invoke(*args, **kwargs)


def _ainvoke(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return asyncio.run(llm.ainvoke(*args, **kwargs))


def _stream(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    return "".join(llm.stream(*args, **kwargs))


def _astream(llm: TogetherLLM, *args: Any, **kwargs: Any) -> str:
    async def collect() -> str:
        return "".join([token async for token in llm.astream(*args, **kwargs)])

    return asyncio.run(collect())


CALLS = pytest.mark.parametrize(
    "call", [_invoke, _ainvoke, _stream, _astream], ids=["invoke", "ainvoke", "stream", "astream"]
)


@pytest.fixture
def server(serve: Callable[..., ScriptedServer]) -> ScriptedServer:
    return serve(Reply(body=token_stream(TOKENS)))


def _shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error.__dict__)


# --- the API key ------------------------------------------------------------------------

BAD_KEYS = {
    "crlf": "sk-abc\r\nX-Injected: 1",
    "lf": "sk-abc\n",
    "nul": "sk-a\x00bc",
    "del": "sk-abc\x7f",
    "tab": "sk-a\tbc",
    "latin-1": "sk-café",
    "cyrillic": "sk-ключ",
    "emoji": "sk-🔑",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_key_no_header_can_carry_is_refused_without_showing_it(
    server: ScriptedServer, key: str
) -> None:
    with pytest.raises(TogetherConfigurationError, match="API key") as info:
        make_llm(server, api_key=key)
    assert key not in _shown(info.value)
    assert "sk-abc" not in _shown(info.value)
    assert server.connections == 0


def test_a_bad_key_from_the_environment_is_refused_too(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", BAD_KEYS["crlf"])
    with pytest.raises(TogetherConfigurationError, match="API key") as info:
        TogetherLLM(model="m", base_url=server.base_url)
    assert "sk-abc" not in _shown(info.value)


def test_a_bad_key_assigned_later_is_refused_and_the_old_one_kept(server: ScriptedServer) -> None:
    llm = make_llm(server)
    with pytest.raises(TogetherConfigurationError, match="API key"):
        llm.api_key = SecretStr(BAD_KEYS["lf"])
    assert llm.invoke("x") == TEXT
    assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"


@CALLS
def test_a_bad_key_that_skipped_validation_is_never_sent(
    server: ScriptedServer, call: Call
) -> None:
    # `model_copy(update=...)` does not validate: the request is checked again when built.
    llm = make_llm(server).model_copy(update={"api_key": SecretStr(BAD_KEYS["crlf"])})
    with pytest.raises(TogetherConfigurationError, match="API key") as info:
        call(llm, "x")
    assert "sk-abc" not in _shown(info.value)
    assert server.connections == 0


# --- base_url with a user name or password ----------------------------------------------


def _with_password(server: ScriptedServer) -> str:
    return server.base_url.replace("http://", "http://user:PASSWORD@")


def test_a_base_url_with_a_password_is_refused_without_showing_it(server: ScriptedServer) -> None:
    with pytest.raises(TogetherConfigurationError, match="user name or password") as info:
        make_llm(server, base_url=_with_password(server))
    assert "PASSWORD" not in _shown(info.value)
    assert server.connections == 0


@pytest.mark.parametrize(
    "url", ["https://user@api.together.xyz/v1", "https://:PASSWORD@api.together.xyz/v1"]
)
def test_a_user_name_or_password_alone_is_refused_too(url: str) -> None:
    with pytest.raises(TogetherConfigurationError, match="user name or password") as info:
        TogetherLLM(model="m", api_key=KEY, base_url=url)
    assert "PASSWORD" not in _shown(info.value)


def test_a_password_in_the_environments_base_url_is_refused(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOGETHER_BASE_URL", _with_password(server))
    with pytest.raises(TogetherConfigurationError, match="user name or password") as info:
        TogetherLLM(model="m", api_key=KEY)
    assert "PASSWORD" not in _shown(info.value)


def test_a_password_assigned_later_is_refused_and_never_shown(server: ScriptedServer) -> None:
    llm = make_llm(server)
    with pytest.raises(TogetherConfigurationError, match="user name or password") as info:
        llm.base_url = _with_password(server)
    assert "PASSWORD" not in _shown(info.value)
    assert llm.base_url == server.base_url
    for shown in (repr(llm), str(llm), dumps(llm), json.dumps(dict(llm._identifying_params))):
        assert "PASSWORD" not in shown
    assert llm.invoke("x") == TEXT


@CALLS
def test_a_password_that_skipped_validation_is_never_sent(
    server: ScriptedServer, call: Call
) -> None:
    llm = make_llm(server).model_copy(update={"base_url": _with_password(server)})
    with pytest.raises(TogetherConfigurationError, match="user name or password") as info:
        call(llm, "x")
    assert "PASSWORD" not in _shown(info.value)
    assert server.connections == 0


# --- sampling parameters: NaN, infinity, values JSON cannot carry ------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"temperature": math.nan}, "temperature"),
        ({"top_p": math.inf}, "top_p"),
        ({"repetition_penalty": -math.inf}, "repetition_penalty"),
        ({"logit_bias": {"42": math.nan}}, "logit_bias"),
        ({"model_kwargs": {"brand_new": math.nan}}, "model_kwargs['brand_new']"),
        ({"model_kwargs": {"brand_new": object()}}, "model_kwargs['brand_new']"),
    ],
    ids=["nan", "inf", "-inf", "nested", "model_kwargs", "model_kwargs-object"],
)
def test_a_parameter_json_cannot_carry_is_refused_at_construction(
    server: ScriptedServer, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(TogetherConfigurationError) as info:
        make_llm(server, **settings)
    assert str(info.value).startswith(named)
    assert server.connections == 0


def test_a_nan_assigned_later_is_refused_and_the_old_value_kept(server: ScriptedServer) -> None:
    llm = make_llm(server, temperature=0.5)
    with pytest.raises(TogetherConfigurationError, match="temperature"):
        llm.temperature = math.nan
    assert llm.temperature == 0.5
    llm.temperature = 0.7  # the instance is still usable
    assert llm.invoke("x") == TEXT
    assert server.seen[0].json["temperature"] == 0.7


@CALLS
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"temperature": math.nan}, "temperature"),
        ({"brand_new": math.inf}, "brand_new"),
        ({"logit_bias": {"42": math.nan}}, "logit_bias"),
        ({"brand_new": object()}, "brand_new"),
        ({"brand_new": {1, 2}}, "brand_new"),
    ],
    ids=["nan", "inf", "nested", "object", "set"],
)
def test_a_call_argument_json_cannot_carry_is_refused_before_sending(
    server: ScriptedServer, call: Call, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(TogetherConfigurationError) as info:
        call(make_llm(server), "x", **kwargs)
    assert str(info.value).startswith(named)
    assert server.connections == 0


# --- stop ----------------------------------------------------------------------------------


@CALLS
def test_a_string_stop_is_one_stop_sequence(server: ScriptedServer, call: Call) -> None:
    call(make_llm(server), "x", stop="END")
    call(make_llm(server, stop="\n\n"), "x")
    assert [seen.json["stop"] for seen in server.seen] == [["END"], ["\n\n"]]


# --- client settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": (2.0, 0.0)}, "timeout"),
        ({"timeout": (-1.0, 2.0)}, "timeout"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": -5}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_event_bytes": 0}, "max_event_bytes"),
        ({"max_connections": 0}, "max_connections"),
    ],
    ids=str,
)
def test_an_impossible_client_setting_is_refused_naming_it(
    server: ScriptedServer, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(TogetherConfigurationError) as info:
        make_llm(server, **settings)
    assert str(info.value).startswith(named)
    llm = make_llm(server)
    ((name, value),) = settings.items()
    with pytest.raises(TogetherConfigurationError, match=named):
        setattr(llm, name, value)
    assert llm.invoke("x") == TEXT  # the refused assignment left the instance working
    assert len(server.seen) == 1


# --- n -------------------------------------------------------------------------------------


def test_n_other_than_one_gets_the_clear_message(server: ScriptedServer) -> None:
    with pytest.raises(TogetherConfigurationError, match=r"n=2 is not supported.*batch"):
        make_llm(server, n=2)
    assert make_llm(server, n=1).invoke("x") == TEXT
    assert "n" not in server.seen[0].json


@CALLS
def test_n_as_a_call_argument_gets_the_clear_message(server: ScriptedServer, call: Call) -> None:
    with pytest.raises(TogetherConfigurationError, match=r"n=3 is not supported"):
        call(make_llm(server), "x", n=3)
    assert server.connections == 0


@CALLS
@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", -1.0), ("timeout", (2.0, math.nan)), ("deadline", 0.0), ("max_retries", -1)],
    ids=str,
)
def test_a_limit_that_skipped_validation_is_refused_before_sending(
    server: ScriptedServer, call: Call, name: str, value: object
) -> None:
    llm = make_llm(server).model_copy(update={name: value})
    with pytest.raises(TogetherConfigurationError) as info:
        call(llm, "x")
    assert str(info.value).startswith(name)
    assert server.connections == 0
