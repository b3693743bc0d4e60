"""The connection settings every Together model shares, and the request they build.

`TogetherClient` is a pydantic mixin: the fields (names, defaults and environment variables
are the public contract), their checks, the connection pools, and `build_request`, which
turns an endpoint path and a body into the transport's `StreamRequest`. A model combines it
with its parameters and its LangChain base class, mixins first so that their methods (e.g.
`lc_secrets`) win over LangChain's defaults:

    class TogetherLLM(TogetherClient, CompletionParams, LLM): ...

Every setting is checked when set and again when a request is built, so a bad one is a
`TogetherConfigurationError` naming it, raised before anything is sent; the key and a URL's
password are never echoed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_together_stream._async_transport import AsyncTransport
from langchain_together_stream._http import StreamRequest
from langchain_together_stream._net import is_loopback
from langchain_together_stream._params import encode_payload
from langchain_together_stream._transport import SyncTransport
from langchain_together_stream._version import __version__
from langchain_together_stream.errors import TogetherConfigurationError

DEFAULT_BASE_URL = "https://api.together.xyz/v1"
USER_AGENT = f"langchain-together-stream/{__version__}"

# Identity encoding and no-cache keep proxies from buffering the stream.
HEADERS = MappingProxyType(
    {
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "Cache-Control": "no-cache",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
)

_LIMITS = ("timeout", "deadline", "max_retries", "max_event_bytes", "max_connections")

_NO_KEY = (
    "No Together API key: pass api_key=... or set TOGETHER_API_KEY. Get a key at "
    "https://api.together.ai/settings/api-keys, or run offline against the "
    "bundled emulator (langchain_together_stream.emulator)."
)
_BAD_KEY = (
    "The Together API key contains a line break, another control character or a non-ASCII "
    "character, which an HTTP header cannot carry; check that it was copied whole (the key "
    "is not shown here)."
)


class TogetherClient(BaseModel):
    """Connection settings, pools and request building, shared by every Together model."""

    model: str
    """Name of the Together model to use."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("TOGETHER_API_KEY", default=None), validate_default=True
    )
    """Together API key. Read from `TOGETHER_API_KEY` when not given."""
    allow_insecure_http: bool = False
    """Allow an `http://` `base_url` on a host other than loopback (the key travels in clear)."""
    base_url: str = Field(default_factory=from_env("TOGETHER_BASE_URL", default=DEFAULT_BASE_URL))
    """API root; requests go to `{base_url}/{endpoint}`. Read from `TOGETHER_BASE_URL`."""
    timeout: float | tuple[float, float] = (10.0, 120.0)
    """Seconds to wait for a connection, and for each next byte once connected."""
    deadline: float | None = None
    """Seconds one call may take in all, retries and reading included (None: no limit; the
    idle timeout still bounds every wait). Past it the call raises `TogetherTimeoutError`,
    keeping the text streamed so far, and the connection is closed."""
    max_retries: int = 2
    """Retries on connection errors, timeouts, 429 and 5xx, only before the first token."""
    max_event_bytes: int = 4 * 1024 * 1024
    """The largest single event accepted from the server; bounds memory on a bad stream."""
    verify: bool | str = True
    """TLS certificate verification for `https://` URLs, the same on the sync and async
    paths: `True` trusts `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, `SSL_CERT_FILE` or
    `SSL_CERT_DIR` (the first set), else certifi's bundle; a path (file or directory) trusts
    that CA bundle instead (a private CA, a TLS-inspecting proxy); `False` turns it off."""
    max_connections: int = 1000
    """Connection pool size: the most connections the async pool opens at once per event
    loop (more concurrent async calls wait for a free one), and the most the sync pool keeps
    for reuse across threads. Large by default so hundreds of streams never queue."""

    _transport: SyncTransport = PrivateAttr(default_factory=SyncTransport)
    _async_transport: AsyncTransport = PrivateAttr(default_factory=AsyncTransport)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a model that lists a LangChain base before this mixin.

        LangChain's `Serializable.lc_secrets` would then hide this one, and `dumpd` would no
        longer replace the key with a `TOGETHER_API_KEY` reference.

        Args:
            **kwargs: Passed on to pydantic.

        Raises:
            TypeError: A base before `TogetherClient` in the MRO defines a method of its own.
        """
        super().__pydantic_init_subclass__(**kwargs)
        mro = cls.__mro__
        for base in mro[: mro.index(TogetherClient)]:
            if not issubclass(base, TogetherClient) and "lc_secrets" in vars(base):
                msg = (
                    f"{cls.__name__}: list TogetherClient (and the parameter mixins) before "
                    f"{base.__name__}, e.g. class {cls.__name__}(TogetherClient, "
                    f"SamplingParams, BaseChatModel), so that its lc_secrets is used."
                )
                raise TypeError(msg)

    @field_validator("base_url")
    @classmethod
    def _check_new_base_url(cls, base_url: str, info: ValidationInfo) -> str:
        # A field validator runs before the value is stored, so a refused assignment
        # (`llm.base_url = "http://elsewhere"`) leaves the old, safe value in place. At
        # construction `allow_insecure_http` may not be validated yet: the model check follows.
        allow = info.data.get("allow_insecure_http")
        if allow is not None:
            check_base_url(base_url, allow_insecure_http=allow)
        return base_url

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_from_env_when_none(cls, api_key: object) -> object:
        # `load` passes api_key=None for a key it was not given (secrets_from_env=False):
        # read TOGETHER_API_KEY then, as when the argument is left out.
        if api_key is None:
            return secret_from_env("TOGETHER_API_KEY", default=None)()
        return api_key

    @field_validator("api_key")
    @classmethod
    def _check_new_api_key(cls, api_key: SecretStr | None) -> SecretStr | None:
        # Here rather than in the model check, so a refused assignment is not stored.
        if api_key is not None and api_key.get_secret_value():
            check_api_key(api_key)
        return api_key

    @field_validator(*_LIMITS)
    @classmethod
    def _check_new_limit(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None  # a field validator always has one
        check_limit(info.field_name, value)
        return value

    @model_validator(mode="after")
    def _check_client_settings(self) -> Self:
        check_api_key(self.api_key)
        check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)
        return self

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Map the key field to its environment variable, so `dumpd` never writes it."""
        return {"api_key": "TOGETHER_API_KEY"}

    def build_request(self, path: str, payload: Mapping[str, Any]) -> StreamRequest:
        """The transport's request for one streaming call, from the settings as they are now.

        Args:
            path: The endpoint under `base_url`, e.g. `"completions"` or `"chat/completions"`.
            payload: The JSON body, stream flags included.

        Returns:
            The request; pass it to `self._transport.stream_events` or
            `self._async_transport.stream_events`.

        Raises:
            TogetherConfigurationError: A setting or a body value that cannot be sent.
        """
        # Settings can change after construction; the key leaves only for a URL checked now.
        key = check_api_key(self.api_key)
        check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)
        for name in _LIMITS:
            check_limit(name, getattr(self, name))
        body = encode_payload(payload)
        connect_timeout, read_timeout = (
            self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        )
        return StreamRequest(
            url=f"{self.base_url.rstrip('/')}/{path}",
            headers=HEADERS,
            body=body,
            api_key=key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_retries=self.max_retries,
            max_event_bytes=self.max_event_bytes,
            max_connections=self.max_connections,
            deadline=self.deadline,
            verify=self.verify,
        )

    def get_token_ids(self, text: str) -> list[int]:
        """The token ids of `text`, from `custom_get_token_ids`.

        Together's models use their own tokenizers (Llama's, Qwen's, ...), which this package
        does not ship, and LangChain's GPT-2 fallback would count wrongly for them. Pass
        `custom_get_token_ids` (the model's tokenizer), or read `usage` after a call.

        Args:
            text: The text to count.

        Returns:
            What `custom_get_token_ids` returns.

        Raises:
            TogetherConfigurationError: `custom_get_token_ids` is not set.
        """
        # `custom_get_token_ids` is a field of LangChain's base model, declared after this mixin.
        custom: Callable[[str], list[int]] | None = getattr(self, "custom_get_token_ids", None)
        if custom is not None:
            return custom(text)
        msg = (
            f"{type(self).__name__} cannot count tokens for {self.model!r} on its own: "
            "Together's models use their own tokenizers, which this package does not ship. Pass "
            "custom_get_token_ids=<the model's tokenizer>, e.g. "
            "transformers.AutoTokenizer.from_pretrained('<the model on Hugging Face>').encode, "
            "or read generation_info['usage'] (prompt_tokens, completion_tokens) after a call."
        )
        raise TogetherConfigurationError(msg)

    async def aclose(self) -> None:
        """Close the running event loop's connection pool.

        Optional: `asyncio.run` closes each loop's pool when the loop shuts down. The next
        async call opens a new pool.
        """
        await self._async_transport.aclose()


