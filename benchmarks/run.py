"""Benchmark TogetherLLM against its peers in one run; write RESULTS.md and results.png.

    python -m benchmarks.run            # full run (what `make bench` does), ~5-8 minutes
    python -m benchmarks.run --quick    # tiny sizes, seconds
    python -m benchmarks.run --clients ours,raw_floor --out /tmp/bench
    python -m benchmarks.run --chat-clients chat_ours,chat_raw_floor,chat_core_floor
    python -m benchmarks.run --chat-clients none    # skip the chat table (and keep the old one)

Every figure is a median over rounds taken after a warm-up, with the clients interleaved
(and the order rotated each round) so machine drift hits all of them alike. The load server
runs in its own process; see `benchmarks/loadserver.py`.
"""

# The report is for people: it uses the multiplication sign and the en dash on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import chat
from benchmarks.clients import BY_NAME, CLIENTS, Client, OnToken, Runner
from benchmarks.stages import breakdown, decoders

ROOT = Path(__file__).resolve().parents[1]
NA = None


@dataclass(frozen=True)
class Sizes:
    """How much work each figure does."""

    tokens: int  # throughput / CPU stream
    rounds: int
    latency_events: int
    interval_us: int
    latency_rounds: int
    ttft_rounds: int
    rss_tokens: int
    import_rounds: int
    time_budget: float  # seconds per figure and client before rounds are cut short


FULL = Sizes(20_000, 5, 300, 2000, 3, 7, 200_000, 3, 60.0)
QUICK = Sizes(300, 2, 20, 2000, 1, 2, 2_000, 1, 10.0)


@dataclass
class Figures:
    """All the measurements of one client (None where not applicable)."""

    tokens_per_s: float | None = NA
    cpu_us_per_token: float | None = NA
    lat_chunked_p50_ms: float | None = NA
    lat_chunked_p99_ms: float | None = NA
    lat_close_p50_ms: float | None = NA
    lat_close_p99_ms: float | None = NA
    ttft_warm_ms: float | None = NA
    ttft_cold_ms: float | None = NA
    rss_growth_mb: float | None = NA
    long_cpu_us_per_token: float | None = NA
    import_ms: float | None = NA


COLUMNS: tuple[tuple[str, str, bool], ...] = (
    # attribute, heading, higher is better
    ("tokens_per_s", "tokens/s", True),
    ("cpu_us_per_token", "CPU µs/token", False),
    ("lat_chunked_p50_ms", "latency p50 chunked (ms)", False),
    ("lat_chunked_p99_ms", "latency p99 chunked (ms)", False),
    ("lat_close_p50_ms", "latency p50 close (ms)", False),
    ("lat_close_p99_ms", "latency p99 close (ms)", False),
    ("ttft_warm_ms", "TTFT warm (ms)", False),
    ("ttft_cold_ms", "TTFT cold (ms)", False),
    ("rss_growth_mb", "peak RSS growth (MB)", False),
    ("long_cpu_us_per_token", "CPU µs/token, long stream", False),
    ("import_ms", "import (ms)", False),
)


# --- the load server -------------------------------------------------------------------------


