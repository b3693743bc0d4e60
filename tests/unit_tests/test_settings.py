"""Hostile settings and call arguments: refused with a `TogetherConfigurationError` naming the
setting, before anything is sent, on the sync and the async path. Bad keys and passwords in
base_url are settings too, but they are secrets: test_secrets.py covers them.

Each call-time case runs against a scripted loopback server and checks that no connection
reached it. The checks live in the seam (`_client`, `_params`), so every model gets them.
The last section covers the good side: defaults, the environment, unknown names refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from langchain_together_stream import TogetherConfigurationError, TogetherLLM
from tests.conftest import make_llm
from tests.hostile import TEXT, TOKENS
from tests.llm_helpers import CALLS, Call
from tests.scripted_server import Reply, ScriptedServer, token_stream


@pytest.fixture
def server(serve: Callable[..., ScriptedServer]) -> ScriptedServer:
    return serve(Reply(body=token_stream(TOKENS)))


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


# --- defaults, the environment, unknown settings -------------------------------------------


def test_key_and_base_url_from_the_environment(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    monkeypatch.setenv("TOGETHER_API_KEY", "env-key")
    monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
    assert TogetherLLM(model="m").invoke("x") == "".join(TOKENS)
    assert server.seen[0].headers["authorization"] == "Bearer env-key"


def test_default_base_url_is_together() -> None:
    assert TogetherLLM(model="m", api_key="k").base_url == "https://api.together.xyz/v1"


def test_unknown_settings_fail_loudly() -> None:
    with pytest.raises(ValueError, match="temprature"):
        TogetherLLM(model="m", api_key="k", temprature=0.5)  # type: ignore[call-arg]