def check_limit(name: str, value: Any) -> None:
    """Refuse a timeout, deadline, retry count or size that cannot work.

    Args:
        name: One of the client's numeric settings (`timeout`, `deadline`, `max_retries`,
            `max_event_bytes`, `max_connections`).
        value: Its value.

    Raises:
        TogetherConfigurationError: The value is out of range; the message names the setting.
    """
    try:
        if name == "timeout":
            ok = all(_seconds(part) for part in (value if isinstance(value, tuple) else (value,)))
            need = "a positive number of seconds, or a (connect, read) pair of them"
        elif name == "deadline":
            ok = value is None or _seconds(value)
            need = "a positive number of seconds, or None for no limit"
        elif name == "max_retries":
            ok, need = value >= 0, "0 or more"
        else:
            ok, need = value > 0, "at least 1"
    except TypeError:
        ok, need = False, "a number"
    if not ok:
        msg = f"{name} must be {need}, got {value!r}."
        raise TogetherConfigurationError(msg)


def _seconds(value: float) -> bool:
    return math.isfinite(value) and value > 0


def check_api_key(api_key: SecretStr | None) -> str:
    """The key's value, if an HTTP header can carry it as it is.

    Args:
        api_key: The configured key.

    Returns:
        The key.

    Raises:
        TogetherConfigurationError: No key, or one with control or non-ASCII characters
            (which the two HTTP clients would reject or encode differently); the message
            never contains the key.
    """
    key = "" if api_key is None else api_key.get_secret_value()
    if not key:
        raise TogetherConfigurationError(_NO_KEY)
    if not (key.isascii() and key.isprintable()):
        raise TogetherConfigurationError(_BAD_KEY)
    return key


