"""Wire-level tests for the Together emulator, using only the standard library."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_together_stream.emulator import FAULTS, RecordedRequest, TogetherEmulator

KEY = "sk-emulator-test-key-0123456789"
TIMEOUT = 5.0


@pytest.fixture
def emu() -> Iterator[TogetherEmulator]:
    with TogetherEmulator() as server:
        yield server


# ---------------------------------------------------------------------- helpers


def post(
    emu: TogetherEmulator,
    body: Any,
    headers: dict[str, str] | None = None,
    path: str = "/v1/completions",
    key: str | None = KEY,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=TIMEOUT)
    try:
        all_headers = {"Content-Type": "application/json"}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        all_headers.update(headers or {})
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, payload, all_headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_send(
    emu: TogetherEmulator,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/v1/completions",
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=TIMEOUT)
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{emu.port}",
        f"Authorization: Bearer {KEY}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    return sock


def read_until_close(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> bytes:
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and total < limit:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def read_until(sock: socket.socket, marker: bytes, buf: bytes = b"") -> bytes:
    deadline = time.monotonic() + TIMEOUT
    while marker not in buf and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return buf


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body; the flag says whether the terminator arrived."""
    out = bytearray()
    pos = 0
    while pos < len(body):
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end], 16)
        if size == 0:
            return bytes(out), True
        out += body[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2
    return bytes(out), False


def data_lines(body: bytes) -> list[str]:
    return [line[6:] for line in body.decode("utf-8").split("\n") if line.startswith("data: ")]


def chunks_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(d) for d in data_lines(body) if d != "[DONE]"]


def text_of(body: bytes) -> str:
    return "".join(c["choices"][0]["text"] for c in chunks_of(body))


def stream(emu: TogetherEmulator, **fields: Any) -> tuple[int, dict[str, str], bytes]:
    headers = fields.pop("headers", None)
    body = {"model": "m", "prompt": "Tell me about rivers.", "stream": True, **fields}
    return post(emu, body, headers)


# ---------------------------------------------------------------------- success paths


def test_stream_has_recorded_shape(emu: TogetherEmulator) -> None:
    status, headers, body = stream(emu, max_tokens=12)
    assert status == 200
    assert headers["content-type"] == "text/event-stream;charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["transfer-encoding"] == "chunked"
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "cf-ray"):
        assert name in headers
    assert body.endswith(b"data: [DONE]\n\n")
    assert all(block.startswith(b"data: ") for block in body.split(b"\n\n") if block)
    chunks = chunks_of(body)
    assert len(chunks) == 12
    assert len({c["id"] for c in chunks}) == 1
    for chunk in chunks[:-1]:
        assert list(chunk) == ["id", "object", "created", "choices", "model", "usage"]
        assert chunk["object"] == "completion.chunk"
        assert chunk["model"] == "m"
        assert chunk["usage"] is None
        choice = chunk["choices"][0]
        assert list(choice) == [
            "index",
            "text",
            "logprobs",
            "finish_reason",
            "seed",
            "delta",
        ]
        assert choice["finish_reason"] is None
        assert choice["seed"] is None
        assert choice["delta"]["content"] == choice["text"]
        assert choice["delta"]["role"] == "assistant"
        assert isinstance(choice["delta"]["token_id"], int)
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["choices"][0]["text"]
    assert isinstance(last["choices"][0]["seed"], int)
    assert last["usage"]["completion_tokens"] == 12
    assert last["usage"]["total_tokens"] == 12 + last["usage"]["prompt_tokens"]


def test_natural_end_is_eos_with_empty_final_chunk(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu)
    chunks = chunks_of(body)
    assert 40 <= len(chunks) <= 120
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "eos"
    assert last["text"] == ""
    assert last["delta"]["token_id"] == 128009
    assert chunks[-1]["usage"]["completion_tokens"] == len(chunks)
    assert text_of(body).rstrip().endswith(".")


def test_same_prompt_and_seed_give_same_text(emu: TogetherEmulator) -> None:
    first = text_of(stream(emu, seed=7)[2])
    again = text_of(stream(emu, seed=7)[2])
    other = text_of(stream(emu, seed=8)[2])
    assert first == again
    assert first != other
    _, _, plain = post(emu, {"model": "m", "prompt": "Tell me about rivers.", "seed": 7})
    assert json.loads(plain)["choices"][0]["text"] == first


