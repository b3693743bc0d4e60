"""The concurrency benchmark runs end to end in quick mode against our client alone.

No timing is asserted: the figures depend on the machine. Peers are not needed; the rows of
any that are missing (or excluded) are absent, with the reason printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_mode_writes_the_concurrency_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Setup\n\n- kept as it was\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.concurrency",
            "--quick",
            "--clients",
            "ours",
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
    report = results.read_text(encoding="utf-8")
    assert report.startswith("# Benchmark results\n\n## Setup\n\n- kept as it was\n")
    assert report.count("## Concurrency") == 1
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| client | N |"))
    header = lines[start]
    assert "TTFT p99 (ms)" in header
    assert "added latency p99 (ms)" in header
    table = lines[start + 2 : lines.index("", start)]
    ours = [line for line in table if line.startswith("| ours: TogetherLLM.astream (aiohttp) |")]
    assert [line.split("|")[2].strip() for line in ours] == ["1", "10"]
    assert all(line.count("|") == header.count("|") for line in table)
    assert any(line.startswith("| floor: asyncio raw-socket reader") for line in table)
    assert "### Where our time to first token goes at N = 10" in report
    assert "Goal (ours, N = 1000" in report
    assert "## Concurrency" in done.stdout


def test_the_section_is_replaced_in_place_and_the_rest_kept() -> None:
    from benchmarks.run import section_of, splice_section

    report = "# Results\n\n## Targets\n\nt\n\n## Concurrency\n\nold\n\n## Setup\n\ns\n"
    spliced = splice_section(report, "## Concurrency\n\nnew\n")
    assert spliced == "# Results\n\n## Targets\n\nt\n\n## Concurrency\n\nnew\n\n## Setup\n\ns\n"
    assert section_of(spliced) == "## Concurrency\n\nnew\n"
    appended = splice_section("# Results\n\n## Setup\n\ns\n", "## Concurrency\n\nc\n")
    assert appended == "# Results\n\n## Setup\n\ns\n\n## Concurrency\n\nc\n"
    assert section_of("# Results\n") is None
