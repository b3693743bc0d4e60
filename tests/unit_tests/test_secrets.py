"""Secrets and hostile endpoints: the key goes to the configured host only, over TLS or
loopback, and never into reprs, logs, tracing, serialisation or errors. A key no header can
carry, or a base_url with a user name or password, is refused without being shown, however it
arrives (argument, environment, later assignment, or a copy that skipped validation).

What a pickle holds: the key, once, as the `SecretStr` field's value (pickling an LLM is how
LangChain ships it to worker processes, so it must survive). No live connection or request
is pickled. Exceptions keep requests' own exception in `__cause__`; the prepared request it
carries has its `Authorization` header blanked before it is chained.
"""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps
from langchain_core.prompts import PromptTemplate
from pydantic import SecretStr

from langchain_together_stream import (
    TogetherAPIError,
    TogetherAuthenticationError,
    TogetherConfigurationError,
    TogetherError,
    TogetherLLM,
    TogetherRateLimitError,
    TogetherServerError,
    TogetherStreamError,
    __version__,
)
from tests.conftest import make_llm
from tests.hostile import FAST, KEY, TEXT, TOKENS, Counter, closed_port_url, silent_listener
from tests.llm_helpers import CALLS, Call
from tests.llm_helpers import shown as _shown
from tests.scripted_server import Reply, ScriptedServer, completion_chunk, sse_body, token_stream

