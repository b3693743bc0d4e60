"""Together's JSON shapes, as recorded in ``/work/shared/conformance/together``.

Key order and field set follow the recordings exactly (``P01`` for
``/v1/completions`` chunks, ``01`` for legacy ``/inference`` events, ``13`` for
error envelopes), because some clients are sensitive to them.
"""

from __future__ import annotations

import decimal
import json
import random
import secrets
import string
from typing import Any

from langchain_together_stream.emulator._text import EOS_TOKEN_ID, Completion, Token

__all__ = [
    "ERROR_CONTENT_TYPE",
    "SSE_CONTENT_TYPE",
    "completion_body",
    "completion_chunk",
    "dumps",
    "eos_token",
    "error_body",
    "inference_body",
    "inference_event",
    "js_seed",
    "new_request_id",
    "ray_id",
    "usage",
]

SSE_CONTENT_TYPE = "text/event-stream;charset=utf-8"
ERROR_CONTENT_TYPE = "application/json; charset=utf-8"

_ID_ALPHABET = string.ascii_letters + string.digits


def dumps(obj: object) -> str:
    """Serialize compactly, as Together does (no spaces, UTF-8 kept as is)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ray_id() -> str:
    """Return a Cloudflare-ray-like 16 hex digit id."""
    return secrets.token_hex(8)


def new_request_id(ray: str) -> str:
    """Return a completion id in the 2025+ shape ``oXXXXXX-XXXXXX-<ray>``."""
    head = "o" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    mid = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    return f"{head}-{mid}-{ray}"


def js_seed(rng: random.Random, *, above_int64: bool = False) -> int:
    """Return a 64-bit seed as Together writes it: a JavaScript double.

    Together serializes seeds through a double, so they are often above 2**63 and
    end in zeros (``14687020407684524000``). Clients must not parse into int64;
    ``above_int64`` makes sure the seed would overflow one.
    """
    bits = rng.getrandbits(64) | (1 << 63 if above_int64 else 0)
    as_double = float(bits)
    return int(decimal.Decimal(repr(as_double)))


def usage(completion: Completion, completion_tokens: int) -> dict[str, int]:
    """Build the ``usage`` object of the final chunk or non-stream body."""
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": completion.prompt_tokens + completion_tokens,
    }


def completion_chunk(
    *,
    request_id: str,
    created: int,
    model: str,
    token: Token,
    logprobs: bool,
    finish_reason: str | None = None,
    seed: int | None = None,
    usage_obj: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Build one ``/v1/completions`` stream chunk (``object: completion.chunk``)."""
    return {
        "id": request_id,
        "object": "completion.chunk",
        "created": created,
        "choices": [
            {
                "index": 0,
                "text": token.text,
                # together-python 1.x types this as a per-token float.
                "logprobs": token.logprob if logprobs else None,
                "finish_reason": finish_reason,
                "seed": seed,
                "delta": {"token_id": token.id, "role": "assistant", "content": token.text},
            }
        ],
        "model": model,
        "usage": usage_obj,
    }


def eos_token() -> Token:
    """The empty end-of-sequence token Together sends on an ``eos``/``stop`` chunk."""
    return Token("", EOS_TOKEN_ID, 0.0)


def completion_body(
    *,
    request_id: str,
    created: int,
    model: str,
    completion: Completion,
    seed: int,
    prompt: str,
    echo: bool,
    logprobs: bool,
) -> dict[str, Any]:
    """Build the non-stream ``/v1/completions`` body (``object: text.completion``)."""
    tokens = completion.tokens
    lp: dict[str, Any] | None = None
    if logprobs:
        lp = {
            "token_ids": [t.id for t in tokens],
            "tokens": [t.text for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
        }
    return {
        "id": request_id,
        "object": "text.completion",
        "created": created,
        "model": model,
        "prompt": [{"text": prompt, "logprobs": None}] if echo else [],
        "choices": [
            {
                "text": completion.text,
                "finish_reason": completion.finish_reason,
                "seed": seed,
                "logprobs": lp,
                "index": 0,
            }
        ],
        "usage": usage(completion, len(tokens)),
    }


def inference_event(*, request_id: str, token: Token) -> dict[str, Any]:
    """Build one legacy ``/inference`` ``stream_tokens`` event."""
    return {
        "choices": [{"text": token.text}],
        "result_type": "language-model-inference",
        "id": request_id,
        "token": {"id": token.id, "text": token.text, "logprob": token.logprob, "special": False},
        "generated_text": None,
        "details": None,
        "stats": None,
    }


def inference_body(
    *, request_id: str, model: str, prompt: str, completion: Completion, args: dict[str, Any]
) -> dict[str, Any]:
    """Build the legacy non-stream ``/inference`` body."""
    return {
        "id": request_id,
        "status": "finished",
        "prompt": [prompt],
        "model": model,
        "model_owner": "",
        "tags": {},
        "num_returns": 1,
        "args": args,
        "subjobs": [],
        "output": {
            "choices": [
                {"text": completion.text, "finish_reason": completion.finish_reason, "index": 0}
            ],
            "raw_compute_time": round(0.002 * len(completion.tokens) + 0.05, 6),
            "result_type": "language-model-inference",
        },
    }


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Build Together's error envelope ``{"id", "error": {message, type, param, code}}``."""
    return {
        "id": ray_id(),
        "error": {"message": message, "type": error_type, "param": param, "code": code},
    }
