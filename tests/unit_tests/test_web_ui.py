"""The web UI example in a real headless Chromium: tokens appear as they arrive."""

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from langchain_together_stream import TogetherLLM
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
        server = app.make_server(llm)
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


def test_tokens_appear_incrementally() -> None:
    with (
        web_app("meta-llama/Llama-3.3-70B-Instruct-Turbo") as (url, emulator),
        browser_page() as page,
    ):
        page.goto(url)  # type: ignore[attr-defined]
        page.click("button")  # type: ignore[attr-defined]
        snapshots = []
        sent_when_first_shown = None
        for _ in range(400):
            text = page.inner_text("#output")  # type: ignore[attr-defined]
            if text and sent_when_first_shown is None:
                sent_when_first_shown = emulator.requests[-1].tokens_sent
            if not snapshots or snapshots[-1] != text:
                snapshots.append(text)
            if page.inner_text("#status") == "done":  # type: ignore[attr-defined]
                break
            page.wait_for_timeout(10)  # type: ignore[attr-defined]
        times = page.evaluate("window.tokenTimes")  # type: ignore[attr-defined]
        final = page.inner_text("#output")  # type: ignore[attr-defined]
    assert page is not None
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
