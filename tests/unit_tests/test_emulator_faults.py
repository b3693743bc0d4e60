"""The client's reaction to every fault the emulator can produce."""

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_together_stream import (
    TogetherAPIError,
    TogetherConnectionError,
    TogetherError,
    TogetherLLM,
    TogetherRateLimitError,
    TogetherStreamError,
    TogetherTimeoutError,
)
from langchain_together_stream.emulator import FAULTS, TogetherEmulator
from tests.conftest import STATUS_CLASSES

# Faults after which the client still returns the whole text.
HARMLESS = {
    "byte-at-a-time",
    "close-delimited",
    "crlf",
    "keepalive",
    "rate-limit-then-ok",
    "server-error-then-ok",
}
# Faults that break the stream after `after` tokens: (error class, text kept).
MID_STREAM = {
    "error-mid-stream": TogetherStreamError,
    "event-error": TogetherStreamError,
    "truncate": TogetherStreamError,
    "malformed-json": TogetherStreamError,
    "invalid-utf8": TogetherStreamError,
    "long-line": TogetherStreamError,
    "reset": TogetherConnectionError,
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as emu:
        yield emu


def llm_for(emulator: TogetherEmulator, **kwargs: Any) -> TogetherLLM:
    settings: dict[str, Any] = {
        "model": "m",
        "api_key": "k",
        "base_url": emulator.base_url,
        "timeout": (2.0, 2.0),
        "max_tokens": 16,
        "seed": 1,
    }
    settings.update(kwargs)
    return TogetherLLM(**settings)


def with_fault(fault: str) -> dict[str, Any]:
    return {"model": f"emulator/fault-{fault}"}


def test_every_fault_is_covered_here() -> None:
    covered = (
        set(HARMLESS)
        | set(MID_STREAM)
        | {"credit-limit", "http-error", "not-sse", "redirect", "stall", "stall-headers"}
    )
    covered |= {name for name in FAULTS if re.fullmatch(r"http-\d{3}(-html|-empty)?", name)}
    assert set(FAULTS) == covered


@pytest.mark.parametrize("fault", sorted(HARMLESS))
def test_harmless_faults_give_the_full_text(emulator: TogetherEmulator, fault: str) -> None:
    expected = llm_for(emulator).invoke("Tell me about lighthouses")
    got = llm_for(emulator, **with_fault(fault)).invoke("Tell me about lighthouses")
    # The fault rides in the model name, which the emulator reports back; the text is equal.
    assert got == expected


@pytest.mark.parametrize("fault", sorted(MID_STREAM))
def test_mid_stream_faults_keep_the_text_before_them(
    emulator: TogetherEmulator, fault: str
) -> None:
    clean = llm_for(emulator, max_tokens=3).invoke("Describe the sea")
    with pytest.raises(MID_STREAM[fault]) as info:
        llm_for(emulator, max_retries=3, **with_fault(fault)).invoke("Describe the sea")
    assert info.value.partial_text == clean  # the 3 tokens before the fault (after=3)
    assert emulator.requests[-1].json["model"] == f"emulator/fault-{fault}"  # never retried


@pytest.mark.parametrize("status", sorted(STATUS_CLASSES))
@pytest.mark.parametrize("variant", ["", "-html", "-empty"])
def test_http_errors_are_typed(emulator: TogetherEmulator, status: int, variant: str) -> None:
    with pytest.raises(STATUS_CLASSES[status]) as info:
        llm_for(emulator, max_retries=0, **with_fault(f"http-{status}{variant}")).invoke("x")
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert str(info.value)


def test_generic_http_error_status(emulator: TogetherEmulator) -> None:
    llm = llm_for(emulator, max_retries=0, model_kwargs={})
    with pytest.raises(TogetherAPIError) as info:
        llm.invoke("x", model="emulator/fault-http-error")
    assert info.value.status_code == 500


def test_rate_limit_then_ok_is_retried(emulator: TogetherEmulator) -> None:
    before = len(emulator.requests)
    text = llm_for(emulator, **with_fault("rate-limit-then-ok")).invoke("a fresh prompt 1")
    assert text
    assert len(emulator.requests) - before == 2


def test_credit_limit_is_not_retried(emulator: TogetherEmulator) -> None:
    before = len(emulator.requests)
    with pytest.raises(TogetherRateLimitError) as info:
        llm_for(emulator, max_retries=3, **with_fault("credit-limit")).invoke("x")
    assert info.value.error_type == "credit_limit"
    assert len(emulator.requests) - before == 1


def test_not_sse_is_a_stream_error(emulator: TogetherEmulator) -> None:
    with pytest.raises(TogetherStreamError, match="text/event-stream"):
        llm_for(emulator, **with_fault("not-sse")).invoke("x")


def test_redirect_is_refused_and_not_followed(emulator: TogetherEmulator) -> None:
    before = len(emulator.requests)
    with pytest.raises(TogetherAPIError, match="redirect"):
        llm_for(emulator, **with_fault("redirect")).invoke("x")
    assert len(emulator.requests) - before == 1


@pytest.mark.parametrize("fault", ["stall", "stall-headers"])
def test_stalls_time_out_and_release_the_connection(emulator: TogetherEmulator, fault: str) -> None:
    llm = llm_for(emulator, timeout=(2.0, 0.3), max_retries=0, **with_fault(fault))
    index = len(emulator.requests)
    started = time.monotonic()
    with pytest.raises(TogetherTimeoutError) as info:
        llm.invoke("Describe the sea")
    assert time.monotonic() - started < 10  # bounded by the idle timeout, not the 30 s stall
    if fault == "stall":
        assert info.value.partial_text == llm_for(emulator, max_tokens=3).invoke("Describe the sea")
    assert emulator.wait_for_disconnect(request_index=index, timeout=2.0) is not None


def test_early_break_disconnects_the_emulator_promptly() -> None:
    with TogetherEmulator(tokens_per_second=50) as paced:
        for _ in llm_for(paced, max_tokens=200).stream("A long story"):
            broke_at = time.monotonic()
            break
        noticed = paced.wait_for_disconnect(timeout=2.0)
    assert noticed is not None
    # A bound on "at once", far above the few milliseconds it takes, far below the 4 s left.
    assert noticed - broke_at < 0.3


def test_every_error_is_a_together_error() -> None:
    assert all(
        issubclass(cls, TogetherError) for cls in (*STATUS_CLASSES.values(), *MID_STREAM.values())
    )
