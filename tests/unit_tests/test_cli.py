import io
import os
import subprocess
import sys

import pytest

from langchain_together_stream.cli import main


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
