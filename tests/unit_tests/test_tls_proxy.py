"""One TLS and proxy policy for both paths (`_egress`), over real loopback sockets.

Certificates are made for each run with the `openssl` command (a private CA, a server
certificate for 127.0.0.1 and `together.test`, and an unrelated CA); the proxy is a small
loopback forward proxy that maps `together.test` to a local server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherCertificateError,
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherTimeoutError,
)
from langchain_together_stream._egress import CA_ENVIRONMENT, proxy_for
from tests.conftest import make_llm
from tests.hostile import KEY, TEXT, TOKENS
from tests.proxy_server import ForwardProxy
from tests.scripted_server import Reply, ScriptedServer, token_stream
from tests.tls_certs import HAVE_OPENSSL, Certs, make_certs

_PROXY_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_ambient_tls_or_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CA_ENVIRONMENT, *_PROXY_ENVIRONMENT):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if not HAVE_OPENSSL:
        pytest.skip("the openssl command is needed to make test certificates")
    return make_certs(tmp_path_factory.mktemp("certs"))


def invoke_sync(llm: Any) -> str:
    return str(llm.invoke("x"))


def invoke_async(llm: Any) -> str:
    return str(asyncio.run(llm.ainvoke("x")))


BOTH = pytest.mark.parametrize("invoke", [invoke_sync, invoke_async], ids=["sync", "async"])


def _tls_server(certs: Certs) -> ScriptedServer:
    return ScriptedServer([Reply(body=token_stream(TOKENS))], tls=certs.server_context())


# --- trust ----------------------------------------------------------------------------------


@BOTH
def test_a_private_ca_given_as_verify_is_trusted(certs: Certs, invoke: Any) -> None:
    with _tls_server(certs) as server:
        assert invoke(make_llm(server, verify=str(certs.ca))) == TEXT
        assert invoke(make_llm(server, verify=str(certs.ca_dir))) == TEXT


@BOTH
def test_an_untrusted_certificate_is_a_typed_error_and_never_retried(
    certs: Certs, invoke: Any
) -> None:
    with _tls_server(certs) as server:
        llm = make_llm(server, max_retries=3)
        with pytest.raises(TogetherCertificateError, match="not trusted") as info:
            invoke(llm)
        assert isinstance(info.value, TogetherConnectionError)
        assert server.handshakes == 1  # no backoff, no second handshake
        assert server.seen == []  # nothing was sent, the key least of all


@BOTH
@pytest.mark.parametrize("variable", CA_ENVIRONMENT)
def test_every_ca_variable_is_honoured_on_both_paths(
    certs: Certs, invoke: Any, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, str(certs.ca_dir if variable == "SSL_CERT_DIR" else certs.ca))
    with _tls_server(certs) as server:
        assert invoke(make_llm(server)) == TEXT


@BOTH
def test_requests_ca_bundle_comes_before_ssl_cert_file(
    certs: Certs, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.other_ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    with _tls_server(certs) as server, pytest.raises(TogetherCertificateError):
        invoke(make_llm(server))


@BOTH
# requests' usual warning for verify=False (the sync path keeps it; aiohttp has none).
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_verify_setting_comes_before_the_environment(
    certs: Certs, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.other_ca))
    with _tls_server(certs) as server:
        assert invoke(make_llm(server, verify=str(certs.ca))) == TEXT
        assert invoke(make_llm(server, verify=False)) == TEXT


@BOTH
@pytest.mark.parametrize("where", ["setting", "environment"])
@pytest.mark.parametrize("problem", ["missing", "not-a-certificate"])
def test_a_bad_ca_bundle_is_a_configuration_error(
    certs: Certs, invoke: Any, where: str, problem: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "bad-ca.pem"
    if problem == "not-a-certificate":
        bundle.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    settings: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch, _tls_server(certs) as server:
        if where == "setting":
            settings["verify"] = str(bundle)
        else:
            patch.setenv("SSL_CERT_FILE", str(bundle))
        with pytest.raises(TogetherConfigurationError, match=r"bad-ca\.pem"):
            invoke(make_llm(server, max_retries=2, **settings))
        assert server.handshakes == 0


# --- proxies --------------------------------------------------------------------------------


@BOTH
def test_https_goes_through_the_environment_proxy_as_a_tunnel(
    certs: Certs, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _tls_server(certs) as server, ForwardProxy({"together.test:443": server.port}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        llm = make_llm(server, base_url="https://together.test/v1", verify=str(certs.ca))
        assert invoke(llm) == TEXT
        assert [(seen.method, seen.target) for seen in proxy.seen] == [
            ("CONNECT", "together.test:443")
        ]
        assert "authorization" not in proxy.seen[0].headers  # the key is inside the tunnel
        assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"


@BOTH
def test_no_proxy_sends_the_request_past_the_proxy(
    serve: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy({}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.invalid,together.test")
        llm = make_llm(serve(Reply()), base_url="https://together.test/v1", max_retries=0)
        # Not through the proxy, so the name must resolve here, and it does not.
        with pytest.raises(TogetherConnectionError):
            invoke(llm)
        assert proxy.seen == []


@BOTH
def test_a_loopback_url_never_goes_through_a_proxy(
    serve: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over http:// the proxy would get the key in clear; and its loopback is not ours.
    server = serve(Reply(body=token_stream(TOKENS)))
    with ForwardProxy({}) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        assert invoke(make_llm(server)) == TEXT
        assert proxy.seen == []
        assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"


@BOTH
def test_plain_http_goes_through_the_proxy_only_when_allowed(
    serve: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(Reply(body=token_stream(TOKENS)))
    authority = f"together.test:{server.port}"
    with ForwardProxy({authority: server.port}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        url = f"http://{authority}/v1"
        with pytest.raises(TogetherConfigurationError, match="clear text"):
            make_llm(server, base_url=url)
        assert invoke(make_llm(server, base_url=url, allow_insecure_http=True)) == TEXT
        assert [(seen.method, seen.target) for seen in proxy.seen] == [
            ("POST", f"http://{authority}/v1/completions")
        ]


def test_proxy_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://other.example:1080")
    monkeypatch.setenv("NO_PROXY", ".internal.example")
    assert proxy_for("https://api.together.xyz/v1") == "http://proxy.example:3128"
    assert proxy_for("http://gpu.example/v1") == "socks5://other.example:1080"
    assert proxy_for("https://llm.internal.example/v1") is None
    assert proxy_for("https://127.0.0.1:8443/v1") is None
    assert proxy_for("https://localhost/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")  # no scheme: http, as curl does
    assert proxy_for("https://api.together.xyz/v1") == "http://proxy.example:3128"
    # The answer is cached, yet follows the environment.
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("ALL_PROXY")
    assert proxy_for("https://api.together.xyz/v1") is None
    monkeypatch.setenv("https_proxy", "http://lower.example:8080")
    assert proxy_for("https://api.together.xyz/v1") == "http://lower.example:8080"
    monkeypatch.setenv("no_proxy", "api.together.xyz")
    assert proxy_for("https://api.together.xyz/v1") is None


def invoke_async_then_linger(llm: Any) -> str:
    # asyncio closes TLS gracefully (close_notify, then waits for the peer's): give that a
    # moment inside the loop, or asyncio.run ends the loop with the transport still open.
    async def call() -> str:
        try:
            return str(await llm.ainvoke("x"))
        finally:
            await asyncio.sleep(0.3)

    return asyncio.run(call())


@pytest.mark.parametrize("invoke", [invoke_sync, invoke_async_then_linger], ids=["sync", "async"])
def test_the_deadline_covers_a_tls_connection_too(certs: Certs, invoke: Any) -> None:
    # The sync deadline shuts the TCP socket under TLS: headers dripped a byte every 0.1 s.
    reply = Reply(head_drip=0.1, body=token_stream(TOKENS))
    with ScriptedServer([reply], tls=certs.server_context()) as server:
        llm = make_llm(server, verify=str(certs.ca), deadline=1.5, timeout=(30.0, 30.0))
        started = time.monotonic()
        with pytest.raises(TogetherTimeoutError, match="deadline"):
            invoke(llm)
        assert time.monotonic() - started < 4.0
        assert server.wait_disconnect(timeout=2.0) is not None
