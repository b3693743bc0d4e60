"""N concurrent paced streams in one event loop: time to first token and added latency.

    python -m benchmarks.concurrency            # N = 1, 10, 100, 1000 (`make bench-concurrency`)
    python -m benchmarks.concurrency --quick    # N = 1, 10, short streams, seconds
    python -m benchmarks.concurrency --clients ours --out /tmp/bench

Each (client, N) run is a fresh subprocess with one asyncio event loop: it imports and warms
the client on one short stream, builds a new client (an empty connection pool), starts N
tasks that wait on one `asyncio.Event`, sets it (the release, time zero), and each task
streams one paced completion (`TOKENS` tokens, one every `INTERVAL_MS`) through `astream`,
with a per-token callback counting tokens. The load server (`benchmarks/loadserver.py
--asyncio`, its own process) writes its `time.monotonic_ns()` into each token, so

- time to first token (TTFT) = the token's arrival in the task minus the release;
- TTFT after the server's first byte = arrival of the first token minus the server's first write;
- added latency = arrival of each token in the task minus the server's write of it (all tokens);
- the server also reports when it had read each request, which splits the TTFT in two.

The floor row is a minimal asyncio raw-socket reader (`asyncio.open_connection`, split on
blank lines, `json.loads`), i.e. the load server alone with the least client there can be.
"""

# The report is for people: it uses the multiplication sign on purpose.
# ruff: noqa: RUF001
# Imports inside the client factories are the point: a missing peer must not break the rest.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.clients import API_KEY, MODEL, PROMPT, _ours_llm
from benchmarks.run import CONCURRENCY_HEADING, ROOT, load_server, splice_section, url

TOKENS = 20
INTERVAL_MS = 50
GOAL_N = 1000
GOAL_FLOOR_RATIO = 4.0  # ours' TTFT p99 at most this times the raw asyncio floor's, same run


@dataclass(frozen=True)
class Plan:
    """What one invocation runs."""

    ns: tuple[int, ...]
    tokens: int
    interval_ms: int
    rounds: dict[int, int]  # rounds per N, pooled into one set of percentiles
    run_timeout: float  # seconds for one round's streams before they are cancelled


FULL = Plan((1, 10, 100, 1000), TOKENS, INTERVAL_MS, {1: 5, 10: 3, 100: 2, 1000: 1}, 60.0)
QUICK = Plan((1, 10), 5, INTERVAL_MS, {1: 2, 10: 1}, 20.0)


# --- the clients -----------------------------------------------------------------------------

Stream = Callable[[], AsyncIterator[str]]
"""Stream one completion, yielding each token's text."""


@dataclass(frozen=True)
class Client:
    """One row group of the table."""

    name: str
    label: str
    needs: tuple[str, ...]

    def skip_reason(self) -> str | None:
        """Why this client cannot run here, or None."""
        missing = [module for module in self.needs if importlib.util.find_spec(module) is None]
        if missing:
            return f"not installed: {', '.join(missing)} (run `make bench` for the peers)"
        return None


CLIENTS: tuple[Client, ...] = (
    Client("floor", "floor: asyncio raw-socket reader (server alone)", ()),
    Client("ours", "ours: TogetherLLM.astream (aiohttp)", ("langchain_together_stream",)),
    Client(
        "threadpool",
        "LangChain default astream (_stream in the loop's executor)",
        ("langchain_together_stream",),
    ),
    Client("langchain_openai", "langchain-openai OpenAI.astream", ("langchain_openai",)),
)
DIAGNOSTICS: tuple[Client, ...] = (
    # Run at the largest N only, to split our time to first token between the layers.
    Client(
        "diag_aiohttp",
        "aiohttp alone: ClientSession.post + readany, our connector settings, our imports",
        ("aiohttp",),
    ),
    Client(
        "diag_ours_bare",
        "ours without LangChain: TogetherLLM._astream, no callbacks",
        ("langchain_together_stream",),
    ),
    Client(
        "diag_ours_gc_frozen",
        "ours: TogetherLLM.astream after gc.freeze()",
        ("langchain_together_stream",),
    ),
)
BY_NAME = {client.name: client for client in CLIENTS + DIAGNOSTICS}
NO_CALLBACKS = ("floor", "diag_aiohttp", "diag_ours_bare")


