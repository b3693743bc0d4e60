"""The web UI example in a real headless Chromium: tokens appear as they arrive.

The same page drives TogetherLLM, ChatTogether and the LangGraph agent of
examples/chat_agent.py (`?mode=` or the menu).
"""

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from langchain_together_stream import ChatTogether, TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator
from tests.llm_helpers import load_example as load

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium); the browser test needs it",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKENS_PER_SECOND = 20


@contextmanager
def web_app(model: str) -> Iterator[tuple[str, TogetherEmulator]]:
    app = load("web_ui/app.py")
    with TogetherEmulator(tokens_per_second=TOKENS_PER_SECOND) as emulator:
        llm = TogetherLLM(
            model=model, api_key="emulator-key", base_url=emulator.base_url, max_tokens=20
        )
        chat = ChatTogether(
            model=model, api_key="emulator-key", base_url=emulator.base_url, max_tokens=20
        )
        server = app.make_server(llm, chat=chat)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            host, port = server.server_address[:2]
            yield f"http://{host}:{port}/", emulator
        finally:
            server.shutdown()
            server.server_close()


@contextmanager
def browser_page() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def watch(page: Any, emulator: TogetherEmulator) -> tuple[list[str], int | None]:
    """Every distinct state of #output until the page says done, and how many tokens the
    emulator had written when the first text showed."""
    snapshots: list[str] = []
    sent_when_first_shown = None
    for _ in range(400):
        text = page.inner_text("#output")
        if text and sent_when_first_shown is None:
            sent_when_first_shown = emulator.requests[-1].tokens_sent
        if not snapshots or snapshots[-1] != text:
            snapshots.append(text)
        if page.inner_text("#status") in {"done", "failed"}:
            break
        page.wait_for_timeout(10)
    return snapshots, sent_when_first_shown


def test_tokens_appear_incrementally() -> None:
    with (
        web_app("meta-llama/Llama-3.3-70B-Instruct-Turbo") as (url, emulator),
        browser_page() as page,
    ):
        page.goto(url)  # type: ignore[attr-defined]
        page.click("button")  # type: ignore[attr-defined]
        snapshots, sent_when_first_shown = watch(page, emulator)
        times = page.evaluate("window.tokenTimes")  # type: ignore[attr-defined]
        final = page.inner_text("#output")  # type: ignore[attr-defined]
        modes = [request.path for request in emulator.requests]
    assert page is not None
    assert modes == ["/v1/completions"]
    assert len(times) == 20
    # Each observed state extends the previous one: the text grew token by token...
    assert len(snapshots) >= 5
    assert all(b.startswith(a) for a, b in zip(snapshots, snapshots[1:], strict=False))
    assert final.strip()
    # ...and the first words were on the page while the emulator was still generating the
    # rest: cause and effect, not a wall-clock bound.
    assert sent_when_first_shown is not None
    assert sent_when_first_shown < 20


def test_a_server_side_error_shows_on_the_page() -> None:
    with web_app("emulator/fault-error-mid-stream") as (url, _), browser_page() as page:
        page.goto(url)  # type: ignore[attr-defined]
        page.click("button")  # type: ignore[attr-defined]
        page.wait_for_selector("#error:not(:empty)", timeout=10_000)  # type: ignore[attr-defined]
        message = page.inner_text("#error")  # type: ignore[attr-defined]
        partial = page.inner_text("#output")  # type: ignore[attr-defined]
    assert message.startswith("Error:")
    assert "mid-stream" in message
    assert partial.strip()  # the tokens before the failure stay on the page


@pytest.mark.parametrize("how", ["query", "menu"])
def test_the_agent_mode_shows_the_tool_call_and_streams_the_answer(how: str) -> None:
    with (
        web_app("meta-llama/Llama-3.3-70B-Instruct-Turbo") as (url, emulator),
        browser_page() as page,
    ):
        if how == "query":
            page.goto(url + "?mode=agent")  # type: ignore[attr-defined]
        else:
            page.goto(url)  # type: ignore[attr-defined]
            page.select_option("#mode", "agent")  # type: ignore[attr-defined]
        assert page.input_value("#prompt") == "Use multiply to work out 12 times 7."  # type: ignore[attr-defined]
        page.click("button")  # type: ignore[attr-defined]
        snapshots, sent_when_first_shown = watch(page, emulator)
        tools = page.inner_text("#tools")  # type: ignore[attr-defined]
        status = page.inner_text("#status")  # type: ignore[attr-defined]
        final = page.inner_text("#output")  # type: ignore[attr-defined]
        bodies = [request.json for request in emulator.requests if request.json]
        paths = {request.path for request in emulator.requests}
    assert status == "done"
    assert tools.splitlines() == ["calling multiply", "result: multiply -> 84"]
    assert final == "The multiply tool returned 84."
    # The answer grew on the page, chunk by chunk, while the model was still writing it.
    assert len([text for text in snapshots if text]) >= 3
    assert all(b.startswith(a) for a, b in zip(snapshots, snapshots[1:], strict=False))
    assert sent_when_first_shown is not None
    assert sent_when_first_shown < emulator.requests[-1].tokens_sent
    # Two chat turns: the tool call, then the answer after the tool's result.
    assert paths == {"/v1/chat/completions"}
    assert len(bodies) == 2
    assert bodies[1]["messages"][-1]["content"] == "84"


def test_the_chat_mode_streams_chat_model_chunks() -> None:
    with (
        web_app("meta-llama/Llama-3.3-70B-Instruct-Turbo") as (url, emulator),
        browser_page() as page,
    ):
        page.goto(url + "?mode=chat")  # type: ignore[attr-defined]
        page.click("button")  # type: ignore[attr-defined]
        snapshots, sent_when_first_shown = watch(page, emulator)
        times = page.evaluate("window.tokenTimes")  # type: ignore[attr-defined]
        final = page.inner_text("#output")  # type: ignore[attr-defined]
        (request,) = emulator.requests
    assert request.path == "/v1/chat/completions"
    assert request.json is not None
    assert request.json["messages"] == [{"role": "user", "content": "Tell me about Alan Turing."}]
    assert len(times) == 20  # max_tokens=20, one event per token
    assert len(snapshots) >= 5
    assert all(b.startswith(a) for a, b in zip(snapshots, snapshots[1:], strict=False))
    assert final.strip()
    assert sent_when_first_shown is not None
    assert sent_when_first_shown < 20