def test_token_ids_are_stable_per_text(emu: TogetherEmulator) -> None:
    ids: dict[str, int] = {}
    for seed in range(3):
        for chunk in chunks_of(stream(emu, seed=seed)[2]):
            choice = chunk["choices"][0]
            if choice["text"]:
                assert (
                    ids.setdefault(choice["text"], choice["delta"]["token_id"])
                    == (choice["delta"]["token_id"])
                )


def test_max_tokens_prefix_of_longer_answer(emu: TogetherEmulator) -> None:
    full = text_of(stream(emu, seed=1)[2])
    short = text_of(stream(emu, seed=1, max_tokens=5)[2])
    assert full.startswith(short)
    assert short


def test_stop_sequence_cuts_before_stop(emu: TogetherEmulator) -> None:
    full = text_of(stream(emu, seed=3)[2])
    _, _, body = stream(emu, seed=3, stop=["."])
    chunks = chunks_of(body)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert text_of(body) == full[: full.index(".")]
    _, _, body = stream(emu, seed=3, stop=".")
    assert text_of(body) == full[: full.index(".")]


def test_logprobs_are_floats_per_token(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu, max_tokens=5, logprobs=1)
    for chunk in chunks_of(body):
        assert isinstance(chunk["choices"][0]["logprobs"], float)
        assert chunk["choices"][0]["logprobs"] <= 0


def test_non_stream_body(emu: TogetherEmulator) -> None:
    status, headers, body = post(emu, {"model": "m", "prompt": "Hi", "max_tokens": 4, "echo": True})
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    obj = json.loads(body)
    assert obj["object"] == "text.completion"
    assert obj["prompt"] == [{"text": "Hi", "logprobs": None}]
    choice = obj["choices"][0]
    assert set(choice) == {"text", "finish_reason", "seed", "logprobs", "index"}
    assert choice["finish_reason"] == "length"
    assert obj["usage"]["completion_tokens"] == 4


def test_legacy_inference_stream_and_body(emu: TogetherEmulator) -> None:
    req = {"model": "m", "prompt": "Hi", "max_tokens": 4, "stream_tokens": True}
    status, headers, body = post(emu, req, path="/inference")
    assert status == 200
    assert headers["content-type"] == "text/event-stream;charset=utf-8"
    assert body.endswith(b"data: [DONE]\n\n")
    events = chunks_of(body)
    assert len(events) == 4
    for event in events:
        assert list(event) == [
            "choices",
            "result_type",
            "id",
            "token",
            "generated_text",
            "details",
            "stats",
        ]
        assert event["result_type"] == "language-model-inference"
        assert event["token"]["text"] == event["choices"][0]["text"]
        assert event["token"]["special"] is False
        assert "usage" not in event
        assert "finish_reason" not in event["choices"][0]
    req["stream_tokens"] = False
    _, _, body = post(emu, req, path="/inference")
    obj = json.loads(body)
    assert obj["status"] == "finished"
    assert obj["output"]["result_type"] == "language-model-inference"
    assert obj["output"]["choices"][0]["text"] == "".join(e["choices"][0]["text"] for e in events)


def test_responder_drives_the_answer() -> None:
    def responder(prompt: str, request: Any) -> str | None:
        if "agent" in prompt:
            return " Thought: I know.\nFinal Answer: 42\nObservation: junk"
        return None

    with TogetherEmulator(responder=responder) as emu:
        _, _, body = stream(emu, prompt="agent question", stop=["\nObservation:"])
        assert text_of(body) == " Thought: I know.\nFinal Answer: 42"
        assert chunks_of(body)[-1]["choices"][0]["finish_reason"] == "stop"
        _, _, body = stream(emu, prompt="other", max_tokens=3)
        assert len(chunks_of(body)) == 3


def test_keep_alive_reuses_one_connection(emu: TogetherEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=TIMEOUT)
    try:
        for _ in range(3):
            body = json.dumps({"model": "m", "prompt": "x", "stream": True, "max_tokens": 3})
            conn.request("POST", "/v1/completions", body, {"Authorization": f"Bearer {KEY}"})
            assert conn.getresponse().read().endswith(b"data: [DONE]\n\n")
    finally:
        conn.close()
    assert emu.connections_opened == 1
    assert {r.connection_id for r in emu.requests} == {1}