class Built:
    """A client built for one round: how to stream, how to close, a token counter."""

    def __init__(self, stream: Stream, aclose: Callable[[], Any] | None = None) -> None:
        """Wrap `stream`; `aclose` (sync or async) releases the client's pool."""
        self.stream = stream
        self._aclose = aclose

    async def aclose(self) -> None:
        """Close the client's pool, if it has one."""
        if self._aclose is not None:
            result = self._aclose()
            if asyncio.iscoroutine(result):
                await result


class Counter:
    """Counts `on_llm_new_token` calls (the floor has no callbacks and imports no LangChain)."""

    def __init__(self, name: str) -> None:
        """Start at zero."""
        self.tokens = 0
        self.handler = None if name in NO_CALLBACKS else _inline_counter(self)


def _inline_counter(counter: Counter) -> Any:
    try:
        from langchain_core.callbacks import BaseCallbackHandler
    except ImportError:
        return None

    class InlineCounter(BaseCallbackHandler):
        # Without run_inline, langchain-core's async callback manager runs a sync handler in
        # the loop's default executor (a thread hop per token): the benchmark would measure
        # its own callback. Inline, it costs the same in every client.
        run_inline = True

        def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
            if token:  # the final chunk (finish reason, usage) carries no text
                counter.tokens += 1

    return InlineCounter()


def _langchain_stream(llm: Any, counter: Counter) -> Stream:
    config = {"callbacks": [counter.handler]}

    def stream() -> AsyncIterator[str]:
        return llm.astream(PROMPT, config=config)  # type: ignore[no-any-return]

    return stream


def build(name: str, base_url: str, n: int, counter: Counter) -> Built:
    """A new client of kind `name` for `n` concurrent streams to `base_url`."""
    if name == "floor":
        return Built(lambda: _raw_stream(base_url))
    if name in ("ours", "diag_ours_gc_frozen", "diag_ours_bare"):
        llm = _ours_llm(base_url)  # max_connections defaults to 1000
        if n > llm.max_connections:
            llm = llm.model_copy(update={"max_connections": n})
        if name == "diag_ours_bare":

            async def bare() -> AsyncIterator[str]:
                async for chunk in llm._astream(PROMPT):
                    yield chunk.text

            return Built(bare, llm.aclose)
        return Built(_langchain_stream(llm, counter), llm.aclose)
    if name == "diag_aiohttp":
        return _aiohttp_alone(base_url, n)
    if name == "threadpool":
        from langchain_core.language_models.llms import BaseLLM

        from langchain_together_stream import TogetherLLM

        class ThreadPoolTogetherLLM(TogetherLLM):
            """Ours with langchain-core's default `_astream`: `_stream` run in the executor."""

            _astream = BaseLLM._astream

        llm = ThreadPoolTogetherLLM(
            model=MODEL, api_key=API_KEY, base_url=base_url, max_retries=0, timeout=(10.0, 60.0)
        )
        return Built(_langchain_stream(llm, counter))
    if name == "langchain_openai":
        from langchain_openai import OpenAI
        from openai import DefaultAsyncHttpxClient

        try:
            import httpx2 as httpx_module  # what openai 3.x is built on
        except ImportError:
            import httpx as httpx_module  # type: ignore[no-redef]
        # openai's default pool is max_connections=1000, max_keepalive_connections=100:
        # raised to at least N (+ slack) so the pool never queues a stream.
        size = max(n + 16, 1000)
        http_client = DefaultAsyncHttpxClient(
            limits=httpx_module.Limits(max_connections=size, max_keepalive_connections=size)
        )
        llm = OpenAI(
            model=MODEL,
            api_key=API_KEY,
            base_url=base_url,
            max_retries=0,
            http_async_client=http_client,
        )
        return Built(_langchain_stream(llm, counter), http_client.aclose)
    msg = f"unknown client {name}"
    raise ValueError(msg)


