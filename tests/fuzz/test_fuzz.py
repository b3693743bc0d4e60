"""Run the SSE + wire fuzzer for a bounded time, and replay every crash input it ever found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fuzz.fuzz_sse_wire import one_input
from tests.scripted_server import token_stream

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "fuzz_sse_wire.py"
REGRESSIONS = HERE / "regressions"
SECONDS = 20 if os.environ.get("CI") == "true" else 3


def _seeds(corpus: Path) -> None:
    wire = b"".join(p for p in token_stream(["Hel", "lo", " w\u00f6rld"]) if isinstance(p, bytes))
    corpus.mkdir()
    (corpus / "valid").write_bytes(b"\x00" + wire)
    (corpus / "valid-split").write_bytes(b"\x02" + wire.replace(b"\n", b"\r\n"))
    (corpus / "error").write_bytes(b"\x07" + b'event: error\ndata: {"error": {"message": "m"}}\n\n')
    for path in REGRESSIONS.glob("crash-*"):
        shutil.copy(path, corpus / path.name)


def test_fuzz_the_sse_and_wire_layer_for_a_bounded_time(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _seeds(corpus)
    before = set(REGRESSIONS.glob("crash-*"))
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            f"-max_total_time={SECONDS}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-max_len=4096",
            f"-dict={HERE / 'sse.dict'}",
            f"-artifact_prefix={REGRESSIONS}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    found = sorted(set(REGRESSIONS.glob("crash-*")) - before)
    assert result.returncode == 0, (
        f"the fuzzer found a crash; input saved as {[p.name for p in found]} (commit it; "
        f"test_every_saved_crash_input_now_raises_only_together_errors replays it)\n"
        f"{result.stderr[-4000:]}"
    )


def test_every_saved_crash_input_now_raises_only_together_errors() -> None:
    assert REGRESSIONS.is_dir()
    replayed = 0
    for path in sorted(REGRESSIONS.glob("crash-*")):
        one_input(path.read_bytes())  # raises anything but a TogetherError
        replayed += 1
    assert replayed == len(list(REGRESSIONS.glob("crash-*")))
