"""Asynchronous HTTP; the only module that imports aiohttp.

aiohttp was chosen over httpx by measurement (see the README's Design section): on this
project's loopback benchmark it streams 200 concurrent completions 2.7x faster and 500 about
12x faster, with a lower time to first token.

One connection pool per `TogetherLLM` per running event loop: an aiohttp session belongs to
the loop that created it, so the same instance used from two loops (two threads, or two
`asyncio.run` calls) gets one pool each. Each pool is closed when its loop shuts down, through
an async generator the loop finalises in `shutdown_asyncgens` (which `asyncio.run` calls), or
by `aclose()`. Reads return bytes as they arrive (`readany`), and the response is closed in
`finally`, so cancelling or leaving the stream drops the connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Iterator

import aiohttp

from langchain_together_stream._egress import proxy_for, split_credentials, ssl_context, trust
from langchain_together_stream._http import (
    MAX_ERROR_BODY,
    Attempts,
    StreamRequest,
    certificate_error,
    encoding_error,
    is_event_stream,
    response_error,
    transport_error,
    wants_error_body,
)
from langchain_together_stream._sse import EventDecoder, SSEEvent
from langchain_together_stream.errors import (
    TogetherConfigurationError,
    TogetherConnectionError,
    TogetherError,
)


class _LoopPool:
    """One loop's session, and the suspended generator that closes it at loop shutdown."""

    __slots__ = ("keeper", "session")

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.keeper: AsyncGenerator[None, None] | None = None


class AsyncTransport:
    """Lazily created connection pools, one per event loop; pickles as no pools."""

    def __init__(self) -> None:
        """Create the transport; no connection is made until the first request."""
        self._lock = threading.Lock()
        # Not a WeakKeyDictionary: each session refers to its loop, so a weak key would
        # never die; entries are removed when their loop shuts down instead.
        self._pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._pid = os.getpid()
        # Pools inherited across fork belong to the parent's sockets: kept, never used or
        # closed, so the child neither touches them nor warns about them.
        self._inherited: list[dict[asyncio.AbstractEventLoop, _LoopPool]] = []

    def __reduce__(self) -> tuple[type[AsyncTransport], tuple[()]]:
        """Pickle no live connections; the pools are re-created on first use.

        Returns:
            How to build an empty transport.
        """
        return (AsyncTransport, ())

    async def session(self, max_connections: int) -> aiohttp.ClientSession:
        """The running loop's pool, created on first use and again in a forked child.

        Args:
            max_connections: The most connections the pool opens at once.

        Returns:
            The session for the running loop.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pid != os.getpid():
                self._inherited.append(self._pools)
                self._pools, self._pid = {}, os.getpid()
            for stale in [other for other in self._pools if other.is_closed()]:
                del self._pools[stale]
            pool = self._pools.get(loop)
            if pool is not None:
                return pool.session
            connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0)
            session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False
            )
            pool = self._pools[loop] = _LoopPool(session)
        # Started here, in the loop, so the loop's asyncgen hooks adopt it and
        # `shutdown_asyncgens` closes the pool before the loop closes.
        pool.keeper = self._close_at_shutdown(loop, pool)
        await pool.keeper.asend(None)
        return session

    async def _close_at_shutdown(
        self, loop: asyncio.AbstractEventLoop, pool: _LoopPool
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._pools.get(loop) is pool:
                    del self._pools[loop]
            await pool.session.close()

    async def aclose(self) -> None:
        """Close the running loop's pool (a new one is made on the next call)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.get(loop)
        if pool is not None and pool.keeper is not None:
            await pool.keeper.aclose()

    async def stream_events(self, request: StreamRequest) -> AsyncGenerator[SSEEvent, None]:
        """`SyncTransport.stream_events` on the event loop, with the same retry rules.

        Args:
            request: What to send.

        Yields:
            Each SSE event with data, as its bytes arrive.

        Raises:
            TogetherError: A typed error for every failure; cancellation closes the response.
        """
        attempts = Attempts(request.max_retries, request.deadline)
        while True:
            response: aiohttp.ClientResponse | None = None
            try:
                response = await self._post(request, attempts)
                await _check_response(response, attempts.capped(request.read_timeout))
                events = _events(response, request.max_event_bytes, attempts)
                first = await anext(events, None)
                break
            except TogetherError as error:
                await asyncio.sleep(attempts.after(error, response))
            except BaseException:
                # Cancelled (or interrupted) before the first event: waiting for the headers,
                # the first event or an error body. Drop the connection now, or the server
                # keeps generating a billed answer for nobody and the socket lingers.
                if response is not None:
                    response.close()
                raise
        try:
            if first is not None:
                yield first
                async for event in events:
                    yield event
        finally:
            # After a complete body aiohttp has already released the connection to the
            # pool, so this only closes the socket when the caller stopped early.
            await events.aclose()
            response.close()

    async def _post(self, request: StreamRequest, attempts: Attempts) -> aiohttp.ClientResponse:
        session = await self.session(request.max_connections)
        # aiohttp's total timeout spans the whole response, body included: the deadline.
        timeout = aiohttp.ClientTimeout(
            total=attempts.remaining(),
            sock_connect=request.connect_timeout,
            sock_read=request.read_timeout,
        )
        # CAs and proxies come from `_egress`, the policy both paths share; the session
        # reads nothing from the environment itself (trust_env=False).
        trusted = trust(request.url, request.verify)
        proxy, proxy_authorization = split_credentials(proxy_for(request.url) or "")
        with _mapped_errors():
            return await session.post(
                request.url,
                data=request.body,
                headers=request.headers_with_auth(),
                timeout=timeout,
                allow_redirects=False,
                ssl=False if trusted is False else ssl_context(trusted),
                proxy=proxy or None,
                proxy_headers=(
                    None
                    if proxy_authorization is None
                    else {"Proxy-Authorization": proxy_authorization}
                ),
            )