def _texts(pending: bytes, data: bytes) -> tuple[list[str], bytes, bool]:
    """Token texts of the complete events in `pending + data`, the rest, and whether done."""
    *events, rest = (pending + data).split(b"\n\n")
    texts: list[str] = []
    for item in events:
        start = item.find(b"data: ")
        if start < 0:
            continue
        payload = item[start + 6 :]
        if payload.startswith(b"[DONE]"):
            return texts, rest, True
        texts.append(json.loads(payload)["choices"][0]["text"])
    return texts, rest, False


def _aiohttp_alone(base_url: str, n: int) -> Built:
    """aiohttp with the session settings of `_async_transport`, and nothing of ours.

    Our package (and so langchain-core) is imported all the same, so the process holds the
    same heap as ours: the cyclic collector's full passes cost the same in both rows, and the
    difference between them is our own per-stream work.
    """
    import aiohttp

    import langchain_together_stream  # noqa: F401  (the same heap as ours; see above)

    connector = aiohttp.TCPConnector(limit=max(n, 1000), limit_per_host=0)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)
    body = json.dumps({"model": MODEL, "prompt": PROMPT, "stream": True}).encode()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    async def stream() -> AsyncIterator[str]:
        async with session.post(f"{base_url}/completions", data=body, headers=headers) as reply:
            pending, done = b"", False
            for _ in range(1_000_000):
                data = await reply.content.readany()
                if not data:
                    return
                texts, pending, done = _texts(pending, data)
                for text in texts:
                    yield text
                if done:
                    return

    return Built(stream, session.close)