def test_pacing_headers_override_defaults(emu: TogetherEmulator) -> None:
    start = time.monotonic()
    stream(emu, max_tokens=3, headers={"X-Emulator-TTFT": "0.2", "X-Emulator-TPS": "50"})
    assert time.monotonic() - start >= 0.2
    _, _, body = stream(emu, headers={"X-Emulator-Tokens": "7"})
    assert len(chunks_of(body)) == 8  # seven tokens and the empty eos chunk


# ---------------------------------------------------------------------- errors


def assert_envelope(body: bytes, error_type: str | None = None) -> dict[str, Any]:
    obj = json.loads(body)
    assert list(obj) == ["id", "error"]
    assert list(obj["error"]) == ["message", "type", "param", "code"]
    if error_type is not None:
        assert obj["error"]["type"] == error_type
    return obj["error"]  # type: ignore[no-any-return]


def test_auth_required(emu: TogetherEmulator) -> None:
    status, headers, body = post(emu, {"model": "m", "prompt": "x"}, key=None)
    assert status == 401
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert_envelope(body, "invalid_request_error")
    status, _, _ = post(emu, {"model": "m", "prompt": "x"}, key="")
    assert status == 401


def test_api_keys_restrict() -> None:
    with TogetherEmulator(api_keys={"good"}) as emu:
        assert post(emu, {"model": "m", "prompt": "x"}, key="bad")[0] == 401
        assert post(emu, {"model": "m", "prompt": "x"}, key="good")[0] == 200


def test_key_is_redacted_from_records(emu: TogetherEmulator) -> None:
    stream(emu, max_tokens=2)
    post(emu, {"model": "m", "prompt": "x"}, key="wrong-key-abc")
    records = emu.requests
    assert all(isinstance(r, RecordedRequest) for r in records)
    assert records[0].headers["authorization"] == "[REDACTED]"
    assert KEY not in repr(records)
    assert "wrong-key-abc" not in repr(records)


def test_request_errors(emu: TogetherEmulator) -> None:
    status, _, body = post(emu, {"model": "m", "prompt": "x"}, path="/v1/nope")
    assert status == 404
    assert_envelope(body)
    status, _, body = post(emu, b"{not json")
    assert status == 400
    assert_envelope(body, "invalid_request_error")
    status, _, body = post(emu, {"prompt": "x"})
    assert status == 400
    assert assert_envelope(body, "invalid_request_error")["param"] == "model"
    status, _, body = post(emu, {"model": "m"})
    assert status == 400
    assert assert_envelope(body)["param"] == "prompt"
    status, _, body = post(emu, {"model": "m", "prompt": "x", "n": 2, "stream": True})
    assert status == 400
    assert "n > 1" in assert_envelope(body)["message"]


# ---------------------------------------------------------------------- faults

HTTP_STATUSES = [400, 401, 402, 403, 404, 422, 429, 500, 502, 503, 504]


def test_fault_catalog_is_complete() -> None:
    for status in HTTP_STATUSES:
        for suffix in ("", "-html", "-empty"):
            assert f"http-{status}{suffix}" in FAULTS
    for name in (
        "credit-limit",
        "rate-limit-then-ok",
        "server-error-then-ok",
        "error-mid-stream",
        "event-error",
        "truncate",
        "malformed-json",
        "invalid-utf8",
        "stall",
        "stall-headers",
        "reset",
        "close-delimited",
        "crlf",
        "keepalive",
        "long-line",
        "not-sse",
        "redirect",
        "byte-at-a-time",
    ):
        assert FAULTS[name]
    assert list(FAULTS) == sorted(FAULTS)


