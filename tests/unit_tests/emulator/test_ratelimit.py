"""The emulator's account-level rate limit and its ledger, over real sockets."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import pytest

from langchain_together_stream import (
    ChatTogether,
    TogetherLLM,
    TogetherRateLimitError,
    TogetherServerError,
)
from langchain_together_stream.emulator import AccountRateLimit, Ledger, TogetherEmulator

KEY = "sk-emulator-test-key-0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def post(emu: TogetherEmulator, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
        conn.request("POST", "/v1/completions", json.dumps(body).encode(), headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def get_ledger(emu: TogetherEmulator) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        conn.request("GET", "/emulator/ledger")
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_request_budget_answers_429_as_together_does() -> None:
    clock = FakeClock()
    limit = AccountRateLimit(requests_per_second=2, overload_after=None, clock=clock)
    with TogetherEmulator(rate_limit=limit) as emu:
        body = {"model": "m", "prompt": "hi", "max_tokens": 3}
        assert post(emu, body)[0] == 200
        assert post(emu, body)[0] == 200
        status, headers, data = post(emu, body)
        assert status == 429
        err = json.loads(data)["error"]
        assert err["type"] == "rate_limit_exceeded"
        assert headers["x-ratelimit-limit"] == "2"
        assert headers["x-ratelimit-remaining"] == "0"
        # One request's worth of budget refills in half a second.
        assert float(headers["retry-after"]) == pytest.approx(0.5)
        assert headers["x-ratelimit-reset"] == headers["retry-after"]
        clock.now += 0.5
        assert post(emu, body)[0] == 200
        assert emu.ledger.requests == 3
        assert emu.ledger.rate_limited == 1


def test_token_budget_goes_into_debt_and_waits_for_repayment() -> None:
    clock = FakeClock()
    # 600 tokens/min = 10 per second; the bucket holds 10.
    limit = AccountRateLimit(tokens_per_minute=600, clock=clock)
    with TogetherEmulator(rate_limit=limit) as emu:
        body = {"model": "m", "prompt": "one two", "max_tokens": 28}
        assert post(emu, body)[0] == 200  # ~30 tokens: 20 in debt
        status, headers, _ = post(emu, body)
        assert status == 429
        assert headers["x-ratelimit-limit-tokens"] == "600"
        assert float(headers["retry-after"]) > 1.5
        clock.now += float(headers["retry-after"])
        assert post(emu, body)[0] == 200


def test_hammering_through_429s_meets_a_503_burst() -> None:
    clock = FakeClock()
    limit = AccountRateLimit(
        requests_per_second=1, overload_after=3, overload_seconds=2.0, clock=clock
    )
    with TogetherEmulator(rate_limit=limit) as emu:
        body = {"model": "m", "prompt": "hi", "max_tokens": 2}
        statuses = [post(emu, body)[0] for _ in range(7)]
        assert statuses[:5] == [200, 429, 429, 429, 429]
        status, _, data = post(emu, body)
        assert status == 503
        assert json.loads(data)["error"]["message"] == "Overloaded"
        clock.now += 2.0
        assert post(emu, body)[0] == 200
        assert emu.ledger.overloaded >= 1


def test_the_client_sees_typed_errors_with_retry_after() -> None:
    clock = FakeClock()
    limit = AccountRateLimit(requests_per_second=1, overload_after=1, clock=clock)
    with TogetherEmulator(rate_limit=limit) as emu:
        llm = TogetherLLM(model="m", api_key=KEY, base_url=emu.base_url, max_retries=0)
        llm.invoke("hi", max_tokens=2)
        with pytest.raises(TogetherRateLimitError) as info:
            llm.invoke("hi", max_tokens=2)
        assert info.value.retry_after == pytest.approx(1.0)
        with pytest.raises(TogetherRateLimitError):
            llm.invoke("hi", max_tokens=2)
        with pytest.raises(TogetherServerError) as overloaded:
            llm.invoke("hi", max_tokens=2)
        assert overloaded.value.status_code == 503


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_ledger_equals_summed_usage(mode: str) -> None:
    with TogetherEmulator() as emu:
        llm = TogetherLLM(model="m", api_key=KEY, base_url=emu.base_url, max_tokens=7)
        prompts = [f"prompt number {i}" for i in range(12)]
        result = llm.generate(prompts) if mode == "sync" else asyncio.run(llm.agenerate(prompts))
        usage = result.llm_output["token_usage"]  # type: ignore[index]
        ledger = emu.ledger
        assert ledger.completed == ledger.requests == 12
        assert ledger.prompt_tokens == usage["prompt_tokens"]
        assert ledger.completion_tokens == usage["completion_tokens"]
        assert ledger.total_tokens == usage["total_tokens"]
        assert get_ledger(emu) == ledger.as_dict()
        emu.clear()
        assert emu.ledger == Ledger()


def test_a_stream_cut_short_is_not_in_the_ledger() -> None:
    with TogetherEmulator(tokens_per_second=200) as emu:
        llm = TogetherLLM(model="m", api_key=KEY, base_url=emu.base_url, max_tokens=50)
        for _ in llm.stream("hello"):
            break
        assert emu.wait_for_requests(1, timeout=5)
        assert emu.ledger.requests == 1
        assert emu.ledger.completed == 0
        assert emu.ledger.total_tokens == 0


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        AccountRateLimit(requests_per_second=0)
    with pytest.raises(ValueError, match="burst_seconds"):
        AccountRateLimit(burst_seconds=0)


def test_chat_requests_share_the_account_limit() -> None:
    clock = FakeClock()
    limit = AccountRateLimit(requests_per_second=1, overload_after=None, clock=clock)
    with TogetherEmulator(rate_limit=limit) as emu:
        chat = ChatTogether(model="m", api_key=KEY, base_url=emu.base_url, max_retries=0)
        assert chat.invoke("hi").content
        with pytest.raises(TogetherRateLimitError):
            chat.invoke("hi again")
        assert emu.ledger.requests == 1
        assert emu.ledger.rate_limited == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_usage_is_in_the_ledger(mode: str) -> None:
    with TogetherEmulator() as emu:
        chat = ChatTogether(model="m", api_key=KEY, base_url=emu.base_url, max_tokens=5)
        prompts = [f"prompt number {i}" for i in range(6)]
        replies = chat.batch(prompts) if mode == "sync" else asyncio.run(chat.abatch(prompts))
        usages = [reply.usage_metadata for reply in replies]  # type: ignore[attr-defined]
        assert all(usage is not None for usage in usages)
        ledger = emu.ledger
        assert ledger.completed == ledger.requests == 6
        assert ledger.prompt_tokens == sum(u["input_tokens"] for u in usages)  # type: ignore[index]
        assert ledger.completion_tokens == sum(u["output_tokens"] for u in usages)  # type: ignore[index]