async def _raw_stream(base_url: str) -> AsyncIterator[str]:
    """The floor: one connection, one request, `read`, split on blank lines, `json.loads`."""
    parts = base_url.split("/", 3)  # http: '' host:port path
    host, port = parts[2].split(":")
    body = json.dumps({"model": MODEL, "prompt": PROMPT, "stream": True}).encode()
    request = (
        f"POST /{parts[3]}/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        pending, done = b"", False
        for _ in range(1_000_000):
            data = await reader.read(65536)
            if not data:
                return
            texts, pending, done = _texts(pending, data)
            for text in texts:
                yield text
            if done:
                return
    finally:
        writer.close()


# --- one run, in a child process -------------------------------------------------------------


@dataclass
class RunResult:
    """What one (client, N) child measured, pooled over its rounds."""

    client: str
    n: int
    rounds: int
    ttft_ms: list[float] = field(default_factory=list)  # per stream, from the release
    ttft_server_ms: list[float] = field(default_factory=list)  # from the server's first byte
    latency_ms: list[float] = field(default_factory=list)  # per token
    reached_server_ms: list[float] = field(default_factory=list)  # release → request read
    server_first_byte_ms: list[float] = field(default_factory=list)  # request read → first byte
    wall_s: list[float] = field(default_factory=list)  # per round
    threads_peak: int | None = None  # filled in by the parent
    failed: int = 0  # streams that raised, timed out or lost tokens
    callbacks: int = 0
    tokens: int = 0
    errors: list[str] = field(default_factory=list)


def _threads(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class ThreadSampler:
    """Peak OS thread count of another process, read from `/proc` every 5 ms.

    Sampled from the parent, so the measurement takes no GIL in the process measured.
    """

    def __init__(self, pid: int, limit: float) -> None:
        """Sample `pid` for at most `limit` seconds."""
        self.pid = pid
        self.peak: int | None = None
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        while time.monotonic() < deadline and not self._stop.wait(0.005):
            count = _threads(self.pid)
            if count is not None:
                self.peak = max(self.peak or 0, count)

    def __enter__(self) -> ThreadSampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=5)


def _server_stats(port: int) -> list[tuple[int, int]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/stats")
        pairs: list[list[int]] = json.loads(connection.getresponse().read())
        return [(received, first_byte) for received, first_byte in pairs]
    finally:
        connection.close()


def _raise_fd_limit(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * n + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


async def _one_round(name: str, port: int, plan: Plan, result: RunResult, counter: Counter) -> None:
    n = result.n
    base_url = url(port, "chunked", plan.tokens, plan.interval_ms * 1000)
    client = build(name, base_url, n, counter)
    gate = asyncio.Event()
    released = 0
    arrivals: list[list[tuple[int, str]]] = [[] for _ in range(n)]

    async def one(index: int) -> None:
        await gate.wait()
        seen = arrivals[index]
        async for text in client.stream():
            seen.append((time.monotonic_ns(), text))

    tasks = [asyncio.ensure_future(one(index)) for index in range(n)]
    await asyncio.sleep(0)  # every task is now waiting on the gate
    _server_stats(port)  # clear the server's record of earlier requests
    try:
        released = time.monotonic_ns()
        gate.set()
        _, pending = await asyncio.wait(tasks, timeout=plan.run_timeout)
        ended = time.monotonic_ns()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    result.wall_s.append((ended - released) / 1e9)
    for index, task in enumerate(tasks):
        error = None if task in pending else task.exception()
        seen = [(now, text) for now, text in arrivals[index] if text]
        if task in pending or error is not None or len(seen) != plan.tokens:
            result.failed += 1
            reason = "timed out" if task in pending else repr(error)
            if len(result.errors) < 5:
                result.errors.append(f"{reason}; {len(seen)} of {plan.tokens} tokens")
        if seen:
            result.ttft_ms.append((seen[0][0] - released) / 1e6)
            result.ttft_server_ms.append((seen[0][0] - int(seen[0][1])) / 1e6)
        result.latency_ms.extend((now - int(text)) / 1e6 for now, text in seen)
        result.tokens += len(seen)
    for received, first_byte in _server_stats(port):
        result.reached_server_ms.append((received - released) / 1e6)
        result.server_first_byte_ms.append((first_byte - received) / 1e6)


async def _child(name: str, port: int, n: int, plan: Plan) -> RunResult:
    result = RunResult(name, n, plan.rounds[n])
    counter = Counter(name)
    # Warm-up: imports, lazy initialisation, the executor's first thread; then a new client.
    warm = build(name, url(port, "chunked", 2, 1000), 1, counter)
    async for _ in warm.stream():
        pass
    await warm.aclose()
    counter.tokens = 0
    if name == "diag_ours_gc_frozen":
        # What an application gets by freezing its start-up heap (imports, models) out of the
        # cyclic collector's reach: full collections then walk only the streams' objects.
        gc.collect()
        gc.freeze()
    for _ in range(plan.rounds[n]):
        await _one_round(name, port, plan, result, counter)
    result.callbacks = counter.tokens
    return result


def child_main(name: str, port: int, n: int, quick: bool) -> None:
    """Run one (client, N) measurement and print it as JSON on the last line."""
    _raise_fd_limit(n)
    plan = QUICK if quick else FULL
    result = asyncio.run(_child(name, port, n, plan))
    print(json.dumps(asdict(result)), flush=True)


# --- the parent: every client at every N, then the report -----------------------------------


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    """The figures of one (client, N) in the table."""

    client: str
    n: int
    ttft_p50: float | None = None
    ttft_p99: float | None = None
    ttft_server_p99: float | None = None
    reached_server_p99: float | None = None
    latency_p99: float | None = None
    wall_s: float | None = None
    threads_peak: int | None = None
    failed: str = ""
    note: str = ""


def summarise(result: RunResult, plan: Plan) -> Row:
    """Percentiles of one child's pooled samples."""
    expected = result.n * result.rounds
    if result.client not in NO_CALLBACKS and result.callbacks != result.tokens:
        result.errors.append(f"{result.callbacks} callbacks for {result.tokens} tokens")
    return Row(
        client=result.client,
        n=result.n,
        ttft_p50=_percentile(result.ttft_ms, 0.5),
        ttft_p99=_percentile(result.ttft_ms, 0.99),
        ttft_server_p99=_percentile(result.ttft_server_ms, 0.99),
        reached_server_p99=_percentile(result.reached_server_ms, 0.99),
        latency_p99=_percentile(result.latency_ms, 0.99),
        wall_s=max(result.wall_s) if result.wall_s else None,
        threads_peak=result.threads_peak,
        failed=f"{result.failed}/{expected}" if result.failed else "0",
        note="; ".join(dict.fromkeys(result.errors)),
    )


def run_child(name: str, port: int, n: int, plan: Plan, *, quick: bool) -> Row:
    """One (client, N) in a fresh interpreter, bounded by a timeout."""
    command = [sys.executable, "-m", "benchmarks.concurrency", "--child", name]
    command += ["--port", str(port), "--n", str(n)] + (["--quick"] if quick else [])
    # Rounds, warm-up and imports; the paced server stops any stream after 30 s anyway.
    limit = plan.rounds[n] * (plan.run_timeout + 10) + 60
    with (
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child,
        ThreadSampler(child.pid, limit) as sampler,
    ):
        try:
            stdout, stderr = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate(timeout=10)
            return Row(name, n, failed="all", note=f"child killed after {limit:.0f} s")
    lines = stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return Row(name, n, failed="all", note=f"exit {child.returncode}: {tail[:200]}")
    result = RunResult(**json.loads(lines[-1]))
    result.threads_peak = sampler.peak
    return summarise(result, plan)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    if value >= 10:
        return f"{value:.1f}{unit}"
    return f"{value:.2f}{unit}"


def _with_ratio(value: float | None, ours: float | None, *, show: bool) -> str:
    cell = _fmt(value)
    if show and value is not None and ours:
        cell += f" ({value / ours:.2f}×)"
    return cell


COLUMNS = (
    "TTFT p50 (ms)",
    "TTFT p99 (ms)",
    "TTFT p99 after server's first byte (ms)",
    "request reached server p99 (ms)",
    "added latency p99 (ms)",
    "wall (s)",
    "threads peak",
    "failed streams",
)


def goal_line(rows: list[Row]) -> str:
    """Whether ours meets the issue's goal at N = 1000, as a ratio to the floor of the same run."""
    goal = f"Goal (ours, N = {GOAL_N}, TTFT p99 ≤ {GOAL_FLOOR_RATIO:.0f}× the raw asyncio floor)"
    ours = next((row for row in rows if row.client == "ours" and row.n == GOAL_N), None)
    floor = next((row for row in rows if row.client == "floor" and row.n == GOAL_N), None)
    if ours is None or ours.ttft_p99 is None or floor is None or not floor.ttft_p99:
        return f"{goal}: not measured."
    ratio = ours.ttft_p99 / floor.ttft_p99
    met = ratio <= GOAL_FLOOR_RATIO and ours.failed == "0"
    verdict = "**met**" if met else "**missed**"
    return (
        f"{goal}: {verdict} — {ratio:.2f}× ({ours.ttft_p99:.1f} ms against "
        f"{floor.ttft_p99:.1f} ms), {ours.failed} failed streams."
    )


def render(rows: list[Row], skipped: dict[str, str], plan: Plan, *, quick: bool) -> str:
    """The `## Concurrency` section: the table, ratios to ours, the goal, the method."""
    lines = [
        CONCURRENCY_HEADING,
        "",
        "Generated by `make bench-concurrency` (`python -m benchmarks.concurrency"
        + (" --quick" if quick else "")
        + "`); do not edit by hand.",
        "",
        f"N streams started together in one event loop, each {plan.tokens} tokens, one every "
        f"{plan.interval_ms} ms (ideal wall time "
        f"{(plan.tokens - 1) * plan.interval_ms / 1000:.2f} s). In brackets, the ratio to ours "
        "at the same N (client ÷ ours: above 1 means slower than ours).",
        "",
        goal_line(rows),
        "",
        "| client | N | " + " | ".join(COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    ours = {row.n: row for row in rows if row.client == "ours"}
    order = {client.name: index for index, client in enumerate(CLIENTS)}
    main_rows = [row for row in rows if row.client in order]
    for row in sorted(main_rows, key=lambda row: (row.n, order[row.client])):
        client = BY_NAME[row.client]
        base = ours.get(row.n, Row("ours", row.n))
        show = client.name != "ours"
        cells = [
            _with_ratio(row.ttft_p50, base.ttft_p50, show=show),
            _with_ratio(row.ttft_p99, base.ttft_p99, show=show),
            _with_ratio(row.ttft_server_p99, base.ttft_server_p99, show=show),
            _fmt(row.reached_server_p99),
            _with_ratio(row.latency_p99, base.latency_p99, show=show),
            _with_ratio(row.wall_s, base.wall_s, show=show),
            "–" if row.threads_peak is None else str(row.threads_peak),
            row.failed + (f" ({row.note})" if row.note else ""),
        ]
        lines.append(f"| {client.label} | {row.n:,} | " + " | ".join(cells) + " |")
    lines += _diagnostics_table(rows)
    if skipped:
        lines += ["", "Skipped:", ""]
        lines += [f"- {BY_NAME[name].label}: {reason}" for name, reason in skipped.items()]
    rounds = ", ".join(f"N = {n:,}: {plan.rounds[n]}" for n in plan.ns)
    lines += [
        "",
        "How it is measured:",
        "",
        "- Each (client, N) is a fresh process with one asyncio event loop; after a one-stream "
        "warm-up (imports, lazy set-up) it builds a new client, so the N connections are opened "
        "in the burst. The N tasks wait on one `asyncio.Event`; setting it is time zero. "
        f"Rounds pooled per N ({rounds}); wall time is the slowest round.",
        "- TTFT: from time zero to the first token reaching the task's `async for`. After the "
        "server's first byte: from the server's write of the first event (sent with the "
        "headers) to the same moment. Request reached server: time zero to the server having "
        "read the request (connect + send + the client's own work before it). Added latency: "
        "server write → `async for`, p99 over every token of every stream.",
        "- The load server is `benchmarks/loadserver.py --asyncio` (one event loop in its own "
        "process, listen backlog 4096); the floor row is that server read by a minimal asyncio "
        "raw-socket client, so a client's excess over the floor is its own.",
        "- Every client has one inline per-token callback (`run_inline = True`; langchain-core "
        "would otherwise run a sync handler in the executor) and its callback count is checked.",
        "- LangChain's default thread-pool path: a subclass of `TogetherLLM` with "
        "`_astream = BaseLLM._astream`, so `astream` runs our sync `_stream` through "
        "`run_in_executor(None, next, iterator)` on the loop's default executor "
        f"(`min(32, CPUs + 4)` = {min(32, (os.cpu_count() or 1) + 4)} threads here).",
        "- langchain-openai: `OpenAI(base_url=..., max_retries=0, http_async_client=...)` with "
        "openai's `DefaultAsyncHttpxClient` whose pool limits are raised from openai's "
        "1000 connections / 100 keep-alive to max(N + 16, 1000) each.",
        "- Threads peak: the child's `/proc/<pid>/status` read by the parent every 5 ms over "
        "the child's life (imports and warm-up included). A round that does not finish within "
        f"{plan.run_timeout:.0f} s has its streams cancelled and counted as failed; a child "
        "that overruns is killed.",
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}.",
        "",
    ]
    return "\n".join(lines)


def _diagnostics_table(rows: list[Row]) -> list[str]:
    diagnostic = {
        row.client: row for row in rows if row.client in BY_NAME and row.client.startswith("diag_")
    }
    if not diagnostic:
        return []
    n = max(row.n for row in diagnostic.values())
    at_n = {row.client: row for row in rows if row.n == n}
    ours = at_n.get("ours", Row("ours", n))
    lines = [
        "",
        f"### Where our time to first token goes at N = {n:,}",
        "",
        "The same run, layer by layer (each row a separate child process; in brackets, the "
        "ratio to ours):",
        "",
        "| client | TTFT p50 (ms) | TTFT p99 (ms) | added latency p99 (ms) | failed streams |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("floor", "diag_aiohttp", "diag_ours_bare", "ours", "diag_ours_gc_frozen"):
        row = at_n.get(name)
        if row is None:
            continue
        show = name != "ours"
        cells = [
            _with_ratio(row.ttft_p50, ours.ttft_p50, show=show),
            _with_ratio(row.ttft_p99, ours.ttft_p99, show=show),
            _with_ratio(row.latency_p99, ours.latency_p99, show=show),
            row.failed + (f" ({row.note})" if row.note else ""),
        ]
        lines.append(f"| {BY_NAME[name].label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "aiohttp alone imports our package too, so both rows carry the same heap. The "
        "`gc.freeze()` row freezes what imports and the warm-up left (about 93,000 objects "
        "with langchain-core, pydantic and aiohttp loaded) out of the cyclic collector's full "
        "passes; it changes no code, so it is the share of the collector in ours.",
    ]
    return lines


def _progress(row: Row) -> str:
    return (
        f"[concurrency] {row.client:>16} N={row.n:<5} TTFT p50 {_fmt(row.ttft_p50)} ms, "
        f"p99 {_fmt(row.ttft_p99)} ms (reached server {_fmt(row.reached_server_p99)}, "
        f"after server byte {_fmt(row.ttft_server_p99)}); "
        f"latency p99 {_fmt(row.latency_p99)} ms; wall {_fmt(row.wall_s)} s; "
        f"threads {row.threads_peak}; failed {row.failed} {row.note}"
    )


def measure(
    clients: list[Client], diagnostics: list[Client], plan: Plan, *, quick: bool
) -> list[Row]:
    """Every client at every N (the diagnostics at the largest), against one load server."""
    rows: list[Row] = []
    with load_server("--asyncio", "--backlog", "4096") as port:
        for n in plan.ns:
            for client in clients + (diagnostics if n == max(plan.ns) else []):
                row = run_child(client.name, port, n, plan, quick=quick)
                print(_progress(row), flush=True)
                rows.append(row)
                if client.name == "floor" and n == max(plan.ns):
                    print(
                        f"[concurrency] load server alone at N={n}: TTFT p99 "
                        f"{_fmt(row.ttft_p99)} ms, added latency p99 {_fmt(row.latency_p99)} ms, "
                        f"wall {_fmt(row.wall_s)} s",
                        flush=True,
                    )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every client at every N and write the `## Concurrency` section of RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 10 and short streams")
    parser.add_argument(
        "--clients", help="comma-separated subset of: " + ", ".join(c.name for c in CLIENTS)
    )
    parser.add_argument("--ns", help="comma-separated subset of the N values to run")
    parser.add_argument(
        "--no-diagnostics", action="store_true", help="skip the breakdown of ours at the largest N"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.port, args.n, args.quick)
        return 0
    plan = QUICK if args.quick else FULL
    if args.ns:
        ns = tuple(int(n) for n in args.ns.split(","))
        if not set(ns) <= set(plan.ns):
            parser.error(f"--ns must be a subset of {plan.ns}")
        plan = replace(plan, ns=ns)
    wanted = args.clients.split(",") if args.clients else [client.name for client in CLIENTS]
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown clients: {', '.join(unknown)}")
    if "floor" not in wanted:
        wanted.insert(0, "floor")  # the server alone is always measured
    clients: list[Client] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        reason = BY_NAME[name].skip_reason()
        if reason:
            print(f"[concurrency] skipping {BY_NAME[name].label}: {reason}", flush=True)
            skipped[name] = reason
        else:
            clients.append(BY_NAME[name])
    diagnostics: list[Client] = []
    if "ours" in [client.name for client in clients] and not args.no_diagnostics:
        diagnostics = [client for client in DIAGNOSTICS if client.skip_reason() is None]
    started = time.perf_counter()
    rows = measure(clients, diagnostics, plan, quick=args.quick)
    section = render(rows, skipped, plan, quick=args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "RESULTS.md"
    existing = results.read_text(encoding="utf-8") if results.exists() else ""
    results.write_text(splice_section(existing, section), encoding="utf-8")
    print(section)
    print(
        f"[concurrency] done in {time.perf_counter() - started:.0f}s; "
        f"wrote the {CONCURRENCY_HEADING!r} section of {results}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
