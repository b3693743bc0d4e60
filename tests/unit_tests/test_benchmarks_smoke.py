"""The benchmark harness runs end to end in quick mode against our client alone.

No timing is asserted: the figures depend on the machine. Peers are not needed; the columns
of any that are missing (or excluded) are simply absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_mode_writes_a_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--clients",
            "ours,ours_async",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "load server alone" in done.stdout
    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    header = next(line for line in report.splitlines() if line.startswith("| client |"))
    assert "tokens/s" in header
    assert "CPU µs/token" in header
    assert "latency p99 chunked (ms)" in header
    row = next(
        line for line in report.splitlines() if line.startswith("| ours: TogetherLLM.stream")
    )
    assert row.count("|") == header.count("|")
    assert "## Targets" in report
