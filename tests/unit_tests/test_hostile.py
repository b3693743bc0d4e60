"""Hostile servers over real loopback sockets: every fault is typed, keeps the streamed text,
reports `on_llm_error` once, ends within the configured timeouts, gives the connection back,
and leaves the instance usable, on the sync and on the async path alike (each test body runs
once through `invoke` and once through `ainvoke`).

The scenarios in `FAULTS` are the rows of README.md's "Failure behaviour" table; the table is
parsed and each row is checked against what the scenario actually does, so it cannot drift.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Literal

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_together_stream import (
    TogetherAPIError,
    TogetherCertificateError,
    TogetherConnectionError,
    TogetherError,
    TogetherStreamError,
    TogetherTimeoutError,
    _http,
)
from tests.conftest import STATUS_CLASSES, make_llm
from tests.hostile import (
    FAST,
    HANG_BOUND,
    TEXT,
    TOKENS,
    Counter,
    Path,
    checked_out,
    closed_port_url,
    silent_listener,
)
from tests.scripted_server import (
    SSE,
    Reply,
    ScriptedServer,
    Seen,
    completion_chunk,
    sse_body,
    token_stream,
)
from tests.tls_certs import HAVE_OPENSSL, untrusted_server_context

README = FilePath(__file__).resolve().parents[2] / "README.md"
PARTIAL = "Half"
_HALF: list[bytes | float] = sse_body(completion_chunk("Hal"), completion_chunk("f"), done=False)
_JSON = [("Content-Type", "application/json")]
_MIB = b"x" * (1 << 20)
PATIENT = (2.0, 2.0)
"""make_llm's timeouts, for calls that meet no stall."""


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry waits both transports are told to sleep, and make them zero."""
    recorded: list[float] = []
    decide = _http.Attempts.after

    def after(self: _http.Attempts, *args: Any, **kwargs: Any) -> float:
        recorded.append(decide(self, *args, **kwargs))
        return 0.0

    monkeypatch.setattr(_http.Attempts, "after", after)
    return recorded


# --- the fault catalogue (README "Failure behaviour") -----------------------------------------


@dataclass(frozen=True)
class Fault:
    """One way a server (or the network) can misbehave, and what the caller must get."""

    error: type[TogetherError]
    partial: str
    reply: Reply | None = None
    target: Literal["server", "silent", "refused", "untrusted-tls"] = "server"
    settings: dict[str, Any] = field(default_factory=dict)


def _envelope(status: int) -> Reply:
    body = {"id": "req-7", "error": {"message": f"scripted {status}", "type": "some_type"}}
    return Reply(status=status, headers=_JSON, body=[json.dumps(body).encode()], framing="length")


def _redirect(status: int) -> Reply:
    return Reply(status=status, headers=[("Location", "http://127.0.0.1:9/v1/completions")])


def _after_half(*parts: bytes | float, reset: bool = False) -> Reply:
    return Reply(body=[*_HALF, *parts], reset=reset)


def _raw_chunked(parts: list[bytes | float]) -> list[bytes | float]:
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts if isinstance(p, bytes)]


FAULTS: dict[str, Fault] = {
    **{f"http-{s}": Fault(cls, "", _envelope(s)) for s, cls in STATUS_CLASSES.items()},
    **{f"http-{s}": Fault(TogetherAPIError, "", _redirect(s)) for s in (301, 302, 307, 308)},
    "200-json": Fault(
        TogetherStreamError,
        "",
        Reply(headers=_JSON, body=[b'{"choices": [{"text": "all"}]}'], framing="length"),
    ),
    "200-html": Fault(
        TogetherStreamError,
        "",
        Reply(headers=[("Content-Type", "text/html")], body=[b"<html>login</html>"]),
    ),
    "200-no-content-type": Fault(
        TogetherStreamError, "", Reply(headers=[], body=token_stream(TOKENS))
    ),
    "200-compressed": Fault(
        TogetherStreamError,
        "",
        Reply(headers=[*SSE, ("Content-Encoding", "gzip")], body=[b"\x1f\x8b\x08\x00"]),
    ),
    "connection-refused": Fault(TogetherConnectionError, "", target="refused"),
    "stall-before-headers": Fault(TogetherTimeoutError, "", target="silent", settings=FAST),
    "tls-untrusted-certificate": Fault(TogetherCertificateError, "", target="untrusted-tls"),
    "stall-before-first-byte": Fault(TogetherTimeoutError, "", Reply(body=[30.0]), settings=FAST),
    "stall-after-tokens": Fault(TogetherTimeoutError, PARTIAL, _after_half(30.0), settings=FAST),
    "reset-before-first-byte": Fault(TogetherConnectionError, "", Reply(reset=True)),
    # The pause lets the tokens be read before the RST: a kernel drops unread bytes on RST.
    "reset-mid-stream": Fault(TogetherConnectionError, PARTIAL, _after_half(0.1, reset=True)),
    "truncated-clean-end": Fault(TogetherStreamError, PARTIAL, _after_half()),
    "truncated-content-length": Fault(
        TogetherConnectionError,
        PARTIAL,
        Reply(headers=[*SSE, ("Content-Length", "100000")], body=list(_HALF), framing="close"),
    ),
    "truncated-chunk": Fault(
        TogetherConnectionError,
        PARTIAL,
        Reply(
            headers=[*SSE, ("Transfer-Encoding", "chunked")],
            body=[*_raw_chunked(_HALF), b"ff\r\ndata: {"],
            framing="close",
        ),
    ),
    "malformed-json": Fault(TogetherStreamError, PARTIAL, _after_half(b'data: {"choices": [\n\n')),
    "invalid-utf8": Fault(
        TogetherStreamError, PARTIAL, _after_half(b'data: {"choices": [{"text": "\xff\xfe"}]}\n\n')
    ),
    "error-object": Fault(
        TogetherStreamError,
        PARTIAL,
        _after_half(b'data: {"error": {"message": "engine crashed", "type": "server_error"}}\n\n'),
    ),
    "error-object-first": Fault(
        TogetherStreamError,
        "",
        Reply(body=[b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']),
    ),
    "error-event": Fault(
        TogetherStreamError, PARTIAL, _after_half(b'event: error\ndata: {"message": "bad"}\n\n')
    ),
    "finish-reason-error": Fault(
        TogetherStreamError,
        PARTIAL,
        _after_half(*sse_body(completion_chunk("", "error"), done=False)),
    ),
    "several-choices": Fault(
        TogetherStreamError,
        PARTIAL,
        _after_half(b'data: {"choices": [{"index": 1, "text": "other"}]}\n\n'),
    ),
    "oversized-event": Fault(TogetherStreamError, PARTIAL, _after_half(b"data: ", *([_MIB] * 100))),
}


@dataclass
class Observed:
    """What one scenario did."""

    error: TogetherError
    retries: int
    requests: int
    callbacks: Counter
    elapsed: float
    leaked: int
    next_text: str
    leaked_after_next: int


def observe(name: str, sleeps: list[float], path: Path, **settings: Any) -> Observed:
    """Run scenario `name` once with `max_retries=1`, then a good call on the same instance."""
    fault = FAULTS[name]
    state = {"faulty": True}

    def script(seen: Seen) -> Reply:
        if state["faulty"] and fault.reply is not None:
            return fault.reply
        return Reply(body=token_stream(TOKENS))

    with (
        ScriptedServer(script) as server,
        silent_listener() as silent_url,
        contextlib.ExitStack() as stack,
    ):
        # Only the stalls get FAST's 0.3 s read timeout: on a loaded machine a healthy server
        # can be that slow, which would turn any other scenario into a timeout.
        options: dict[str, Any] = {"max_retries": 1, **fault.settings, **settings}
        if fault.target == "silent":
            options["base_url"] = silent_url
        elif fault.target == "untrusted-tls":
            if not HAVE_OPENSSL:
                pytest.skip("the openssl command is needed to make a test certificate")
            tls = ScriptedServer(script, tls=untrusted_server_context())
            options["base_url"] = stack.enter_context(tls).base_url
        elif fault.target == "refused":
            options["base_url"] = closed_port_url()
        llm = make_llm(server, **options)
        counter = Counter()
        start = time.monotonic()
        with pytest.raises(TogetherError) as info:
            path.invoke(llm, config={"callbacks": [counter]})
        elapsed = time.monotonic() - start
        requests = len(server.seen)
        leaked = path.checked_out(llm)
        state["faulty"] = False
        llm.base_url = server.base_url
        llm.timeout = PATIENT
        next_text = path.invoke(llm)
        return Observed(
            error=info.value,
            retries=len(sleeps),
            requests=requests,
            callbacks=counter,
            elapsed=elapsed,
            leaked=leaked,
            next_text=next_text,
            leaked_after_next=path.checked_out(llm),
        )


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_fault_is_typed_reported_once_bounded_released_and_recoverable(
    name: str, sleeps: list[float], path: Path
) -> None:
    fault = FAULTS[name]
    seen = observe(name, sleeps, path)
    assert type(seen.error) is fault.error, seen.error
    assert seen.error.partial_text == fault.partial
    assert seen.error.message  # something a person can act on
    assert len(seen.callbacks.errors) == 1
    assert seen.callbacks.errors[0] is seen.error
    assert seen.callbacks.ends == 0
    assert seen.elapsed < HANG_BOUND
    assert seen.leaked == 0
    assert seen.next_text == TEXT
    assert seen.leaked_after_next == 0
    if fault.target == "server":
        assert seen.requests == 1 + seen.retries


# --- bytes that arrive with the end of the connection are kept --------------------------------


class _HoldFirstToken(BaseCallbackHandler):
    """Keeps the caller busy on the first token until the server has sent the rest and hung up.

    The sync handler runs in an executor thread on the async path, so the event loop receives
    the last token and the end of the connection while the stream is not being read: the
    moment a reader can lose bytes it was already given.
    """

    def __init__(self, server: ScriptedServer, first_token_seen: threading.Event) -> None:
        self.server = server
        self.first_token_seen = first_token_seen

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if self.first_token_seen.is_set():
            return
        self.first_token_seen.set()
        assert self.server.wait_closed() is not None
        # Room for the loop to take in the last segment and the end of the connection.
        time.sleep(0.02)


def _wire(parts: list[bytes | float]) -> bytes:
    return b"".join(part for part in parts if isinstance(part, bytes))


_ROUNDS = 10
_LAST_WITH_END: dict[str, tuple[list[tuple[str, str]], bytes, bytes]] = {
    # The last token's chunk and the start of one that never ends, in one write.
    "truncated-chunk": (
        [*SSE, ("Transfer-Encoding", "chunked")],
        _wire(_raw_chunked(_HALF[:1])),
        _wire(_raw_chunked(_HALF[1:])) + b"ff\r\ndata: {",
    ),
    # The last token, then the close, far short of the announced length.
    "truncated-content-length": (
        [*SSE, ("Content-Length", "100000")],
        _wire(_HALF[:1]),
        _wire(_HALF[1:]),
    ),
}


@pytest.mark.parametrize("name", list(_LAST_WITH_END))
def test_the_last_token_arriving_with_the_end_of_the_connection_is_kept(
    name: str, serve: Any, path: Path
) -> None:
    headers, first, last_and_end = _LAST_WITH_END[name]
    first_token_seen = threading.Event()

    def script(seen: Seen) -> Reply:
        # Hold the last token until the caller is busy with the first one.
        return Reply(headers=headers, body=[first, first_token_seen, last_and_end], framing="close")

    server = serve(script)
    # Nothing here stalls: generous timeouts, so a loaded machine cannot turn a round into one.
    llm = make_llm(server, max_retries=0, timeout=(5.0, 5.0))
    # Repeated because whether the loop takes in the last segment and the close before the
    # reader comes back is up to the scheduler; before the fix every round hit it (100 of 100).
    for _ in range(_ROUNDS):
        first_token_seen.clear()
        hold = _HoldFirstToken(server, first_token_seen)
        with pytest.raises(TogetherConnectionError) as info:
            path.invoke(llm, config={"callbacks": [hold]})
        assert info.value.partial_text == PARTIAL, repr(info.value)
    assert path.checked_out(llm) == 0


# --- README's "Failure behaviour" table is checked against the scenarios ----------------------


def _readme_rows() -> list[tuple[str, str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Failure behaviour", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        fault_id = re.match(r"`([^`]+)`", cells[0])
        error = re.search(r"`(Together\w+)`", cells[1])
        assert fault_id, line
        assert error, line
        rows.append((fault_id[1], error[1], cells[2].split()[0], cells[3].split()[0]))
    return rows


def test_readme_table_lists_every_fault_once() -> None:
    names = [row[0] for row in _readme_rows()]
    assert len(names) == len(set(names))
    assert set(names) == set(FAULTS)


@pytest.mark.parametrize("row", _readme_rows(), ids=str)
def test_readme_failure_table_row_matches_behaviour(
    row: tuple[str, str, str, str], sleeps: list[float], path: Path
) -> None:
    name, error, partial, retried = row
    seen = observe(name, sleeps, path)
    assert type(seen.error).__name__ == error
    assert partial in ("kept", "empty")
    assert seen.error.partial_text == (PARTIAL if partial == "kept" else "")
    assert retried in ("yes", "no")
    assert (seen.retries > 0) == (retried == "yes")


# --- every documented status x every body Together's edge may send ----------------------------

_BODIES: dict[str, Callable[[int], Reply]] = {
    "json": _envelope,
    "html": lambda status: Reply(
        status=status,
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=[b"<!DOCTYPE html><html><body><h1>%d Error</h1><p>nginx</p></body></html>" % status],
        framing="length",
    ),
    "empty": lambda status: Reply(status=status, headers=[], body=[], framing="length"),
}


@pytest.mark.parametrize("body", list(_BODIES))
@pytest.mark.parametrize("status", list(STATUS_CLASSES))
def test_every_documented_status_with_every_body(
    serve: Any, status: int, body: str, path: Path
) -> None:
    server = serve(_BODIES[body](status), Reply(body=token_stream(TOKENS)))
    llm = make_llm(server, max_retries=0)
    counter = Counter()
    expected = STATUS_CLASSES[status]
    with pytest.raises(TogetherAPIError) as info:
        path.invoke(llm, config={"callbacks": [counter]})
    error = info.value
    assert type(error) is expected
    assert error.status_code == status
    assert str(status) in str(error)
    if body == "json":
        assert error.message == f"scripted {status}"
        assert (error.error_type, error.request_id) == ("some_type", "req-7")
    else:
        # No markup, no empty message: the status line is what a person can act on.
        assert error.message == f"{status} Scripted"
    assert len(counter.errors) == 1
    assert counter.errors[0] is error
    assert path.checked_out(llm) == 0
    assert path.invoke(llm) == TEXT
    assert len(server.seen) == 2


# --- resource bounds ---------------------------------------------------------------------------


def _hundred_mib_line() -> Iterator[bytes | float]:
    yield b"data: "
    yield from [_MIB] * 100


def test_a_100_mib_line_without_newline_is_refused_in_bounded_memory(serve: Any) -> None:
    server = serve(Reply(body=[*_HALF, *_hundred_mib_line()]), Reply(body=token_stream(TOKENS)))
    llm = make_llm(server)
    tracemalloc.start()
    try:
        with pytest.raises(TogetherStreamError, match="larger than") as info:
            for _ in llm.stream("x"):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.partial_text == PARTIAL
    # The event cap is 4 MiB; a few copies of it are fine, 100 MiB is not.
    assert peak < 32 * (1 << 20), peak
    assert server.wait_disconnect(0) is not None  # the server was cut off, not read to the end
    assert checked_out(llm) == 0
    assert llm.invoke("x") == TEXT


def test_ten_thousand_keepalive_comments_between_two_tokens(serve: Any) -> None:
    first, second = sse_body(completion_chunk("Hello"), completion_chunk(" world", "stop"))[:2]
    comments = [b": keep-alive\n\n"] * 10_000
    server = serve(Reply(body=[first, *comments, second, b"data: [DONE]\n\n"]))
    llm = make_llm(server)
    counter = Counter()
    assert llm.invoke("x", config={"callbacks": [counter]}) == "Hello world"
    assert "".join(counter.tokens) == "Hello world"
    assert checked_out(llm) == 0


def test_keepalive_comments_in_one_huge_write_are_not_an_oversized_event(serve: Any) -> None:
    # 10,000 comments are ~140 kB; with a 64 kB event cap they must still pass, each being
    # its own (data-less) event.
    wire = b"".join(p for p in token_stream(["a", "b"]) if isinstance(p, bytes))
    head, tail = wire.split(b"\n\n", 1)
    server = serve(Reply(body=[head + b"\n\n" + b": ping\n\n" * 10_000 + tail]))
    assert make_llm(server, max_event_bytes=65536).invoke("x") == "ab"