async def _events(
    response: aiohttp.ClientResponse, max_event_bytes: int, attempts: Attempts
) -> AsyncGenerator[SSEEvent, None]:
    decoder = EventDecoder(max_event_bytes=max_event_bytes)
    read = response.content.readany
    try:
        with _mapped_errors():
            while chunk := await read():
                for event in decoder.feed(chunk):
                    yield event
    except TogetherConnectionError as error:
        raise attempts.deadline_error(error) from error.__cause__
    for event in decoder.end():
        yield event


async def _check_response(response: aiohttp.ClientResponse, body_seconds: float) -> None:
    status, headers = response.status, response.headers
    if not is_event_stream(status, headers):
        body = await _read_error_body(response, body_seconds) if wants_error_body(status) else b""
        raise response_error(status, response.reason, headers, body)
    if (error := encoding_error(headers)) is not None:
        raise error


async def _read_error_body(response: aiohttp.ClientResponse, seconds: float) -> bytes:
    """Up to `MAX_ERROR_BODY` bytes, read until the body ends or `seconds` have passed.

    `content.read(n)` returns what one segment brought, so it is called until the body ends:
    a message split over two writes must keep its type (a credit-limit 429 is final).
    """
    body = bytearray()

    async def fill() -> None:
        while len(body) < MAX_ERROR_BODY:
            chunk = await response.content.read(MAX_ERROR_BODY - len(body))
            if not chunk:
                return
            body.extend(chunk)

    with contextlib.suppress(TogetherError), _mapped_errors():
        await asyncio.wait_for(fill(), seconds)
    return bytes(body)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Translate every aiohttp/socket failure into the package's own errors."""
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:
        raise certificate_error(exc) from exc
    except (aiohttp.ServerTimeoutError, TimeoutError, asyncio.TimeoutError) as exc:
        raise transport_error(exc, timed_out=True) from exc
    except aiohttp.InvalidURL as exc:
        msg = f"Invalid base_url: {exc}"
        raise TogetherConfigurationError(msg) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise transport_error(exc, timed_out=False) from exc
