"""Fault names, their parameters, and the HTTP error catalog.

A fault is chosen per request by the model name ``emulator/fault-<name>`` or by
the header ``X-Emulator-Fault: <name>[;key=value...]`` (the header wins).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "FAULTS",
    "HTTP_ERRORS",
    "MODEL_PREFIX",
    "FaultError",
    "FaultSpec",
    "HttpError",
    "parse_fault",
]

MODEL_PREFIX = "emulator/fault-"
_TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class HttpError:
    """How the emulator answers one HTTP error status.

    Attributes:
        reason: The HTTP reason phrase.
        type: Together's ``error.type``.
        message: Together-like ``error.message``.
        code: Together's ``error.code`` (usually null).
    """

    reason: str
    type: str
    message: str
    code: str | None = None


HTTP_ERRORS: Mapping[int, HttpError] = MappingProxyType(
    {
        400: HttpError("Bad Request", "invalid_request_error", "Invalid request"),
        401: HttpError(
            "Unauthorized",
            "invalid_request_error",
            "Invalid API key provided. You can find your API key at "
            "https://api.together.xyz/settings/api-keys.",
            "invalid_api_key",
        ),
        402: HttpError(
            "Payment Required",
            "credit_limit",
            "Credit limit exceeded. Please add credits to your account to continue.",
        ),
        403: HttpError(
            "Forbidden",
            "invalid_request_error",
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193.",
        ),
        404: HttpError(
            "Not Found",
            "invalid_request_error",
            "Unable to access model. Please visit https://api.together.ai/models to view "
            "the list of supported models.",
            "model_not_available",
        ),
        422: HttpError(
            "Unprocessable Entity", "invalid_request_error", "Unprocessable request body"
        ),
        429: HttpError(
            "Too Many Requests",
            "rate_limit_exceeded",
            "You have exceeded your dynamic rate limit. Please slow down and retry later.",
        ),
        500: HttpError("Internal Server Error", "server_error", "Internal server error"),
        502: HttpError("Bad Gateway", "server_error", "Bad gateway"),
        503: HttpError("Service Unavailable", "server_error", "Overloaded"),
        504: HttpError("Gateway Timeout", "server_error", "Timeout"),
    }
)

_FAULTS: dict[str, str] = {}
for _status, _err in HTTP_ERRORS.items():
    _FAULTS[f"http-{_status}"] = (
        f"{_status} {_err.reason} with Together's JSON error envelope (type {_err.type})"
        + ("; Retry-After and x-ratelimit-reset headers" if _status == _TOO_MANY_REQUESTS else "")
    )
    _FAULTS[f"http-{_status}-html"] = f"{_status} {_err.reason} with an HTML error page (text/html)"
    _FAULTS[f"http-{_status}-empty"] = f"{_status} {_err.reason} with an empty body"
_FAULTS.update(
    {
        "http-error": "any status given by status=<code> (default 500) with the JSON envelope",
        "credit-limit": "429 with error.type 'credit_limit' (not retryable; no Retry-After)",
        "rate-limit-then-ok": "first count=<n> (default 1) requests per prompt get 429 with "
        "Retry-After: seconds=<s> (default 0.05), later ones succeed",
        "server-error-then-ok": "first count=<n> (default 1) requests per prompt get 503 "
        "Overloaded with Retry-After: seconds=<s> (default 0.05), later ones succeed",
        "error-mid-stream": 'after after=<k> tokens, a data: {"error": {...}} event, then close',
        "event-error": "after after=<k> tokens, an 'event: error' event with an error object, "
        "then close",
        "truncate": "after after=<k> tokens, end the body cleanly with no finish_reason and "
        "no [DONE]",
        "malformed-json": "after after=<k> tokens, a data: line with broken JSON, then the "
        "rest of the stream",
        "invalid-utf8": "after after=<k> tokens, an event whose bytes are not valid UTF-8, then "
        "the rest of the stream",
        "stall": "after after=<k> tokens (0 = before the first body byte), send nothing for "
        "seconds=<s> (default 30) while connected, then continue",
        "stall-headers": "send nothing, not even response headers, for seconds=<s> "
        "(default 30), then answer normally",
        "reset": "after after=<k> tokens, abort the TCP connection with RST",
        "close-delimited": "a correct stream without Transfer-Encoding or Content-Length; "
        "Connection: close, the body ends at close",
        "crlf": "a correct stream with CRLF line endings",
        "keepalive": "a correct stream with count=<n> (default 3) ': keep-alive' comments "
        "before each token event",
        "long-line": "after after=<k> tokens, a data: line of bytes=<n> bytes (default 2 MiB) "
        "with no newline, then close",
        "not-sse": "200 with an application/json completion body although stream was requested",
        "redirect": "307 to {root_url}/redirected<request path> (or to=<url>); clients must "
        "not follow it with the key",
        "byte-at-a-time": "a correct stream written one byte per write",
    }
)

#: Fault name -> one-line description.
FAULTS: Mapping[str, str] = MappingProxyType(dict(sorted(_FAULTS.items())))

_INT_PARAMS = {"after": (0, 10**9), "status": (100, 599), "count": (0, 10**6), "bytes": (0, 10**12)}
_FLOAT_PARAMS = {"seconds": (0.0, 3600.0)}
_STR_PARAMS = {"to"}


class FaultError(ValueError):
    """A fault name or parameter the emulator does not understand."""


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault with its parameters.

    Attributes:
        name: The fault name, a key of ``FAULTS``.
        params: Parsed parameters (``after``, ``seconds``, ``status``, ``count``,
            ``bytes``, ``to``).
    """

    name: str
    params: Mapping[str, int | float | str] = field(default_factory=dict)

    def get_int(self, key: str, default: int) -> int:
        """Return an integer parameter or ``default``."""
        value = self.params.get(key, default)
        return value if isinstance(value, int) else default

    def get_float(self, key: str, default: float) -> float:
        """Return a numeric parameter or ``default``."""
        value = self.params.get(key, default)
        return float(value) if isinstance(value, (int, float)) else default

    def get_str(self, key: str, default: str) -> str:
        """Return a string parameter or ``default``."""
        value = self.params.get(key, default)
        return value if isinstance(value, str) else default

    @property
    def after(self) -> int:
        """Tokens sent before the fault strikes (default 3)."""
        return self.get_int("after", 3)

    @property
    def http_status(self) -> int | None:
        """The status of an ``http-*`` fault, else None."""
        if self.name == "http-error":
            return self.get_int("status", 500)
        if self.name.startswith("http-"):
            return int(self.name.split("-")[1])
        return None


