"""Every example runs end to end against the emulator."""

import selectors
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from langchain_together_stream.emulator import TogetherEmulator
from tests.llm_helpers import load_example as load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart() -> None:
    with TogetherEmulator() as emulator:
        result = load("quickstart.py").main(emulator.base_url)
    assert result["invoke"].strip()
    assert len(result["stream"]) > 3
    assert result["counted"]
    assert result["info"]["finish_reason"] in {"length", "eos", "stop"}


def test_chain() -> None:
    with TogetherEmulator() as emulator:
        result = load("chain.py").main(emulator.base_url)
        prompts = [request.json["prompt"] for request in emulator.requests if request.json]
    assert len(result["stream"]) > 3
    assert len(result["batch"]) == 3
    assert all(answer.strip() for answer in result["batch"])
    assert "Write one sentence about owls:" in prompts


def test_agent_uses_its_tools_and_answers() -> None:
    agent = load("agent.py")
    with TogetherEmulator(responder=agent.scripted_model) as emulator:
        answer, steps = agent.main(emulator.base_url)
        stops = [request.json.get("stop") for request in emulator.requests if request.json]
    assert steps == ["multiply(12 * 7) -> 84", "word_length(lighthouse) -> 10"]
    assert answer == "12 * 7 = 84, and 'lighthouse' has 10 letters."
    assert stops == [["\nObservation:"]] * 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()


def test_the_web_ui_listens_on_the_port_it_is_given() -> None:
    port = _free_port()
    with subprocess.Popen(
        [sys.executable, str(EXAMPLES / "web_ui" / "app.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            line = _first_line(process, timeout=90)
            assert line.strip() == f"Open http://127.0.0.1:{port}/ (Ctrl-C to stop)"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
                assert page.status == 200
                assert b"EventSource" in page.read()
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


def test_the_quickstart_without_the_package_says_how_to_install_it() -> None:
    # -S leaves out site-packages: a Python where the package is not installed.
    done = subprocess.run(
        [sys.executable, "-S", str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=EXAMPLES,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pip install" in done.stderr
    assert ".venv/bin/python examples/quickstart.py" in done.stderr
