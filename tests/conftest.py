"""Shared fixtures: scripted loopback servers, conformance data, a clean environment."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from langchain_together_stream import TogetherAPIError, TogetherLLM
from langchain_together_stream._statuses import STATUSES
from tests.hostile import Path as CallPath
from tests.scripted_server import Reply, ScriptedServer, Seen

# Every status Together documents, and the error class each must raise: the package's own
# table, so a new status is one line there (test_errors pins the classes themselves).
STATUS_CLASSES: dict[int, type[TogetherAPIError]] = {
    status: meaning.error_class for status, meaning in STATUSES.items() if meaning.documented
}

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_MISSING = (
    f"conformance data not found at {SHARED}/conformance "
    "(it sits beside the project root in CI and on developer machines)"
)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/conformance, or a clear skip when the folder is absent."""
    path = SHARED.joinpath("conformance", *parts)
    if not path.exists():
        pytest.skip(SHARED_MISSING)
    return path


@pytest.fixture(autouse=True)
def _no_ambient_together_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key or base URL must never leak into a test.
    for name in ("TOGETHER_API_KEY", "TOGETHER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    os.environ.pop("NETRC", None)


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    """Start a scripted server: `serve(Reply(...), ...)` or `serve(callable)`."""
    servers: list[ScriptedServer] = []

    def start(*replies: Reply | Callable[[Seen], Reply]) -> ScriptedServer:
        script = replies[0] if len(replies) == 1 and callable(replies[0]) else list(replies)
        server = ScriptedServer(script).__enter__()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(params=["sync", "async"])
def path(request: pytest.FixtureRequest) -> Iterator[CallPath]:
    """The same test body through `invoke`/`stream` and through `ainvoke`/`astream`."""
    driver = CallPath(request.param)
    yield driver
    driver.close()


def make_llm(server: ScriptedServer, **kwargs: object) -> TogetherLLM:
    """A TogetherLLM pointed at `server`, failing fast."""
    settings: dict[str, object] = {
        "model": "test/model",
        "api_key": "sk-test-SECRET-0123456789",
        "base_url": server.base_url,
        "timeout": (2.0, 2.0),
    }
    settings.update(kwargs)
    return TogetherLLM(**settings)  # type: ignore[arg-type]


def pytest_report_header() -> str:
    """The runtime dependencies' versions under test (make test runs newest and lowest)."""
    from langchain_together_stream import _runs

    names = ("langchain-core", "requests", "urllib3", "sseclient-py", "pydantic", "aiohttp")
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)
    return f"tested with: {versions}; linear-time stream path on: {_runs.FAST_STREAM}"
