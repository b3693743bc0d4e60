"""Prompts from Parquet to answers in Parquet, streamed from a Ray cluster within a rate limit.

Offline (the default): starts the bundled emulator with an account rate limit and a local Ray.

    python examples/ray_batch.py --make-prompts 2000 --input /tmp/prompts.parquet \
        --output /tmp/answers

Against Together: set TOGETHER_API_KEY and your account's limits.

    TOGETHER_API_KEY=... python examples/ray_batch.py --input prompts.parquet \
        --output answers/ --model meta-llama/Llama-3.3-70B-Instruct-Turbo --rps 10 --tpm 200000

On a cluster: `--address auto` (from a node of the cluster), and paths every node can reach.
Rerun the same command after a crash: rows already written are skipped (`--resume scan`, the
default, reads the ids in the output directory; `--resume checkpoint` uses Ray Data's
checkpointing and needs `--checkpoint-path`).

The input needs an `id` column (unique) and a `prompt` column. The output has `id` and the
result columns of `TogetherBatchGenerator`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from langchain_together_stream import TogetherLLM
from langchain_together_stream.emulator import AccountRateLimit, TogetherEmulator
from langchain_together_stream.ray import (
    RateLimit,
    TogetherBatchGenerator,
    enable_checkpointing,
    rate_limiter,
    skip_written,
)


def make_prompts(path: Path, count: int) -> None:
    topics = ["owls", "tides", "lighthouses", "bread", "comets", "glaciers", "violins"]
    prompts = [f"Write one sentence about {topics[i % len(topics)]} (#{i}):" for i in range(count)]
    pq.write_table(pa.table({"id": list(range(count)), "prompt": prompts}), path)


@contextlib.contextmanager
def endpoint(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(base_url, api_key): Together with a key, else the emulator (started here or given)."""
    key = os.environ.get("TOGETHER_API_KEY")
    if args.base_url:
        yield args.base_url, key or "emulator-key"
    elif key:
        yield "https://api.together.xyz/v1", key
    else:
        limit = AccountRateLimit(
            requests_per_second=args.emulator_rps, tokens_per_minute=args.emulator_tpm
        )
        with TogetherEmulator(tokens_per_second=args.emulator_tps, rate_limit=limit) as emu:
            print(f"emulator at {emu.base_url} (cap {args.emulator_rps} req/s)", flush=True)
            yield emu.base_url, "emulator-key"
            print(f"emulator ledger: {emu.ledger.as_dict()}", flush=True)


def report_progress(limiter: Any, stop: threading.Event, every: float) -> None:
    """Print the shared limiter's counters while the job runs."""
    started = time.monotonic()
    # Bounded by the job: main() sets stop when it ends.
    while not stop.wait(every):
        with contextlib.suppress(Exception):
            s = ray.get(limiter.stats.remote(), timeout=5)
            elapsed = time.monotonic() - started
            print(
                f"[{elapsed:6.1f}s] ok {int(s['ok'])}  429 {int(s['rate_limited'])}  "
                f"503 {int(s['overloaded'])}  errors {int(s['error'])}  "
                f"rate {s['requests_per_second']:.1f} req/s ({s['fraction']:.0%} of budget)",
                flush=True,
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--make-prompts", type=int, default=0, help="write N prompts first")
    parser.add_argument("--model", default="meta-llama/Llama-3.3-70B-Instruct-Turbo")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="generator actors")
    parser.add_argument("--in-flight", type=int, default=64, help="streams per actor")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--blocks", type=int, default=0, help="split the input into N blocks (0: Ray decides)"
    )
    parser.add_argument("--rps", type=float, default=20.0, help="account requests/s budget")
    parser.add_argument("--tpm", type=float, default=None, help="account tokens/min budget")
    parser.add_argument("--ramp-seconds", type=float, default=60.0)
    parser.add_argument("--address", default=None, help="Ray address (e.g. auto)")
    parser.add_argument("--base-url", default=None, help="a running emulator or proxy")
    parser.add_argument("--emulator-rps", type=float, default=25.0)
    parser.add_argument("--emulator-tpm", type=float, default=None)
    parser.add_argument("--emulator-tps", type=float, default=200.0, help="tokens/s per stream")
    parser.add_argument("--resume", choices=["scan", "checkpoint"], default="scan")
    parser.add_argument("--checkpoint-path", default=None)
    parser.add_argument("--progress-every", type=float, default=2.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.make_prompts:
        make_prompts(args.input, args.make_prompts)
    ray.init(address=args.address, include_dashboard=False, ignore_reinit_error=True)
    limit = RateLimit(
        requests_per_second=args.rps,
        tokens_per_minute=args.tpm,
        ramp_seconds=args.ramp_seconds,
        name=f"together-{args.model}",
    )
    limiter = rate_limiter(limit)  # created here, so the driver owns it
    stop = threading.Event()
    progress = threading.Thread(
        target=report_progress, args=(limiter, stop, args.progress_every), daemon=True
    )
    started = time.monotonic()
    with endpoint(args) as (base_url, api_key):
        llm = TogetherLLM(
            model=args.model, api_key=api_key, base_url=base_url, max_tokens=args.max_tokens
        )
        ds = ray.data.read_parquet(str(args.input))
        if args.resume == "checkpoint":
            enable_checkpointing("id", args.checkpoint_path or f"{args.output}.checkpoint")
        else:
            ds = skip_written(ds, args.output, "id")
        # Ray reads a small input as one block, which one actor would take alone (and whose
        # answers would all be written at the very end).
        blocks = args.blocks or (4 * args.workers if args.make_prompts else 0)
        if blocks:
            ds = ds.repartition(blocks)
        progress.start()
        try:
            ds.map_batches(
                TogetherBatchGenerator,
                fn_constructor_kwargs={
                    "model": llm,
                    "rate_limit": limit,
                    "max_in_flight": args.in_flight,
                },
                batch_size=args.batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=args.workers),
                # Streams wait on the network, not the CPU.
                num_cpus=0.25,
            ).write_parquet(str(args.output))
        finally:
            stop.set()
            progress.join(timeout=10)
        stats = ray.get(limiter.stats.remote(), timeout=30)
    elapsed = time.monotonic() - started
    out = pq.read_table(args.output)
    statuses = out.column("status").to_pylist()
    summary = {
        "rows": out.num_rows,
        "unique_ids": len(set(out.column("id").to_pylist())),
        "ok": statuses.count("ok"),
        "seconds": round(elapsed, 1),
        "limiter": stats,
    }
    print(f"done: {summary}", flush=True)
    return summary


if __name__ == "__main__":
    main()