_LOGGERS = ("", "urllib3", "urllib3.connectionpool", "requests", "sseclient", "langchain_core")


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _texts_of(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    for link in _chain(error):
        texts += [str(link), repr(link), repr(link.args), repr(getattr(link, "__dict__", {}))]
        request = getattr(link, "request", None)
        if request is not None:  # requests' exceptions keep the prepared request
            texts.append(repr(dict(getattr(request, "headers", {}))))
    return texts


def _failures(server: Any, silent_url: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("status", {"base_url": server.base_url}),
        ("timeout", {"base_url": silent_url}),
        ("refused", {"base_url": closed_port_url()}),
    ]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in _LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_the_key_is_in_no_error_message_cause_chain_or_log(
    serve: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    server = serve(
        Reply(
            status=401,
            headers=[("Content-Type", "application/json")],
            # A hostile (or buggy) server echoing the Authorization header back.
            body=[json.dumps({"error": {"message": "bad key", "echo": f"Bearer {KEY}"}}).encode()],
            framing="length",
        )
    )
    with silent_listener() as silent_url:
        for _, settings in _failures(server, silent_url):
            llm = make_llm(server, max_retries=1, timeout=(2.0, 0.1), **settings)
            with pytest.raises(TogetherError) as info:
                llm.invoke("x")
            for text in _texts_of(info.value):
                assert KEY not in text
    assert debug_logs.records  # urllib3 did log at DEBUG
    assert KEY not in debug_logs.text
    assert all(KEY not in str(record.__dict__) for record in debug_logs.records)


def test_the_key_is_in_no_stream_error_either(
    serve: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    body = [
        *sse_body(completion_chunk("a"), done=False),
        f'data: {{"error": {{"message": "x", "type": "Bearer {KEY}"}}}}\n\n'.encode(),
    ]
    server = serve(Reply(body=body))
    with pytest.raises(TogetherStreamError) as info:
        make_llm(server, **FAST).invoke("x")
    # A server that sends the key back can make it appear; what the package adds never does.
    assert info.value.error_type == f"Bearer {KEY}"
    assert KEY not in debug_logs.text.replace(f"Bearer {KEY}", "")


def test_the_key_is_in_no_tracing_data(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, temperature=0.2)
    counter = Counter()
    chain = PromptTemplate.from_template("{q}") | llm
    assert chain.invoke({"q": "x"}, config={"callbacks": [counter], "metadata": {"m": 1}}) == TEXT
    start = counter.starts[0]
    assert start["serialized"]["kwargs"]["api_key"]["type"] == "secret"
    assert start["invocation_params"]["model"] == "test/model"
    assert start["metadata"]["ls_provider"] == "together"
    assert KEY not in repr(start)
    assert KEY not in json.dumps(start, default=repr)
    assert KEY not in dumps(chain)
    assert KEY not in json.dumps(dumpd(chain))


def test_reprs_and_dumps_after_use_hide_the_key(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    llm.invoke("x")  # a live pool now exists
    for text in (repr(llm), str(llm), dumps(llm), repr(llm.__dict__), repr(llm._transport)):
        assert KEY not in text
    assert repr(llm.api_key) == "SecretStr('**********')"


def test_a_pickle_holds_the_key_once_as_the_field_and_no_connection(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    llm.invoke("x")
    data = pickle.dumps(llm)
    assert data.count(KEY.encode()) == 1
    assert b"socket" not in data
    assert b"Authorization" not in data
    restored = pickle.loads(data)
    assert restored.api_key.get_secret_value() == KEY
    assert restored.invoke("x") == TEXT


def test_locals_captured_by_error_reporters_do_not_reveal_the_key() -> None:
    # Sentry, rich and `pytest --showlocals` print the locals of every frame of a traceback.
    # This checks the package's own frames (the raised error's stack). The frames of the
    # chained requests/urllib3 exception hold the header dict and the raw request bytes, as
    # with any HTTP client; reporters scrub those by key name ("authorization"), but they
    # cannot scrub a dataclass repr, so the package's own locals must not show the key.
    llm = TogetherLLM(model="m", api_key=KEY, base_url=closed_port_url(), max_retries=0)
    with pytest.raises(TogetherError) as info:
        llm.invoke("x")
    leaks = [
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}: {name}"
        for frame in traceback.TracebackException.from_exception(
            info.value, capture_locals=True
        ).stack
        for name, value in (frame.locals or {}).items()
        if KEY in value
    ]
    assert leaks == []


@pytest.mark.parametrize(
    "error",
    [
        TogetherAPIError("m", status_code=402, error_type="t", request_id="r", partial_text="p"),
        TogetherRateLimitError("m", retry_after=3.0, partial_text="p"),
        TogetherServerError("m", status_code=503),
        TogetherStreamError("m", error_type="t", partial_text="p"),
        TogetherError("m", partial_text="p"),
    ],
)
def test_errors_survive_pickling_for_worker_processes(error: TogetherError) -> None:
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is type(error)
    assert vars(restored) == vars(error)
    assert str(restored) == str(error)


# --- where the key may go --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://api.together.xyz/v1",
        "http://127.0.0.1.nip.io/v1",
        "http://localhost.evil.example/v1",
        "http://127.0.0.1@evil.example/v1",
        "http://[::ffff:10.0.0.1]/v1",
        "http://0.0.0.0:8080/v1",
        "ftp://api.together.xyz/v1",
        "api.together.xyz/v1",
    ],
)
def test_the_key_is_not_sent_in_clear_to_another_host(url: str) -> None:
    with pytest.raises(TogetherConfigurationError):
        TogetherLLM(model="m", api_key=KEY, base_url=url)


def test_changing_base_url_later_is_checked_too(serve: Any) -> None:
    llm = make_llm(serve(Reply(body=token_stream(TOKENS))))
    good = llm.base_url
    with pytest.raises(TogetherConfigurationError):
        llm.base_url = "http://evil.example/v1"
    # A rejected assignment must not stick: code that catches the error and carries on
    # would otherwise send the key in clear text to that host on the next call.
    assert llm.base_url == good


@pytest.mark.parametrize("url", ["https://api.together.xyz/v1", "http://127.0.0.2:8/v1"])
def test_tls_and_loopback_are_accepted(url: str) -> None:
    assert TogetherLLM(model="m", api_key=KEY, base_url=url).base_url == url


def test_opting_in_allows_clear_text_to_another_host() -> None:
    url = "http://gateway.internal:8080/v1"
    assert TogetherLLM(model="m", api_key=KEY, base_url=url, allow_insecure_http=True)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_reported_and_the_key_never_follows(serve: Any, status: int) -> None:
    elsewhere = serve(Reply(body=token_stream(TOKENS)))
    server = serve(
        Reply(status=status, headers=[("Location", f"{elsewhere.base_url}/completions")])
    )
    counter = Counter()
    with pytest.raises(TogetherAPIError, match="redirect") as info:
        make_llm(server, max_retries=3).invoke("x", config={"callbacks": [counter]})
    assert info.value.status_code == status
    assert elsewhere.base_url in str(info.value)  # says where it was sent, so it can be fixed
    assert (len(server.seen), len(elsewhere.seen)) == (1, 0)
    assert len(counter.errors) == 1


def test_user_agent_names_the_package_and_version(serve: Any) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    make_llm(server).invoke("x")
    headers = server.seen[0].headers
    assert headers["user-agent"] == f"langchain-together-stream/{__version__}"
    assert headers["authorization"] == f"Bearer {KEY}"


def test_turning_the_opt_in_off_later_stops_clear_text_requests() -> None:
    llm = TogetherLLM(
        model="m", api_key=KEY, base_url="http://gateway.internal:8/v1", allow_insecure_http=True
    )
    with pytest.raises(TogetherConfigurationError):
        llm.allow_insecure_http = False
    llm.__dict__["allow_insecure_http"] = False  # however it got there, nothing is sent
    with pytest.raises(TogetherConfigurationError, match="clear text"):
        llm.invoke("x")


@pytest.fixture
def server(serve: Callable[..., ScriptedServer]) -> ScriptedServer:
    return serve(Reply(body=token_stream(TOKENS)))


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


# --- in reprs, logs, and the clear-text rule -----------------------------------------------


def test_key_never_appears_in_repr_str_dumps_or_logs(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(
        Reply(
            status=401,
            headers=[("Content-Type", "application/json")],
            body=[b'{"error": {"message": "Invalid API key", "type": "invalid_api_key"}}'],
            framing="length",
        )
    )
    llm = make_llm(server)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TogetherAuthenticationError) as info:
        llm.invoke("x")
    texts = [
        repr(llm),
        str(llm),
        dumps(llm),
        json.dumps(dumpd(llm)),
        str(info.value),
        repr(info.value),
        caplog.text,
        repr(llm._identifying_params),
    ]
    for text in texts:
        assert KEY not in text
    assert dumpd(llm)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["TOGETHER_API_KEY"],
    }


@pytest.mark.parametrize("url", ["http://api.example.com/v1", "http://10.0.0.8/v1"])
def test_clear_text_key_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(TogetherConfigurationError, match="clear text"):
        TogetherLLM(model="m", api_key="k", base_url=url)
    assert TogetherLLM(model="m", api_key="k", base_url=url, allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/v1", "http://localhost:8/v1", "http://[::1]:8/v1"]
)
def test_loopback_http_is_allowed(url: str) -> None:
    assert TogetherLLM(model="m", api_key="k", base_url=url).base_url == url


def test_missing_key_says_how_to_get_one() -> None:
    with pytest.raises(TogetherConfigurationError, match="TOGETHER_API_KEY"):
        TogetherLLM(model="m")