@pytest.mark.parametrize("status", HTTP_STATUSES)
def test_http_faults(emu: TogetherEmulator, status: int) -> None:
    code, headers, body = stream(emu, headers={"X-Emulator-Fault": f"http-{status}"})
    assert code == status
    assert headers["content-type"] == "application/json; charset=utf-8"
    error = assert_envelope(body)
    if status == 429:
        assert error["type"] == "rate_limit_exceeded"
        assert headers["retry-after"] == "1"
        assert "x-ratelimit-reset" in headers
    if status == 503:
        assert error["message"] == "Overloaded"
    if status == 402:
        assert error["type"] == "credit_limit"
    code, headers, body = stream(emu, headers={"X-Emulator-Fault": f"http-{status}-html"})
    assert code == status
    assert headers["content-type"] == "text/html"
    assert body.startswith(b"<html>")
    code, _, body = stream(emu, model=f"emulator/fault-http-{status}-empty")
    assert code == status
    assert body == b""
    assert emu.requests[-1].fault == f"http-{status}-empty"


def test_header_fault_wins_over_model(emu: TogetherEmulator) -> None:
    code, _, _ = stream(
        emu, model="emulator/fault-http-500", headers={"X-Emulator-Fault": "http-404"}
    )
    assert code == 404


def test_unknown_fault_is_400(emu: TogetherEmulator) -> None:
    code, _, body = stream(emu, headers={"X-Emulator-Fault": "nonsense"})
    assert code == 400
    assert "nonsense" in assert_envelope(body)["message"]
    code, _, _ = stream(emu, headers={"X-Emulator-Fault": "stall;after=x"})
    assert code == 400


def test_credit_limit(emu: TogetherEmulator) -> None:
    code, _, body = stream(emu, headers={"X-Emulator-Fault": "credit-limit"})
    assert code == 429
    assert_envelope(body, "credit_limit")


@pytest.mark.parametrize(
    ("fault", "status"), [("rate-limit-then-ok", 429), ("server-error-then-ok", 503)]
)
def test_then_ok_faults(emu: TogetherEmulator, fault: str, status: int) -> None:
    headers = {"X-Emulator-Fault": f"{fault};count=2;seconds=0.25"}
    for _ in range(2):
        code, got, body = stream(emu, max_tokens=2, headers=headers)
        assert code == status
        assert got["retry-after"] == "0.25"
        assert got["x-ratelimit-reset"] == "0.25"
        assert_envelope(body)
    # A different prompt has its own counter.
    assert stream(emu, prompt="another", max_tokens=2, headers=headers)[0] == status
    code, _, body = stream(emu, max_tokens=2, headers=headers)
    assert code == 200
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("fault", ["error-mid-stream", "event-error"])
def test_error_events_mid_stream(emu: TogetherEmulator, fault: str) -> None:
    code, headers, body = stream(emu, headers={"X-Emulator-Fault": f"{fault};after=2"})
    assert code == 200
    assert headers["transfer-encoding"] == "chunked"
    blocks = [b for b in body.decode().split("\n\n") if b]
    assert len(blocks) == 3
    assert b"[DONE]" not in body
    if fault == "event-error":
        assert blocks[-1].startswith("event: error\ndata: ")
    error = json.loads(blocks[-1].split("data: ", 1)[1])["error"]
    assert error["type"] == "server_error"
    assert emu.requests[-1].tokens_sent == 2


def test_truncate_ends_cleanly_without_done(emu: TogetherEmulator) -> None:
    code, _, body = stream(emu, headers={"X-Emulator-Fault": "truncate;after=4"})
    assert code == 200
    chunks = chunks_of(body)
    assert len(chunks) == 4
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert b"[DONE]" not in body


def test_malformed_json_then_rest(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu, max_tokens=5, headers={"X-Emulator-Fault": "malformed-json"})
    lines = data_lines(body)
    assert lines[3] == '{"choices": ['
    assert lines[-1] == "[DONE]"
    for line in lines[:3] + lines[4:-1]:
        json.loads(line)


def test_invalid_utf8(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu, max_tokens=5, headers={"X-Emulator-Fault": "invalid-utf8;after=1"})
    events = body.split(b"\n\n")
    with pytest.raises(UnicodeDecodeError):
        events[1].decode("utf-8")
    events[0].decode("utf-8")
    assert body.endswith(b"data: [DONE]\n\n")


def test_stall_then_continue(emu: TogetherEmulator) -> None:
    start = time.monotonic()
    _, _, body = stream(
        emu, max_tokens=4, headers={"X-Emulator-Fault": "stall;after=0;seconds=0.3"}
    )
    assert time.monotonic() - start >= 0.3
    assert len(chunks_of(body)) == 4
    start = time.monotonic()
    code, _, _ = stream(
        emu, max_tokens=2, headers={"X-Emulator-Fault": "stall-headers;seconds=0.3"}
    )
    assert code == 200
    assert time.monotonic() - start >= 0.3


