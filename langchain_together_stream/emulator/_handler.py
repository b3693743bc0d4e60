"""The HTTP request handler: routing, auth, validation, faults and streaming."""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import random
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_together_stream.emulator import _chat, _chat_wire, _text, _wire
from langchain_together_stream.emulator._faults import (
    HTTP_ERRORS,
    MODEL_PREFIX,
    FaultError,
    FaultSpec,
    parse_fault,
)
from langchain_together_stream.emulator._io import (
    BodyWriter,
    ClientGoneError,
    Connection,
    StoppingError,
)

if TYPE_CHECKING:
    from langchain_together_stream.emulator._server import EmulatorHTTPServer, _Record

__all__ = ["Handler"]

logger = logging.getLogger("langchain_together_stream.emulator")

_MAX_BODY = 16 * 1024 * 1024
_LONG_LINE_DEFAULT = 2 * 1024 * 1024
_LONG_LINE_CHUNK = 64 * 1024
_HTTP_STATUS_MIN = 100
_HTTP_STATUS_MAX = 599
_TOO_MANY_REQUESTS = 429
_MID_STREAM_ERROR = _wire.dumps(
    {
        "error": {
            "message": "Internal server error while generating",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
)
# \xff and \xfe never occur in UTF-8; \xc3 starts a sequence that "(" cannot continue.
_INVALID_UTF8_EVENT = b'data: {"choices":[{"index":0,"text":"\xff\xfe\xc3("}]}'
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
_REDACTED = "[REDACTED]"
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class _BadRequestError(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """Serves one connection: Together's endpoints plus the emulator's faults."""

    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    # An idle keep-alive connection is dropped after this long; stop() wakes it sooner.
    timeout = 60.0
    server: EmulatorHTTPServer
    conn: Connection
    connection_id: int
    rec: _Record

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.register_connection(self.connection)
        self.conn = Connection(self.connection, self.server.stopping)

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status are logged, never headers (the API key).
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        headers = {
            k.lower(): (_REDACTED if k.lower() in _SECRET_HEADERS else v)
            for k, v in self.headers.items()
        }
        rec = self.server.emulator._begin(self.command, self.path, headers, self.connection_id)
        self.rec = rec
        try:
            self._handle(rec)
        except ClientGoneError:
            self.server.emulator._mark_disconnected(rec)
            self.close_connection = True
            logger.debug("client hung up during %s %s", self.command, self.path)
        except StoppingError:
            self.close_connection = True
        except Exception:
            # A bug here or in a user's responder: answer 500 if nothing was sent yet.
            logger.exception("emulator failed on %s %s", self.command, self.path)
            self.close_connection = True
            if rec.status is None and not self.conn.aborted:
                with contextlib.suppress(ClientGoneError, StoppingError):
                    self._send_error(500, "Internal emulator error", "server_error")
        finally:
            if self.conn.aborted:
                self.close_connection = True
            self.server.emulator._finish(rec)

    def _handle(self, rec: _Record) -> None:
        body = self._read_body()
        path = urlsplit(self.path).path.rstrip("/") or "/"
        routes: dict[str, Callable[[_Record, bytes], None]] = {
            "/v1/completions": self._completions,
            "/completions": self._completions,
            "/inference": self._inference,
            "/api/inference": self._inference,
            "/v1/chat/completions": self._chat,
            "/chat/completions": self._chat,
        }
        route = routes.get(path)
        if path == "/emulator/ledger" and self.command == "GET":
            self._send_json(200, self.server.emulator.ledger.as_dict())
            return
        if path == "/v1/models" and self.command == "GET":
            self._models()
            return
        if route is None or self.command != "POST":
            self._send_error(404, f"Path {path} not found", "invalid_request_error")
            return
        if not self._authorized():
            self._send_http_error(401)
            return
        try:
            route(rec, body)
        except _BadRequestError as exc:
            self._send_error(exc.status, exc.message, "invalid_request_error", param=exc.param)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_text)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        if length > _MAX_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        # Bounded by _MAX_BODY: each turn consumes at least one line.
        while total <= _MAX_BODY:
            size_line = self.rfile.readline(1024)
            if not size_line:
                break
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                break
            if size == 0:
                self.rfile.readline(1024)
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
            total += size
        return b"".join(parts)

    def _authorized(self) -> bool:
        value = self.headers.get("Authorization", "")
        scheme, _, key = value.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return False
        keys = self.server.emulator.api_keys
        return keys is None or key in keys

    # ------------------------------------------------------------------ responses

    def _send_head(self, status: int, headers: list[tuple[str, str]], reason: str = "") -> None:
        self.rec.status = status
        reason = reason or _reason(status)
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.extend(f"{k}: {v}" for k, v in headers)
        if self.close_connection:
            lines.append("Connection: close")
        self.conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.log_request(status)

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("Content-Type", content_type)] if content_type else []
        headers.append(("Content-Length", str(len(body))))
        headers.extend(extra or [])
        self._send_head(status, headers)
        self.conn.send(body)

    def _send_json(
        self, status: int, obj: object, extra: list[tuple[str, str]] | None = None
    ) -> None:
        self._send_bytes(status, _wire.dumps(obj).encode("utf-8"), _wire.ERROR_CONTENT_TYPE, extra)

    def _send_error(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        param: str | None = None,
        code: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        body = _wire.error_body(message, error_type, param=param, code=code)
        self._send_json(status, body, extra)

    def _send_http_error(
        self, status: int, variant: str = "", extra: list[tuple[str, str]] | None = None
    ) -> None:
        err = HTTP_ERRORS.get(status)
        reason = err.reason if err else _reason(status)
        if variant == "html":
            page = _HTML_PAGE.format(status=status, reason=reason).encode()
            self._send_bytes(status, page, "text/html", extra)
        elif variant == "empty":
            self._send_bytes(status, b"", _wire.ERROR_CONTENT_TYPE, extra)
        elif err is None:
            error_type = "server_error" if status >= 500 else "invalid_request_error"  # noqa: PLR2004
            self._send_error(status, reason, error_type, extra=extra)
        else:
            self._send_error(status, err.message, err.type, code=err.code, extra=extra)

    def _models(self) -> None:
        if not self._authorized():
            self._send_http_error(401)
            return
        models = [
            {"id": name, "object": "model", "type": "language", "created": 0}
            for name in ("emulator/default", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
        ]
        self._send_json(200, models)

    # ------------------------------------------------------------------ endpoints

    def _completions(self, rec: _Record, body: bytes) -> None:
        self._serve(rec, body, legacy=False)

    def _inference(self, rec: _Record, body: bytes) -> None:
        self._serve(rec, body, legacy=True)

    def _chat(self, rec: _Record, body: bytes) -> None:
        req = _parse_json(body)
        rec.json = req
        fault = self._fault(req)
        rec.fault = fault.name if fault else None
        emulator = self.server.emulator
        natural = self._header_number("X-Emulator-Tokens")
        try:
            plan = _chat.plan(
                req,
                responder=emulator.chat_responder,
                natural_tokens=None if natural is None else int(natural),
                reject_required=emulator.reject_required_tool_choice,
            )
        except _chat.ChatRequestError as exc:
            raise _BadRequestError(exc.message, exc.param) from exc
        prompt = _chat.last_user_text(req["messages"])
        stream = bool(req.get("stream"))
        ttft, interval = self._pacing()
        if fault is not None and self._pre_response_fault(fault, prompt, stream=stream):
            return
        if self._refused(plan.prompt_tokens + plan.completion_tokens):
            return
        try:
            usage = _chat_wire.usage_placement(req, self.headers.get("X-Emulator-Usage"))
        except ValueError as exc:
            raise _BadRequestError(str(exc), "X-Emulator-Usage") from exc
        ray = _wire.ray_id()
        ctx = _chat_wire.ChunkContext(
            request_id=_wire.new_request_id(ray),
            created=int(time.time()),
            model=req["model"],
            seed=_seed(req.get("seed"), prompt, above_int64=True),
            logprobs=bool(req.get("logprobs") or req.get("top_logprobs")),
            top_logprobs=bool(req.get("top_logprobs")),
            usage=usage,
            cached_tokens=int(self._header_number("X-Emulator-Cached-Tokens") or 0),
        )
        if stream and not (fault is not None and fault.name == "not-sse"):
            renders = _chat_wire.chat_events(plan, ctx)
            self._stream(rec, renders, fault=fault, ray=ray, ttft=ttft, interval=interval)
        else:
            self.conn.wait(ttft)
            rec.tokens_sent = len(plan.content.tokens)
            self._send_whole(_chat_wire.chat_body(plan, ctx), fault, ray)
        if fault is None:
            self.server.emulator.account.charge(plan.prompt_tokens, plan.completion_tokens)

    def _serve(self, rec: _Record, body: bytes, *, legacy: bool) -> None:
        req = _parse_json(body)
        rec.json = req
        fault = self._fault(req)
        rec.fault = fault.name if fault else None
        model, prompt = _validate(req)
        # The legacy endpoint streamed on stream_tokens; accepting stream too is lenient.
        stream = bool(req.get("stream") or (legacy and req.get("stream_tokens")))
        ttft, interval = self._pacing()

        if fault is not None and self._pre_response_fault(fault, prompt, stream=stream):
            return

        completion = self._generate(req, prompt)
        if self._rate_limited(completion):
            return
        ray = _wire.ray_id()
        request_id = f"{ray}-SJC" if legacy else _wire.new_request_id(ray)
        seed = _seed(req.get("seed"), prompt)
        created = int(time.time())
        want_logprobs = bool(req.get("logprobs"))

        if stream and not (fault is not None and fault.name == "not-sse"):
            if legacy:
                renders = [
                    _wire.dumps(_wire.inference_event(request_id=request_id, token=tok))
                    for tok in completion.tokens
                ]
            else:
                renders = _completion_events(
                    completion, request_id, created, model, seed, logprobs=want_logprobs
                )
            self._stream(rec, renders, fault=fault, ray=ray, ttft=ttft, interval=interval)
            if fault is None:
                self._charge(completion, streamed=True)
            return

        if legacy:
            args = {k: v for k, v in req.items() if k != "prompt"}
            obj: dict[str, Any] = _wire.inference_body(
                request_id=request_id, model=model, prompt=prompt, completion=completion, args=args
            )
        else:
            obj = _wire.completion_body(
                request_id=request_id,
                created=created,
                model=model,
                completion=completion,
                seed=seed,
                prompt=prompt,
                echo=bool(req.get("echo")),
                logprobs=want_logprobs,
            )
        self.conn.wait(ttft)
        rec.tokens_sent = len(completion.tokens)
        self._send_whole(obj, fault, ray)
        if fault is None:
            self._charge(completion, streamed=False)

    def _rate_limited(self, completion: _text.Completion) -> bool:
        """Answer 429/503 if the account limit refuses the request; True if it did."""
        return self._refused(completion.prompt_tokens + len(completion.tokens))

    def _refused(self, tokens: int) -> bool:
        """Answer 429/503 if the account limit refuses a request of `tokens`; True if it did."""
        admission = self.server.emulator.account.admit(tokens)
        if admission.status is None:
            return False
        self._send_http_error(admission.status, extra=admission.headers)
        return True

    def _charge(self, completion: _text.Completion, *, streamed: bool) -> None:
        # The same completion_tokens the usage object carried (a stream counts its eos chunk).
        tokens = len(completion.tokens)
        if streamed and not (completion.finish_reason == "length" and tokens):
            tokens += 1
        self.server.emulator.account.charge(completion.prompt_tokens, tokens)

    def _send_whole(self, obj: object, fault: FaultSpec | None, ray: str) -> None:
        payload = _wire.dumps(obj).encode("utf-8")
        headers = [
            ("Content-Type", _wire.ERROR_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            *_ratelimit_headers(ray),
        ]
        name = fault.name if fault else None
        if name == "truncate":
            # Content-Length promises more than arrives: the connection just ends.
            self.close_connection = True
            self._send_head(200, headers)
            self.conn.send(payload[: len(payload) // 2])
            return
        self._send_head(200, headers)
        if name == "byte-at-a-time":
            BodyWriter(self.conn, chunked=False, byte_at_a_time=True).write(payload)
        else:
            self.conn.send(payload)

    def _generate(self, req: dict[str, Any], prompt: str) -> _text.Completion:
        max_tokens = req.get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
        ):
            msg = "max_tokens must be a non-negative integer"
            raise _BadRequestError(msg, "max_tokens")
        stop = req.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)
        ):
            msg = "stop must be a string or a list of strings"
            raise _BadRequestError(msg, "stop")
        natural = self._header_number("X-Emulator-Tokens")
        text: str | None = None
        responder = self.server.emulator.responder
        if responder is not None:
            text = responder(prompt, req)
        return _text.complete(
            prompt,
            seed=req.get("seed"),
            max_tokens=max_tokens,
            stop=stop,
            text=text,
            natural_tokens=None if natural is None else int(natural),
        )

    # ------------------------------------------------------------------ faults

    def _fault(self, req: dict[str, Any]) -> FaultSpec | None:
        header = self.headers.get("X-Emulator-Fault")
        model = req.get("model")
        try:
            if header and header.strip():
                return parse_fault(header)
            if isinstance(model, str) and model.startswith(MODEL_PREFIX):
                return parse_fault(model[len(MODEL_PREFIX) :])
        except FaultError as exc:
            raise _BadRequestError(str(exc), "X-Emulator-Fault") from exc
        return None

    def _pre_response_fault(self, fault: FaultSpec, prompt: str, *, stream: bool) -> bool:
        """Apply faults that strike before a normal response; True if one answered."""
        name = fault.name
        emulator = self.server.emulator
        status = fault.http_status
        answered = True
        if status is not None:
            if not _HTTP_STATUS_MIN <= status <= _HTTP_STATUS_MAX:
                msg = "status must be an HTTP status code"
                raise _BadRequestError(msg, "status")
            variant = name.rsplit("-", 1)[1] if name.endswith(("-html", "-empty")) else ""
            retry = status == _TOO_MANY_REQUESTS
            extra = _retry_headers(fault.get_float("seconds", 1.0)) if retry else []
            self._send_http_error(status, variant, extra)
        elif name == "credit-limit":
            self._send_error(
                _TOO_MANY_REQUESTS,
                "Credit limit exceeded. Please add credits to your account to continue.",
                "credit_limit",
                extra=[("x-ratelimit-remaining", "0")],
            )
        elif name in {"rate-limit-then-ok", "server-error-then-ok"}:
            answered = emulator._count_attempt(name, prompt) <= fault.get_int("count", 1)
            if answered:
                status = _TOO_MANY_REQUESTS if name == "rate-limit-then-ok" else 503
                seconds = fault.get_float("seconds", 0.05)
                self._send_http_error(status, extra=_retry_headers(seconds))
        elif name == "stall-headers" or (name == "stall" and not stream):
            self.conn.wait(fault.get_float("seconds", 30.0))
            answered = False
        elif name == "reset" and not stream:
            self.conn.abort()
        elif name == "redirect":
            path = urlsplit(self.path).path
            target = fault.get_str("to", f"{emulator.root_url}/redirected{path}")
            self._send_bytes(307, b"", None, [("Location", target)])
        else:
            answered = False
        return answered

    def _strike(self, fault: FaultSpec, out: BodyWriter, nl: str) -> bool:
        """Apply an in-stream fault; True if the stream is over."""
        name = fault.name
        over = True
        if name in {"error-mid-stream", "event-error"}:
            prefix = f"event: error{nl}" if name == "event-error" else ""
            out.write(f"{prefix}data: {_MID_STREAM_ERROR}{nl}{nl}".encode())
            out.end()
            self.close_connection = True
        elif name == "truncate":
            out.end()
        elif name == "reset":
            self.conn.abort()
        elif name == "long-line":
            self._long_line(out, fault.get_int("bytes", _LONG_LINE_DEFAULT))
            self.close_connection = True
        else:
            over = False
            if name == "malformed-json":
                out.write(f'data: {{"choices": [{nl}{nl}'.encode())
            elif name == "invalid-utf8":
                out.write(_INVALID_UTF8_EVENT + (nl * 2).encode())
            elif name == "stall":
                self.conn.wait(fault.get_float("seconds", 30.0))
        return over

    def _long_line(self, out: BodyWriter, size: int) -> None:
        head = b"data: "
        out.write(head[:size])
        remaining = max(0, size - len(head))
        block = b"x" * _LONG_LINE_CHUNK
        # Bounded by size; never holds more than one block in memory.
        while remaining > 0:
            piece = block if remaining >= len(block) else block[:remaining]
            out.write(piece)
            remaining -= len(piece)
        out.end()

    # ------------------------------------------------------------------ streaming

    def _stream(
        self,
        rec: _Record,
        renders: list[str],
        *,
        fault: FaultSpec | None,
        ray: str,
        ttft: float,
        interval: float,
    ) -> None:
        name = fault.name if fault else None
        chunked = name != "close-delimited"
        headers = [
            ("Content-Type", _wire.SSE_CONTENT_TYPE),
            ("Cache-Control", "no-cache"),
        ]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            self.close_connection = True
        headers.extend(_ratelimit_headers(ray))
        self._send_head(200, headers)
        out = BodyWriter(self.conn, chunked=chunked, byte_at_a_time=name == "byte-at-a-time")
        nl = "\r\n" if name == "crlf" else "\n"
        keepalives = (
            f": keep-alive{nl}{nl}" * (fault.get_int("count", 3) if fault else 0)
            if name == "keepalive"
            else ""
        ).encode()
        after = fault.after if fault is not None else -1

        self.conn.wait(ttft)
        for i, payload in enumerate(renders):
            if fault is not None and i == after and self._strike(fault, out, nl):
                return
            if keepalives:
                out.write(keepalives)
            out.write(f"data: {payload}{nl}{nl}".encode())
            rec.tokens_sent += 1
            if interval > 0 and i < len(renders) - 1:
                self.conn.wait(interval)
            else:
                self.conn.check()
        if fault is not None and after >= len(renders) and self._strike(fault, out, nl):
            return
        out.write(f"data: [DONE]{nl}{nl}".encode())
        out.end()

    # ------------------------------------------------------------------ helpers

    def _header_number(self, name: str) -> float | None:
        raw = self.headers.get(name)
        if raw is None or not raw.strip():
            return None
        if raw.strip().lower() in {"none", "inf", "unlimited"}:
            return None
        try:
            value = float(raw)
        except ValueError as exc:
            msg = f"{name} must be a number"
            raise _BadRequestError(msg, name) from exc
        if not 0 <= value < 1e9:  # noqa: PLR2004
            msg = f"{name} out of range"
            raise _BadRequestError(msg, name)
        return value

    def _pacing(self) -> tuple[float, float]:
        emulator = self.server.emulator
        ttft = self._header_number("X-Emulator-TTFT")
        if ttft is None:
            ttft = emulator.time_to_first_token
        tps: float | None = emulator.tokens_per_second
        if self.headers.get("X-Emulator-TPS") is not None:
            tps = self._header_number("X-Emulator-TPS")
        interval = 1.0 / tps if tps else 0.0
        return ttft, interval


def _completion_events(
    completion: _text.Completion,
    request_id: str,
    created: int,
    model: str,
    seed: int,
    *,
    logprobs: bool,
) -> list[str]:
    tokens = list(completion.tokens)
    if completion.finish_reason == "length" and tokens:
        body, last = tokens[:-1], tokens[-1]
    else:
        # Recorded eos/stop streams end with an empty chunk carrying the eos token id.
        body, last = tokens, _wire.eos_token()
    events = [
        _wire.dumps(
            _wire.completion_chunk(
                request_id=request_id,
                created=created,
                model=model,
                token=tok,
                logprobs=logprobs,
            )
        )
        for tok in body
    ]
    events.append(
        _wire.dumps(
            _wire.completion_chunk(
                request_id=request_id,
                created=created,
                model=model,
                token=last,
                logprobs=logprobs,
                finish_reason=completion.finish_reason,
                seed=seed,
                usage_obj=_wire.usage(completion, len(body) + 1),
            )
        )
    )
    return events


def _seed(value: object, prompt: str, *, above_int64: bool = False) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    rng = random.Random(f"{prompt}\x00{value!r}")  # noqa: S311
    return _wire.js_seed(rng, above_int64=above_int64)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"Invalid JSON body: {exc}"
        raise _BadRequestError(msg) from exc
    if not isinstance(obj, dict):
        msg = "Request body must be a JSON object"
        raise _BadRequestError(msg)
    return obj


def _validate(req: dict[str, Any]) -> tuple[str, str]:
    model = req.get("model")
    if not isinstance(model, str) or not model:
        msg = "Invalid request"
        raise _BadRequestError(msg, "model")
    prompt = req.get("prompt")
    if not isinstance(prompt, str):
        msg = "Invalid request"
        raise _BadRequestError(msg, "prompt")
    n = req.get("n", 1)
    if n not in (None, 1):
        msg = "n > 1 is not supported by the Together emulator (it generates one choice)"
        raise _BadRequestError(msg, "n")
    return model, prompt


def _reason(status: int) -> str:
    return http.client.responses.get(status, "Unknown")


def _ratelimit_headers(ray: str) -> list[tuple[str, str]]:
    return [
        ("x-ratelimit-limit", "600"),
        ("x-ratelimit-remaining", "599"),
        ("x-ratelimit-reset", "1"),
        ("cf-ray", f"{ray}-SJC"),
    ]


def _retry_headers(seconds: float) -> list[tuple[str, str]]:
    text = f"{seconds:g}"
    return [
        ("Retry-After", text),
        ("x-ratelimit-limit", "600"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", text),
    ]