@functools.lru_cache(maxsize=64)  # called per request; only passing checks are remembered
def check_base_url(base_url: str, *, allow_insecure_http: bool) -> None:
    """Refuse a `base_url` the key must not be sent to.

    Args:
        base_url: The configured URL.
        allow_insecure_http: Whether plain http to a host other than loopback is allowed.

    Raises:
        TogetherConfigurationError: Not http(s) with a host, a user name or password in the
            URL (never echoed), or plain http to another host without `allow_insecure_http`.
    """
    try:
        parts = urlsplit(base_url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket; not quoted, it may hold a password
        msg = "base_url is not a valid URL."
        raise TogetherConfigurationError(msg) from None
    if "@" in parts.netloc:
        # Checked first, and the URL is not quoted: it may hold a password.
        msg = (
            "base_url must not contain a user name or password (user:password@host): the "
            "client sends only the API key, and the URL is shown in logs and traces."
        )
        raise TogetherConfigurationError(msg)
    if parts.scheme not in ("http", "https") or not hostname:
        msg = f"base_url must be an http(s) URL with a host, got {base_url!r}."
        raise TogetherConfigurationError(msg)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(hostname):
        msg = (
            f"Refusing to send the API key in clear text to {hostname}: use https, or "
            "pass allow_insecure_http=True if this network is trusted."
        )
        raise TogetherConfigurationError(msg)