def test_stall_headers_sends_nothing(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu, {"model": "m", "prompt": "x", "stream": True}, {"X-Emulator-Fault": "stall-headers"}
    )
    with sock:
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_reset_gives_connection_reset(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu, {"model": "m", "prompt": "x", "stream": True}, {"X-Emulator-Fault": "reset;after=2"}
    )
    with sock, pytest.raises(ConnectionResetError):
        read_until_close(sock)
    # Without a body an immediate RST may also arrive before the first byte.
    sock = raw_send(emu, {"model": "m", "prompt": "x"}, {"X-Emulator-Fault": "reset"})
    with sock, pytest.raises(ConnectionResetError):
        read_until_close(sock)


def test_close_delimited_stream(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu,
        {"model": "m", "prompt": "x", "stream": True, "max_tokens": 3},
        {"X-Emulator-Fault": "close-delimited"},
    )
    with sock:
        status, headers, body = split_response(read_until_close(sock))
    assert status == 200
    assert "transfer-encoding" not in headers
    assert "content-length" not in headers
    assert headers["connection"] == "close"
    assert body.endswith(b"data: [DONE]\n\n")
    assert len(chunks_of(body)) == 3


def test_crlf_stream(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu, max_tokens=3, headers={"X-Emulator-Fault": "crlf"})
    assert body.count(b"\r\n\r\n") == 4
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert body.endswith(b"data: [DONE]\r\n\r\n")


def test_keepalive_comments(emu: TogetherEmulator) -> None:
    _, _, body = stream(emu, max_tokens=3, headers={"X-Emulator-Fault": "keepalive;count=2"})
    assert body.count(b": keep-alive\n\n") == 6
    assert len(chunks_of(body)) == 3


def test_long_line(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu,
        {"model": "m", "prompt": "x", "stream": True},
        {"X-Emulator-Fault": "long-line;after=1;bytes=300000"},
    )
    with sock:
        _, _, raw_body = split_response(read_until_close(sock))
    body, complete = dechunk(raw_body)
    assert complete
    first, _, rest = body.partition(b"\n\n")
    json.loads(first[6:])
    assert len(rest) == 300000
    assert rest.startswith(b"data: xxx")
    assert b"\n" not in rest


def test_not_sse(emu: TogetherEmulator) -> None:
    code, headers, body = stream(emu, max_tokens=3, headers={"X-Emulator-Fault": "not-sse"})
    assert code == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["object"] == "text.completion"


def test_redirect_is_not_followed_by_http_client(emu: TogetherEmulator) -> None:
    code, headers, _ = stream(emu, headers={"X-Emulator-Fault": "redirect"})
    assert code == 307
    assert headers["location"] == f"{emu.root_url}/redirected/v1/completions"
    assert [r.path for r in emu.requests] == ["/v1/completions"]


def test_byte_at_a_time(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu,
        {"model": "m", "prompt": "x", "stream": True, "max_tokens": 3},
        {"X-Emulator-Fault": "byte-at-a-time"},
    )
    with sock:
        raw = read_until(sock, b"0\r\n\r\n")
    _, _, raw_body = split_response(raw)
    assert raw_body.startswith(b"1\r\nd\r\n1\r\na\r\n")
    body, complete = dechunk(raw_body)
    assert complete
    assert len(chunks_of(body)) == 3


# ---------------------------------------------------------------------- disconnects


def test_disconnect_noticed_while_pacing() -> None:
    with TogetherEmulator(tokens_per_second=5) as emu:
        sock = raw_send(emu, {"model": "m", "prompt": "x", "stream": True})
        read_until(sock, b"data: ")
        broke_at = time.monotonic()
        sock.close()
        noticed = emu.wait_for_disconnect(timeout=TIMEOUT)
        assert noticed is not None
        assert noticed - broke_at < 0.3
        record = emu.requests[-1]
        assert record.disconnected_at == noticed
        assert 1 <= record.tokens_sent < 5