def parse_fault(text: str) -> FaultSpec:
    """Parse ``name[;key=value...]``.

    Args:
        text: The header value or the part of the model name after ``fault-``.

    Returns:
        The fault.

    Raises:
        FaultError: Unknown fault or bad parameter.
    """
    name, *raw_params = (part.strip() for part in text.split(";"))
    name = name.lower()
    if name not in FAULTS:
        msg = f"unknown emulator fault {name!r}; known faults: {', '.join(FAULTS)}"
        raise FaultError(msg)
    params: dict[str, int | float | str] = {}
    for raw in raw_params:
        if not raw:
            continue
        key, sep, value = (s.strip() for s in raw.partition("="))
        key = key.lower()
        if not sep:
            msg = f"fault parameter {raw!r} must be key=value"
            raise FaultError(msg)
        params[key] = _parse_param(key, value)
    return FaultSpec(name, params)


def _parse_param(key: str, value: str) -> int | float | str:
    try:
        if key in _INT_PARAMS:
            low, high = _INT_PARAMS[key]
            number = int(value)
            if not low <= number <= high:
                msg = f"fault parameter {key}={value} out of range [{low}, {high}]"
                raise FaultError(msg)
            return number
        if key in _FLOAT_PARAMS:
            flow, fhigh = _FLOAT_PARAMS[key]
            real = float(value)
            if not (math.isfinite(real) and flow <= real <= fhigh):
                msg = f"fault parameter {key}={value} out of range [{flow}, {fhigh}]"
                raise FaultError(msg)
            return real
    except ValueError as exc:
        if isinstance(exc, FaultError):
            raise
        msg = f"fault parameter {key}={value!r} is not a number"
        raise FaultError(msg) from exc
    if key in _STR_PARAMS:
        return value
    msg = f"unknown fault parameter {key!r}"
    raise FaultError(msg)
