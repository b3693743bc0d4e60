import io
import os
import re
import subprocess
import sys
import time

import pytest

from langchain_together_stream.cli import main
from langchain_together_stream.emulator import TogetherEmulator

FAST = ("--emulator", "--ttft", "0", "--tps", "0")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_streams_from_the_emulator_with_a_stats_line() -> None:
    code, out, err = run(
        "--emulator", "--ttft", "0", "--tps", "0", "--max-tokens", "12", "Alan Turing was"
    )
    assert code == 0
    assert len(out.strip().split()) >= 3
    assert "ttft" in err
    assert "12 tokens" in err
    assert "finish length" in err
    assert "completion = " in err


def test_no_key_explains_how_to_get_one_or_run_offline() -> None:
    code, out, err = run("hello")
    assert code == 2
    assert out == ""
    assert "TOGETHER_API_KEY" in err
    assert "--emulator" in err
    assert "Traceback" not in err


def test_a_together_error_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(
        "--emulator", "--ttft", "0", "--tps", "0", "--model", "emulator/fault-http-401", "x"
    )
    assert code == 1
    assert "TogetherAuthenticationError" in err
    assert "Traceback" not in err


def test_console_script_runs_as_a_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TOGETHER_API_KEY"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_together_stream.cli",
            "--emulator",
            "--ttft",
            "0",
            "--tps",
            "0",
            "--max-tokens",
            "5",
            "Hello",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "5 tokens" in done.stderr


@pytest.mark.parametrize(
    ("max_tokens", "finish"), [("12", "length"), ("128", "eos")], ids=["length", "eos"]
)
def test_the_stats_line_counts_the_tokens_usage_counts(max_tokens: str, finish: str) -> None:
    # An eos stream ends with an empty chunk carrying the end-of-sequence token, which usage
    # counts: so does the stats line.
    code, _, err = run(*FAST, "--max-tokens", max_tokens, "Alan Turing was")
    assert code == 0
    counted = re.search(r"(\d+) tokens ·", err)
    usage = re.search(r"(\d+) completion", err)
    assert counted
    assert usage
    assert f"finish {finish}" in err
    assert counted[1] == usage[1], err


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "langchain_together_stream.cli", *argv]


def test_a_reader_that_leaves_early_ends_the_command_quietly() -> None:
    # `together-stream ... | head -c 20`: the pipe closes while tokens still come.
    env = {k: v for k, v in os.environ.items() if k != "TOGETHER_API_KEY"}
    with subprocess.Popen(
        _cli("--emulator", "--ttft", "0", "--tps", "50", "--max-tokens", "200", "Hello"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        head = process.stdout.read(20)
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert len(head) == 20
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert err == ""
    assert code == 141  # 128 + SIGPIPE, what a shell shows for `yes | head`


class _ClosedAfter(io.StringIO):
    """A stdout whose reader leaves after `writes` writes."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.left = writes

    def write(self, text: str) -> int:
        if self.left == 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)


def test_a_broken_pipe_closes_the_stream_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "any-key")
    err = io.StringIO()
    with TogetherEmulator(time_to_first_token=0, tokens_per_second=20) as emulator:
        code = main(
            ["--base-url", emulator.base_url, "--max-tokens", "400", "Hello"],
            stdout=_ClosedAfter(3),
            stderr=err,
        )
        deadline = time.monotonic() + 5
        while emulator.requests[-1].finished_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
        request = emulator.requests[-1]
    assert code == 141
    assert err.getvalue() == ""
    # The emulator saw the client leave after a handful of its 400 tokens (20 s of them).
    assert request.disconnected_at is not None
    assert request.tokens_sent < 100