@contextmanager
def load_server(*options: str) -> Iterator[int]:
    """Start the load server in its own process, with these options; yield its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadserver", *options],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield port
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def url(port: int, framing: str, tokens: int, interval_us: int = 0) -> str:
    """The base_url that makes the load server answer with this stream."""
    return f"http://127.0.0.1:{port}/{framing}/{tokens}/{interval_us}/v1"


def server_alone(port: int, tokens: int, rounds: int) -> float:
    """Tokens/s the server delivers to a reader that only counts bytes (median)."""
    request = (
        f"POST /chunked/{tokens}/0/v1/completions HTTP/1.1\r\nHost: bench\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode()
    rates = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(rounds + 1):
            start = time.perf_counter()
            sock.sendall(request)
            tail = b""
            while not tail.endswith(b"\r\n0\r\n\r\n"):
                data = sock.recv(1 << 20)
                if not data:
                    break
                tail = (tail + data)[-16:]
            rates.append(tokens / (time.perf_counter() - start))
    return statistics.median(rates[1:])


# --- the figures -----------------------------------------------------------------------------


def _rotations(clients: list[Client], rounds: int) -> Iterator[list[Client]]:
    for index in range(rounds):
        shift = index % len(clients)
        yield clients[shift:] + clients[:shift]


def throughput(clients: list[Client], port: int, sizes: Sizes) -> dict[str, tuple[float, float]]:
    """Tokens/s and CPU µs per token on a chunked stream, immediate writes."""
    base = url(port, "chunked", sizes.tokens)
    runners = {client.name: client.setup(base, sizes.tokens) for client in clients}
    counts: dict[str, int] = {}

    def counter(name: str) -> OnToken:
        def on_token(token: str) -> None:
            if token:
                counts[name] += 1

        return on_token

    rates: dict[str, list[tuple[float, float]]] = {client.name: [] for client in clients}
    spent: dict[str, float] = dict.fromkeys(rates, 0.0)
    for name, runner in runners.items():  # warm-up
        counts[name] = 0
        runner(counter(name))
    for order in _rotations(clients, sizes.rounds):
        for client in order:
            if spent[client.name] > sizes.time_budget and rates[client.name]:
                continue
            counts[client.name] = 0
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            runners[client.name](counter(client.name))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            spent[client.name] += wall
            if counts[client.name] != sizes.tokens:
                msg = f"{client.name} saw {counts[client.name]} tokens of {sizes.tokens}"
                raise RuntimeError(msg)
            rates[client.name].append((sizes.tokens / wall, cpu * 1e6 / sizes.tokens))
    return {
        name: (
            statistics.median(rate for rate, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for name, values in rates.items()
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def latency(
    clients: list[Client], port: int, sizes: Sizes, framing: str
) -> dict[str, tuple[float, float]]:
    """Server write → callback latency, p50 and p99 in ms, on a paced stream."""
    network = [client for client in clients if client.network]
    paced = url(port, framing, sizes.latency_events, sizes.interval_us)
    runners = {client.name: client.setup(paced, sizes.latency_events) for client in network}
    for client in network:  # warm-up on a short paced stream
        client.setup(url(port, framing, 5, sizes.interval_us), 5)(lambda token: None)
    results: dict[str, list[tuple[float, float]]] = {client.name: [] for client in network}
    for order in _rotations(network, sizes.latency_rounds):
        for client in order:
            seen: list[tuple[int, str]] = []

            def on_token(token: str, seen: list[tuple[int, str]] = seen) -> None:
                seen.append((time.monotonic_ns(), token))

            runners[client.name](on_token)
            delays = [(now - int(token)) / 1e6 for now, token in seen if token]
            if len(delays) != sizes.latency_events:
                msg = f"{client.name} saw {len(delays)} of {sizes.latency_events} events"
                raise RuntimeError(msg)
            results[client.name].append((_percentile(delays, 0.5), _percentile(delays, 0.99)))
    return {
        name: (statistics.median(p50 for p50, _ in values), statistics.median(p for _, p in values))
        for name, values in results.items()
    }


def time_to_first_token(
    clients: list[Client], port: int, sizes: Sizes
) -> dict[str, tuple[float, float]]:
    """Time from the call to the first callback, ms: warm (pooled) and cold connection."""
    network = [client for client in clients if client.network]
    short = url(port, "chunked", 5)
    warm = {client.name: client.setup(short, 5) for client in network}
    for runner in warm.values():
        runner(lambda token: None)
    measured: dict[str, dict[str, list[float]]] = {
        client.name: {"warm": [], "cold": []} for client in network
    }

    def first_token_ms(runner: Runner) -> float:
        first: list[int] = []

        def on_token(token: str) -> None:
            if not first:
                first.append(time.perf_counter_ns())

        start = time.perf_counter_ns()
        runner(on_token)
        return (first[0] - start) / 1e6

    for order in _rotations(network, sizes.ttft_rounds):
        for client in order:
            measured[client.name]["warm"].append(first_token_ms(warm[client.name]))
            cold = client.setup(short, 5)
            measured[client.name]["cold"].append(first_token_ms(cold))
            del cold
    return {
        name: (statistics.median(values["warm"]), statistics.median(values["cold"]))
        for name, values in measured.items()
    }


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_child(name: str, port: int, tokens: int) -> None:
    """In a fresh process: peak RSS growth over one long stream, printed as JSON.

    On Linux the peak (VmHWM) is reset to the current RSS after imports and a warm-up
    (`/proc/self/clear_refs`), so the figure is the stream's own high-water mark; elsewhere
    `ru_maxrss` is used, which also counts any earlier peak.
    """
    client = BY_NAME[name]
    client.setup(url(port, "chunked", 10), 10)(lambda token: None)  # lazy imports, caches
    runner = client.setup(url(port, "chunked", tokens), tokens)
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        baseline, method = _status_kb("VmRSS"), "VmHWM"
    except OSError:
        baseline, method = None, "ru_maxrss"
    if baseline is None:
        baseline, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    cpu = time.process_time()
    runner(lambda token: None)
    cpu = time.process_time() - cpu
    peak = _status_kb("VmHWM") if method == "VmHWM" else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_us = cpu * 1e6 / tokens
    print(
        json.dumps({"baseline_kb": baseline, "peak_kb": peak, "method": method, "cpu_us": cpu_us})
    )


def peak_rss(
    clients: list[Client], port: int, sizes: Sizes
) -> dict[str, tuple[float | None, float | None]]:
    """Peak RSS growth in MB and CPU µs/token over a long stream, each in a fresh process.

    A client whose child fails gets no figures (and its error is printed) rather than costing
    the whole report.
    """
    growth: dict[str, tuple[float | None, float | None]] = {}
    for client in clients:
        command = [sys.executable, "-m", "benchmarks.run", "--rss-child", client.name]
        command += ["--port", str(port), "--rss-tokens", str(sizes.rss_tokens)]
        try:
            done = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
            )
        except subprocess.CalledProcessError as error:
            tail = "\n".join((error.stderr or "").strip().splitlines()[-15:])
            print(f"[bench] peak RSS of {client.name} failed:\n{tail}", flush=True)
            growth[client.name] = (NA, NA)
            continue
        except subprocess.TimeoutExpired:
            print(f"[bench] peak RSS of {client.name} timed out", flush=True)
            growth[client.name] = (NA, NA)
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        growth[client.name] = (
            (figures["peak_kb"] - figures["baseline_kb"]) / 1024,
            figures["cpu_us"],
        )
    return growth


def import_times(clients: list[Client], sizes: Sizes) -> dict[str, float]:
    """Time to import each client's modules in a fresh interpreter, ms (median)."""
    code = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    samples: dict[str, list[float]] = {client.name: [] for client in clients}
    for order in _rotations(clients, sizes.import_rounds + 1):
        for client in order:
            done = subprocess.run(
                [sys.executable, "-c", code.format(client.imports)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            samples[client.name].append(float(done.stdout) * 1000)
    # The first round warms the OS page cache; drop it.
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


# --- the report ------------------------------------------------------------------------------


def _format(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ratio(value: float | None, ours: float | None) -> float | None:
    if value is None or ours is None or ours == 0:
        return None
    return value / ours


@dataclass
class Target:
    """One goal, its measured value and verdict."""

    text: str
    measured: str
    met: bool | None


def _throughput_target(figures: dict[str, Figures], name: str, label: str, goal: float) -> Target:
    text = f"{label} with a per-token callback ≥ {goal:.0f}× langchain-openai (tokens/s)"
    ours, peer = figures.get(name), figures.get("langchain_openai")
    if not (ours and peer and ours.tokens_per_s and peer.tokens_per_s):
        return Target(text, "not measured", None)
    ratio = ours.tokens_per_s / peer.tokens_per_s
    return Target(text, f"{ratio:.2f}×", ratio >= goal)


def targets(figures: dict[str, Figures]) -> list[Target]:
    """The issue's targets, judged on this run's figures (ratios within one run)."""
    ours = figures.get("ours", Figures())
    found = [
        _throughput_target(figures, "ours", "sync stream", 12),
        _throughput_target(figures, "ours_async", "async stream", 10),
    ]
    raw, core = figures.get("raw_floor"), figures.get("core_floor")
    text = "CPU/token ≤ 1.2× (raw floor + core floor)"
    if raw and core and raw.cpu_us_per_token and core.cpu_us_per_token and ours.cpu_us_per_token:
        ratio = ours.cpu_us_per_token / (raw.cpu_us_per_token + core.cpu_us_per_token)
        found.append(Target(text, f"{ratio:.2f}×", ratio <= 1.2))
    else:
        found.append(Target(text, "not measured", None))
    text = "CPU/token on the long stream ≤ 1.1× that on the short one (flat in length)"
    if ours.long_cpu_us_per_token and ours.cpu_us_per_token:
        ratio = ours.long_cpu_us_per_token / ours.cpu_us_per_token
        found.append(Target(text, f"{ratio:.2f}×", ratio <= 1.1))
    else:
        found.append(Target(text, "not measured", None))
    for framing in ("chunked", "close"):
        p99 = getattr(ours, f"lat_{framing}_p99_ms")
        found.append(
            Target(
                f"added latency p99 < 2 ms ({framing})",
                "not measured" if p99 is None else f"{p99:.2f} ms",
                None if p99 is None else p99 < 2,
            )
        )
    if ours.rss_growth_mb is not None and core and core.rss_growth_mb is not None:
        extra = ours.rss_growth_mb - core.rss_growth_mb
        found.append(
            Target(
                "peak RSS growth < 10 MB beyond LangChain's own aggregation",
                f"{extra:+.1f} MB",
                extra < 10,
            )
        )
    else:
        found.append(
            Target(
                "peak RSS growth < 10 MB beyond LangChain's own aggregation", "not measured", None
            )
        )
    return found


def _versions() -> str:
    # Imported here, after the measurements: the import benchmark wants a cold package.
    from langchain_together_stream import _runs  # noqa: PLC0415

    names = ["langchain-core", "langchain-openai", "langchain-together", "openai", "together"]
    names += ["requests", "urllib3", "sseclient-py", "pydantic", "msgspec", "aiohttp", "httpx"]
    installed = {
        dist.metadata["Name"].lower(): dist.version for dist in importlib.metadata.distributions()
    }
    versions = ", ".join(f"{name} {installed[name]}" for name in names if name in installed)
    fast = "on" if _runs.FAST_STREAM else "OFF (quadratic stream totals)"
    return f"{versions}; linear-time stream path (`_runs.FAST_STREAM`) {fast}"


def render(
    figures: dict[str, Figures],
    skipped: dict[str, str],
    sizes: Sizes,
    server_rate: float,
    *,
    quick: bool,
    stages: list[tuple[str, str, float | None]],
    decode: tuple[float, float] | None = None,
) -> str:
    """RESULTS.md: one table of values with ratios to ours, the targets, the setup."""
    ours = figures.get("ours", Figures())
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`python -m benchmarks.run"
        + (" --quick" if quick else "")
        + "`); do not edit by hand.",
        "",
        "Each cell is a median over rounds after a warm-up, clients interleaved; in brackets, "
        "the ratio to ours (client ÷ ours: above 1 means a higher figure than ours).",
        "",
        "| client | " + " | ".join(heading for _, heading, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for client in CLIENTS:
        if client.name not in figures:
            continue
        cells = []
        for attribute, _, _ in COLUMNS:
            value = getattr(figures[client.name], attribute)
            ratio = _ratio(value, getattr(ours, attribute))
            cell = _format(value)
            if ratio is not None and client.name != "ours" and value is not None:
                cell += f" ({ratio:.2f}×)"
            cells.append(cell)
        lines.append(f"| {client.label} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|:---:|"]
    for target in targets(figures):
        verdict = {True: "yes", False: "**no**", None: "–"}[target.met]
        lines.append(f"| {target.text} | {target.measured} | {verdict} |")
    if stages:
        lines += [
            "",
            "## Where our CPU goes",
            "",
            f"The same {sizes.tokens:,}-token stream stopped after each layer (CPU µs per token, "
            "cumulative; the difference between rows is that layer's cost).",
            "",
            "| up to | layer | cumulative µs/token | layer µs/token |",
            "|---|---|---:|---:|",
        ]
        previous = 0.0
        for name, layer, value in stages:
            step = None if value is None else value - previous
            lines.append(f"| {name} | {layer} | {_format(value)} | {_format(step)} |")
            previous = value if value is not None else previous
    if decode is not None:
        fast, slow = decode
        lines += [
            "",
            f"What msgspec pays: decoding each chunk's JSON into the schema takes {_format(fast)} "
            f"µs/token with msgspec, {_format(slow)} with pydantic alone (the fallback), "
            f"{slow / fast:.1f}× as much, on the same events in this run.",
        ]
    if skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {BY_NAME[name].label}: {reason}" for name, reason in skipped.items()]
    lines += [
        "",
        "## Setup",
        "",
        f"- Load server alone (byte-counting reader): {server_rate:,.0f} tokens/s, in its own "
        "process, so it is not the bottleneck.",
        f"- Throughput and CPU: {sizes.tokens:,}-token chunked stream, {sizes.rounds} rounds; "
        "CPU is `time.process_time` of the client process.",
        f"- Latency: {sizes.latency_events} events, one every {sizes.interval_us} µs, the "
        "server's `monotonic_ns` in each token; server write → callback; "
        f"{sizes.latency_rounds} rounds.",
        f"- TTFT: 5-token stream, {sizes.ttft_rounds} rounds; warm reuses the client's pool, "
        "cold builds a new client (new connection) each time.",
        f"- Peak RSS: {sizes.rss_tokens:,}-token stream, each client in a fresh subprocess; "
        "peak RSS during the stream (VmHWM, reset via `/proc/self/clear_refs`) minus RSS "
        "after imports and a warm-up; the same run gives the long-stream CPU per token, "
        "which shows any per-token cost that grows with the length of the answer.",
        "- Import: fresh interpreter timing its `import` statement (interpreter start excluded).",
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}.",
        f"- Versions: {_versions()}.",
        "",
    ]
    return "\n".join(lines)


def chart(figures: dict[str, Figures], path: Path) -> str | None:
    """results.png: every figure as a ratio to ours, one panel per column."""
    try:
        import matplotlib as mpl  # noqa: PLC0415  (optional: only in the benchmark venv)

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed; no chart written"
    ours = figures.get("ours", Figures())
    names = [client.name for client in CLIENTS if client.name in figures]
    labels = {client.name: client.label for client in CLIENTS}
    fig, axes = plt.subplots(2, 6, figsize=(26, 8))
    positions = list(range(len(names)))
    for spare in axes.flat[len(COLUMNS) :]:
        spare.axis("off")
    for axis, (attribute, heading, higher_better) in zip(
        axes.flat[: len(COLUMNS)], COLUMNS, strict=True
    ):
        for position, name in zip(positions, names, strict=True):
            ratio = _ratio(getattr(figures[name], attribute), getattr(ours, attribute))
            if ratio is None:
                axis.text(0.012, position, "n/a", va="center", fontsize=7, color="gray")
                continue
            shown = max(ratio, 0.01)  # log scale: a zero shows as the smallest bar
            color = "tab:green" if name.startswith("ours") else "tab:gray"
            axis.barh(position, shown, color=color)
            axis.text(shown, position, f" {ratio:.2f}×", va="center", fontsize=7)
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_xlim(0.01, 100)
        axis.set_yticks(positions)
        axis.set_yticklabels([labels[name] for name in names] if axis in axes[:, 0] else [])
        axis.invert_yaxis()
        better = "higher" if higher_better else "lower"
        axis.set_title(f"{heading}\n(ratio to ours, {better} is better)", fontsize=9)
        axis.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


CONCURRENCY_HEADING = "## Concurrency"
# Sections of RESULTS.md written by other harnesses (`benchmarks.ray_scaling` names its own).
OTHER_RUNS_HEADINGS = (CONCURRENCY_HEADING, "## Ray scaling")


def splice_section(report: str, section: str, heading: str = CONCURRENCY_HEADING) -> str:
    """`report` with its `heading` section (up to the next `## ` heading) replaced by `section`.

    The section is appended at the end when the report has none; `section` starts with the
    heading line. The rest of the report is kept byte for byte.
    """
    lines = report.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    block = section.rstrip("\n") + "\n"
    if start is None:
        text = "".join(lines).rstrip("\n")
        return (text + "\n\n" if text else "") + block
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + block + ("\n" + after if after else "")


def section_of(report: str, heading: str = CONCURRENCY_HEADING) -> str | None:
    """The `heading` section of `report` (up to the next `## ` heading), or None."""
    lines = report.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[start:end]).rstrip("\n") + "\n"


# --- main ------------------------------------------------------------------------------------


def _timed(label: str, step: Callable[[], object]) -> object:
    start = time.perf_counter()
    print(f"[bench] {label} ...", flush=True)
    result = step()
    print(f"[bench] {label}: {time.perf_counter() - start:.1f}s", flush=True)
    return result


def _available(
    wanted: list[str], by_name: dict[str, Client] = BY_NAME
) -> tuple[list[Client], dict[str, str]]:
    clients: list[Client] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        reason = by_name[name].skip_reason()
        if reason:
            print(f"[bench] skipping {by_name[name].label}: {reason}", flush=True)
            skipped[name] = reason
        else:
            clients.append(by_name[name])
    return clients, skipped


def _chat_table(clients: list[Client], skipped: dict[str, str], port: int, sizes: Sizes) -> str:
    """Measure the chat clients on the running load server; their RESULTS.md section."""
    measured = _timed("chat throughput", lambda: throughput(clients, port, sizes))
    stages: list[tuple[str, str, float | None]] = []
    if any(client.name == "chat_ours" for client in clients):
        stages = _timed(  # type: ignore[assignment]
            "where our chat CPU goes",
            lambda: chat.breakdown(url(port, "chunked", sizes.tokens), sizes.tokens, sizes.rounds),
        )
    return chat.render(
        measured,  # type: ignore[arg-type]
        skipped,
        stages,
        tokens=sizes.tokens,
        rounds=sizes.rounds,
    )


def _chat_wanted(parser: argparse.ArgumentParser, option: str | None) -> list[str]:
    if option is None:
        return list(chat.CHAT_BY_NAME)
    wanted = [name for name in option.split(",") if name and name != "none"]
    unknown = [name for name in wanted if name not in chat.CHAT_BY_NAME]
    if unknown:
        parser.error(f"unknown chat clients: {', '.join(unknown)}")
    return wanted


def _write(report: str, results: Path, chat_section: str | None) -> str:
    """Write RESULTS.md: this run's report and sections owned by other runs; return it."""
    previous = results.read_text(encoding="utf-8") if results.exists() else ""
    # A run without chat clients keeps the last chat table.
    chat_section = chat_section or section_of(previous, chat.HEADING)
    if chat_section is not None:
        report = splice_section(report, chat_section, chat.HEADING)
    # `benchmarks.concurrency` and `benchmarks.ray_scaling` own their sections; a rerun of
    # this harness keeps them.
    for heading in OTHER_RUNS_HEADINGS:
        kept = section_of(previous, heading)
        if kept is not None:
            report = splice_section(report, kept, heading)
    results.write_text(report, encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    parser.add_argument("--clients", help="comma-separated subset of: " + ", ".join(BY_NAME))
    parser.add_argument(
        "--chat-clients",
        help="comma-separated subset of: " + ", ".join(chat.CHAT_BY_NAME) + " (or none)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-tokens", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.port, args.rss_tokens)
        return 0
    sizes = QUICK if args.quick else FULL
    wanted = args.clients.split(",") if args.clients else list(BY_NAME)
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown clients: {', '.join(unknown)}")
    clients, skipped = _available(wanted)
    chat_clients, chat_skipped = _available(
        _chat_wanted(parser, args.chat_clients), chat.CHAT_BY_NAME
    )
    if not clients:
        print("[bench] nothing to run", file=sys.stderr)
        return 1
    figures = {client.name: Figures() for client in clients}
    started = time.perf_counter()
    with load_server() as port:
        rate = server_alone(port, sizes.tokens, 3)
        print(f"[bench] load server alone: {rate:,.0f} tokens/s", flush=True)
        for name, (tps, cpu) in _timed(  # type: ignore[attr-defined]
            "throughput", lambda: throughput(clients, port, sizes)
        ).items():
            figures[name].tokens_per_s, figures[name].cpu_us_per_token = tps, cpu
        chat_section = (
            _chat_table(chat_clients, chat_skipped, port, sizes) if chat_clients else None
        )
        for framing in ("chunked", "close"):
            for name, (p50, p99) in _timed(  # type: ignore[attr-defined]
                f"latency {framing}", lambda framing=framing: latency(clients, port, sizes, framing)
            ).items():
                setattr(figures[name], f"lat_{framing}_p50_ms", p50)
                setattr(figures[name], f"lat_{framing}_p99_ms", p99)
        for name, (warm, cold) in _timed(  # type: ignore[attr-defined]
            "time to first token", lambda: time_to_first_token(clients, port, sizes)
        ).items():
            figures[name].ttft_warm_ms, figures[name].ttft_cold_ms = warm, cold
        stages: list[tuple[str, str, float | None]] = []
        decode: tuple[float, float] | None = None
        if "ours" in figures:
            stages = _timed(  # type: ignore[assignment]
                "where our CPU goes",
                lambda: breakdown(url(port, "chunked", sizes.tokens), sizes.tokens, sizes.rounds),
            )
            decode = _timed(  # type: ignore[assignment]
                "what msgspec pays",
                lambda: decoders(url(port, "chunked", sizes.tokens), sizes.tokens, sizes.rounds),
            )
        for name, growth in _timed(  # type: ignore[attr-defined]
            "peak RSS", lambda: peak_rss(clients, port, sizes)
        ).items():
            figures[name].rss_growth_mb, figures[name].long_cpu_us_per_token = growth
    for name, ms in _timed("import time", lambda: import_times(clients, sizes)).items():  # type: ignore[attr-defined]
        figures[name].import_ms = ms
    args.out.mkdir(parents=True, exist_ok=True)
    report = render(figures, skipped, sizes, rate, quick=args.quick, stages=stages, decode=decode)
    report = _write(report, args.out / "RESULTS.md", chat_section)
    problem = chart(figures, args.out / "results.png")
    if problem:
        print(f"[bench] {problem}", flush=True)
    print(report)
    print(f"[bench] done in {time.perf_counter() - started:.0f}s; wrote {args.out}/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
