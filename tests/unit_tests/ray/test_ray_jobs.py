"""Whole jobs on a local Ray (two generator actors) against the emulator.

One Ray instance serves the module; the crash test runs its drivers as separate processes
connected to it, so killing one is a real crash of a job, not of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ray

from langchain_together_stream import ChatTogether, TogetherLLM
from langchain_together_stream.emulator import AccountRateLimit, TogetherEmulator
from langchain_together_stream.ray import (
    RateLimit,
    TogetherBatchGenerator,
    rate_limiter,
    written_ids,
)

pytestmark = [
    pytest.mark.timeout(600),
    # Ray Data's own deprecation notices and resource hints, raised inside Ray.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ray_batch.py"
WORKERS = 2
NICENESS = "RAY_worker_niceness"  # Ray's own spelling


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    # Ray starts its workers at niceness 15: on a busy shared machine they would starve
    # behind every other process, and a job would spend minutes starting its actors.
    saved = os.environ.get(NICENESS)
    os.environ[NICENESS] = "0"
    # Logical CPUs only schedule: the generator actors wait on sockets, not on cores.
    context = ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop(NICENESS, None)
        else:
            os.environ[NICENESS] = saved


def prompts(path: Path, count: int, files: int = 20) -> Path:
    # Several files, so both actors get blocks and the output is written in many pieces.
    folder = path / "prompts"
    folder.mkdir()
    per_file = -(-count // files)
    for start in range(0, count, per_file):
        ids = list(range(start, min(count, start + per_file)))
        table = pa.table({"id": ids, "prompt": [f"prompt number {i}" for i in ids]})
        pq.write_table(table, folder / f"part-{start:06d}.parquet")
    return folder


def run_job(
    source: Path, output: Path, base_url: str, limit: RateLimit, *, batch_size: int = 50
) -> Any:
    llm = TogetherLLM(model="m", api_key="sk-ray-job", base_url=base_url, max_tokens=6)
    limiter = rate_limiter(limit)
    ray.data.read_parquet(str(source)).repartition(20).map_batches(
        TogetherBatchGenerator,
        fn_constructor_kwargs={"model": llm, "rate_limit": limit, "max_in_flight": 32},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=WORKERS),
        num_cpus=0.25,
    ).write_parquet(str(output))
    return ray.get(limiter.stats.remote(), timeout=30)


def test_under_the_account_limit_every_id_once_usage_equals_ledger_few_429s(
    cluster: str, tmp_path: Path
) -> None:
    count = 600
    source = prompts(tmp_path, count)
    # The client believes it may send twice what the account allows: the limiter must find
    # the real limit from the 429s and hold just under it. The cap is low enough for a busy
    # 2-core machine to reach it, and holds 3 s of budget: on such a machine a worker can stall
    # for a second, then send the requests granted meanwhile all at once.
    cap = AccountRateLimit(requests_per_second=12, burst_seconds=3.0)
    limit = RateLimit(
        requests_per_second=24, ramp_seconds=60, cooldown_seconds=1.0, name="job-limit"
    )
    with TogetherEmulator(tokens_per_second=500, rate_limit=cap) as emu:
        stats = run_job(source, tmp_path / "out", emu.base_url, limit)
        requests = emu.requests
        ledger = emu.ledger

    out = pq.read_table(tmp_path / "out")
    ids = out.column("id").to_pylist()
    assert sorted(ids) == list(range(count))  # every id exactly once
    assert set(out.column("status").to_pylist()) == {"ok"}  # no row lost to a 429/503
    usage = out.column("usage")
    assert pc.sum(pc.struct_field(usage, "total_tokens")).as_py() == ledger.total_tokens
    assert pc.sum(pc.struct_field(usage, "input_tokens")).as_py() == ledger.prompt_tokens
    assert pc.sum(pc.struct_field(usage, "output_tokens")).as_py() == ledger.completion_tokens
    assert ledger.completed == count
    attempts = pc.sum(out.column("attempts")).as_py()
    assert attempts == len(requests)  # every request the server saw is counted in a row
    assert ledger.rate_limited >= 1  # it did meet the limit
    assert stats["halvings"] >= 1

    # Once settled (after the first quarter of the run), 429s and 503s stay rare.
    statuses = [r.status for r in sorted(requests, key=lambda r: r.started_at)]
    settled = statuses[len(statuses) // 4 :]
    refused = sum(s in (429, 503) for s in settled)
    print(f"\nrefused {refused}/{len(settled)} after settling; limiter {stats}")
    assert refused / len(settled) < 0.05


def test_a_chat_job_writes_every_id_once_with_its_usage(cluster: str, tmp_path: Path) -> None:
    count = 40
    source = prompts(tmp_path, count, files=4)
    with TogetherEmulator(tokens_per_second=500) as emu:
        chat = ChatTogether(model="m", api_key="sk-ray-job", base_url=emu.base_url, max_tokens=4)
        ray.data.read_parquet(str(source)).map_batches(
            TogetherBatchGenerator,
            fn_constructor_kwargs={"model": chat, "max_in_flight": 8},
            batch_size=10,
            batch_format="pyarrow",
            # One actor: this checks that a chat model ships to an actor and streams there;
            # the jobs above cover several actors and the shared limiter.
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=0.25,
        ).write_parquet(str(tmp_path / "out"))
        paths = {r.path for r in emu.requests}
        sent = len(emu.requests)

    out = pq.read_table(tmp_path / "out")
    assert sorted(out.column("id").to_pylist()) == list(range(count))
    assert set(out.column("status").to_pylist()) == {"ok"}
    assert set(out.column("finish_reason").to_pylist()) == {"length"}
    assert set(pc.struct_field(out.column("usage"), "output_tokens").to_pylist()) == {4}
    assert paths == {"/v1/chat/completions"}
    assert sent == count


def test_a_job_killed_half_way_and_rerun_writes_every_id_once(cluster: str, tmp_path: Path) -> None:
    count = 2000
    source = prompts(tmp_path, count)
    output = tmp_path / "out"
    cap = AccountRateLimit(requests_per_second=120)
    env = {**os.environ, "RAY_ADDRESS": cluster, "PYTHONUNBUFFERED": "1"}
    env.pop("TOGETHER_API_KEY", None)
    with TogetherEmulator(tokens_per_second=300, rate_limit=cap) as emu:
        command = [
            sys.executable,
            str(EXAMPLE),
            "--input",
            str(source),
            "--output",
            str(output),
            "--address",
            cluster,
            "--base-url",
            emu.base_url,
            "--rps",
            "120",
            "--max-tokens",
            "6",
            "--batch-size",
            "50",
            "--in-flight",
            "32",
            "--workers",
            str(WORKERS),
            "--blocks",
            "20",
        ]
        first = subprocess.Popen(
            command, env=env, start_new_session=True, stdout=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 300
            # Bounded by the deadline: wait until some output is written and about half sent.
            while time.monotonic() < deadline and first.poll() is None:
                written = list(output.glob("*.parquet")) if output.is_dir() else []
                if written and len(emu.requests) >= count // 2:
                    break
                time.sleep(0.2)
            assert first.poll() is None, "the first run ended before it could be killed"
            os.killpg(first.pid, signal.SIGKILL)
        finally:
            first.wait(timeout=60)
        time.sleep(1.0)  # let the server notice the streams the crash cut
        sent_before = {r.json["prompt"] for r in emu.requests if r.json}
        done_before = written_ids(output, "id")
        assert 0 < len(done_before) < count
        in_flight = len(sent_before) - len(done_before)
        mark = len(emu.requests)

        second = subprocess.run(
            command, env=env, timeout=400, capture_output=True, text=True, check=False
        )
        assert second.returncode == 0, second.stderr[-3000:]
        resent = {r.json["prompt"] for r in emu.requests[mark:] if r.json} & sent_before

    ids = pq.read_table(output, columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == list(range(count))
    # No id already written is asked for again: the re-sent requests are exactly those that
    # were in flight (sent, answer not yet written) when the job died.
    assert not {f"prompt number {i}" for i in done_before} & resent
    assert len(resent) <= in_flight
    print(
        f"\nwritten before the kill {len(done_before)}, in flight {in_flight}, re-sent {len(resent)}"
    )