def test_disconnect_noticed_during_stall(emu: TogetherEmulator) -> None:
    sock = raw_send(
        emu,
        {"model": "m", "prompt": "x", "stream": True},
        {"X-Emulator-Fault": "stall;after=1;seconds=30"},
    )
    read_until(sock, b"data: ")
    broke_at = time.monotonic()
    sock.close()
    noticed = emu.wait_for_disconnect(timeout=TIMEOUT)
    assert noticed is not None
    assert noticed - broke_at < 0.3
    assert emu.wait_for_requests(1, timeout=TIMEOUT)


def test_wait_for_disconnect_none_when_completed(emu: TogetherEmulator) -> None:
    stream(emu, max_tokens=2)
    assert emu.wait_for_disconnect(timeout=0.5) is None


# ---------------------------------------------------------------------- scale and lifecycle


def test_concurrent_streams_all_complete() -> None:
    results: list[bool] = []
    lock = threading.Lock()
    with TogetherEmulator(tokens_per_second=200) as emu:

        def worker(i: int) -> None:
            _, _, body = stream(emu, prompt=f"p{i}", max_tokens=10)
            with lock:
                results.append(body.endswith(b"data: [DONE]\n\n") and len(chunks_of(body)) == 10)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 4)
        assert results.count(True) == 200
        assert emu.connections_opened == 200


def test_stop_is_quick_with_open_connections() -> None:
    emu = TogetherEmulator().start()
    idle = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=TIMEOUT)
    idle.request(
        "POST",
        "/v1/completions",
        json.dumps({"model": "m", "prompt": "x"}),
        {"Authorization": f"Bearer {KEY}"},
    )
    idle.getresponse().read()
    stalled = raw_send(
        emu, {"model": "m", "prompt": "x", "stream": True}, {"X-Emulator-Fault": "stall;after=0"}
    )
    read_until(stalled, b"\r\n\r\n")
    start = time.monotonic()
    emu.stop()
    assert time.monotonic() - start < 2.5
    assert not [t for t in threading.enumerate() if t.name.startswith("together-emulator")]
    idle.close()
    stalled.close()
    with pytest.raises(RuntimeError):
        _ = emu.base_url


def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        TogetherEmulator(host="0.0.0.0")


def test_urls(emu: TogetherEmulator) -> None:
    assert emu.root_url == f"http://127.0.0.1:{emu.port}"
    assert emu.base_url == f"{emu.root_url}/v1"


def test_command_line_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_together_stream.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Together emulator: http://127.0.0.1:")
        base_url = line.split(": ", 1)[1].strip()
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request(
            "POST",
            "/v1/completions",
            json.dumps({"model": "m", "prompt": "x", "max_tokens": 2}),
            {"Authorization": "Bearer k"},
        )
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def test_faults_apply_to_legacy_inference(emu: TogetherEmulator) -> None:
    req = {"model": "m", "prompt": "x", "stream_tokens": True}
    _, _, body = post(emu, req, {"X-Emulator-Fault": "error-mid-stream;after=1"}, "/inference")
    blocks = [b for b in body.decode().split("\n\n") if b]
    assert len(blocks) == 2
    assert json.loads(blocks[0][6:])["result_type"] == "language-model-inference"
    assert json.loads(blocks[1][6:])["error"]["type"] == "server_error"
    code, _, _ = post(emu, req, {"X-Emulator-Fault": "http-503"}, "/inference")
    assert code == 503


def test_non_stream_truncate_ends_short_of_content_length(emu: TogetherEmulator) -> None:
    sock = raw_send(emu, {"model": "m", "prompt": "x"}, {"X-Emulator-Fault": "truncate"})
    with sock:
        _, headers, body = split_response(read_until_close(sock))
    assert 0 < len(body) < int(headers["content-length"])


def test_http_error_with_any_status(emu: TogetherEmulator) -> None:
    code, _, body = stream(emu, headers={"X-Emulator-Fault": "http-error;status=418"})
    assert code == 418
    assert_envelope(body, "invalid_request_error")


def test_bad_pacing_header_is_400(emu: TogetherEmulator) -> None:
    code, _, body = stream(emu, headers={"X-Emulator-TPS": "fast"})
    assert code == 400
    assert "X-Emulator-TPS" in assert_envelope(body)["message"]
