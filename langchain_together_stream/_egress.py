"""How a request leaves this machine: the CAs it trusts and the proxy it goes through.

One policy for both transports, so the sync and the async path trust the same certificates and
use the same proxies (each client's own reading of the environment differs: requests trusts
`REQUESTS_CA_BUNDLE` and certifi, aiohttp `SSL_CERT_FILE` and the system store; requests
follows `HTTP(S)_PROXY`, aiohttp by default does not). Both clients are told explicitly
what to do and read nothing from the environment themselves.

Trust (`verify`):
    `False` turns verification off. A path is the CA bundle (a file, or a directory of
    hashed certificates) to trust. `True`, the default, trusts the first of
    `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, `SSL_CERT_FILE`, `SSL_CERT_DIR` that is set, else
    certifi's bundle (what requests trusts by default).

Proxies:
    `HTTPS_PROXY`, `HTTP_PROXY` and `ALL_PROXY` (lower case first, as urllib reads them),
    minus the hosts `NO_PROXY` names. A loopback host never goes through a proxy: the proxy's
    loopback is not this machine's, and an `http://` request would carry the API key to the
    proxy in clear. Over `https://` a proxy only tunnels (CONNECT) and never sees the key; an
    `http://` URL elsewhere is only possible with `allow_insecure_http`, which accepts that.
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
import urllib.request
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import certifi

from langchain_together_stream._net import is_loopback
from langchain_together_stream.errors import TogetherConfigurationError

CA_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""Where `verify=True` looks for a CA bundle, in this order, before certifi's."""

PROXY_ENVIRONMENT = (
    *(
        case(f"{name}_proxy")
        for name in ("https", "http", "all", "no")
        for case in (str.lower, str.upper)
    ),
    "REQUEST_METHOD",
)
"""The variables urllib's proxy lookup reads (`REQUEST_METHOD`: under CGI it skips
`HTTP_PROXY`, which a client could set)."""

DEFAULT = "default"
"""`trust()`'s answer for certifi's bundle, which requests already holds loaded."""


def trust(url: str, verify: bool | str) -> Literal[False, "default"] | str:
    """The CAs to trust for a request to `url`.

    Args:
        url: The request URL.
        verify: The `verify` setting.

    Returns:
        False for no verification, `DEFAULT` for certifi's bundle, or the path of the CA
        bundle (file or directory) to trust.

    Raises:
        TogetherConfigurationError: The bundle named by `verify` or the environment does not
            exist or holds no usable certificate (checked for https URLs only, the only
            ones it applies to).
    """
    if urlsplit(url).scheme != "https":
        return DEFAULT  # no TLS, nothing to verify
    if verify is False:
        return False
    if isinstance(verify, str):
        source, path = "verify", verify
    else:
        named = [(name, os.environ.get(name, "")) for name in CA_ENVIRONMENT]
        source, path = next(((name, value) for name, value in named if value), ("", ""))
        if not path:
            return DEFAULT
    if not os.path.exists(path):
        msg = f"The CA bundle named by {source} does not exist: {path!r}."
        raise TogetherConfigurationError(msg)
    try:
        # Loaded here for both paths (and kept), so a bad bundle fails the same way on each,
        # before anything is sent, instead of as a retried connection error.
        _context(path)
    except (ssl.SSLError, OSError) as exc:
        msg = f"The CA bundle named by {source} cannot be loaded ({path!r}): {exc}"
        raise TogetherConfigurationError(msg) from exc
    return path


def ssl_context(trusted: str) -> ssl.SSLContext:
    """A client TLS context trusting `trusted` (`DEFAULT` or a bundle path), built once.

    Args:
        trusted: What `trust()` returned, other than False.

    Returns:
        A verifying context (host name checked), shared by every request that trusts the same.
    """
    return _context(certifi.where() if trusted == DEFAULT else trusted)


@functools.lru_cache(maxsize=8)
def _context(path: str) -> ssl.SSLContext:
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def proxy_for(url: str) -> str | None:
    """The proxy a request to `url` goes through, or None to connect directly.

    Args:
        url: The request URL.

    Returns:
        The proxy URL (with a scheme, credentials kept), or None.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if host is None or is_loopback(host):
        return None
    environment = tuple(os.environ.get(name) for name in PROXY_ENVIRONMENT)
    return _proxy_for(parts.scheme, parts.netloc.rpartition("@")[2], environment)


@functools.lru_cache(maxsize=64)
def _proxy_for(scheme: str, netloc: str, environment: tuple[str | None, ...]) -> str | None:
    # urllib scans the whole environment on every call (~0.1 ms); the answer only changes
    # with the variables it reads, which are part of the cache key.
    del environment
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def split_credentials(proxy: str) -> tuple[str, str | None]:
    """A proxy URL without its credentials, and the `Proxy-Authorization` they make.

    Args:
        proxy: A proxy URL, maybe with `user:password@`.

    Returns:
        The URL without credentials, and the header value (None without credentials).
    """
    parts = urlsplit(proxy)
    if parts.username is None:
        return proxy, None
    login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    header = "Basic " + base64.b64encode(login.encode("utf-8")).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc)), header
