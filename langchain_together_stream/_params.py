"""Sampling parameters, shared by every model: the fields, the checks, the request body.

A field marked `SENT` is sent under its own name (Together's) when it is set; the list of
sent parameters is derived from the fields (`sent_params`), so a new parameter is one
annotated field. `model_kwargs` and a call's keyword arguments are sent as given. Every value
is checked before anything is sent: a bad one is a `TogetherConfigurationError` naming it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from langchain_together_stream.errors import TogetherConfigurationError


class _Sent:
    """The marker on a field that is sent to Together when set."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SENT"


SENT = _Sent()
"""`Annotated[..., SENT]`: send this field under its own name when it is not None."""


def _n_error(n: object) -> TogetherConfigurationError:
    return TogetherConfigurationError(
        f"n={n!r} is not supported: streaming returns one completion per prompt. "
        "Pass several prompts to generate() or batch() instead."
    )


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The request body as strict JSON.

    Args:
        payload: The body's fields.

    Returns:
        The UTF-8 JSON body.

    Raises:
        TogetherConfigurationError: A value JSON cannot carry (NaN, infinity, an object that
            is not JSON); the message names its parameter.
    """
    try:
        return json.dumps(payload, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):
        # Only on failure: find which parameter it was, so the message can name it.
        for name, value in payload.items():
            _check_encodable(name, value)
        raise  # pragma: no cover  (a whole that fails has a part that fails)


def _check_encodable(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        msg = f"{name} must not be NaN or infinity: they are not valid JSON."
        raise TogetherConfigurationError(msg) from None
    except (TypeError, RecursionError) as exc:
        msg = f"{name} cannot be sent: its value is not JSON ({type(exc).__name__}: {exc})."
        raise TogetherConfigurationError(msg) from None


@functools.cache
def _sent_params(cls: type[BaseModel]) -> tuple[str, ...]:
    return tuple(name for name, field in cls.model_fields.items() if SENT in field.metadata)


class SamplingParams(BaseModel):
    """The sampling parameters every Together model takes, sent only when set.

    A mixin for a LangChain model (see `_client.TogetherClient` for the connection settings).
    """

    # `model_kwargs` is LangChain's name; pydantic before 2.10 warns about the `model_` prefix.
    model_config = ConfigDict(protected_namespaces=())

    max_tokens: Annotated[int | None, SENT] = None
    """Most tokens to generate."""
    temperature: Annotated[float | None, SENT] = None
    """Sampling temperature; higher is more random."""
    top_p: Annotated[float | None, SENT] = None
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`."""
    top_k: Annotated[int | None, SENT] = None
    """Sample only from the `top_k` most likely tokens."""
    repetition_penalty: Annotated[float | None, SENT] = None
    """Penalty for repeating tokens (1.0 means none)."""
    presence_penalty: Annotated[float | None, SENT] = None
    """Penalty for tokens that already appeared, from -2.0 to 2.0."""
    frequency_penalty: Annotated[float | None, SENT] = None
    """Penalty proportional to how often a token already appeared, from -2.0 to 2.0."""
    min_p: Annotated[float | None, SENT] = None
    """Drop tokens less likely than `min_p` times the most likely one."""
    logit_bias: Annotated[dict[str, float] | None, SENT] = None
    """Bias added to the logits of the given token ids."""
    seed: Annotated[int | None, SENT] = None
    """Seed for reproducible sampling."""
    logprobs: Annotated[int | None, SENT] = None
    """Return log-probabilities; the per-token values appear in the output's metadata."""
    safety_model: Annotated[str | None, SENT] = None
    """A moderation model Together runs on the output, e.g. `"Meta-Llama/Llama-Guard-7b"`."""
    stop: list[str] | None = None
    """Sequences that end the generation; a call's `stop` argument replaces these. A single
    string is one stop sequence."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Further request parameters, sent as given (for parameters newer than this package)."""

    @classmethod
    def sent_params(cls) -> tuple[str, ...]:
        """The fields sent under their own names when set, in declaration order.

        Returns:
            The names of the fields marked `SENT`.
        """
        return _sent_params(cls)

    @model_validator(mode="before")
    @classmethod
    def _refuse_n(cls, data: Any) -> Any:
        # Before pydantic's "extra inputs" error, which would not say why or what instead.
        if isinstance(data, dict) and "n" in data:
            n = data["n"]
            if n != 1:
                raise _n_error(n)
            data = {key: value for key, value in data.items() if key != "n"}
        return data

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_string(cls, stop: Any) -> Any:
        return [stop] if isinstance(stop, str) else stop

    @field_validator("*")
    @classmethod
    def _check_sent_value(cls, value: Any, info: ValidationInfo) -> Any:
        # A field validator, so a refused assignment leaves the old value in place.
        if value is None or isinstance(value, (int, str)):  # always valid JSON
            return value
        if info.field_name == "model_kwargs":
            for key, item in value.items():
                _check_encodable(f"model_kwargs[{key!r}]", item)
        elif info.field_name in _sent_params(cls):
            _check_encodable(info.field_name, value)
        return value

    def request_params(self) -> dict[str, Any]:
        """The parameters set on the model: `SENT` fields not None, then `model_kwargs`.

        Returns:
            A fresh dict.
        """
        params = {
            name: value
            for name in _sent_params(type(self))
            if (value := getattr(self, name)) is not None
        }
        params.update(self.model_kwargs)
        return params

    def request_payload(
        self,
        base: Mapping[str, Any],
        stop: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> dict[str, Any]:
        """One call's request body, before the endpoint's stream flags.

        Args:
            base: What the endpoint needs first (`model`, `prompt` or `messages`).
            stop: The call's stop sequences (a string is one sequence); None for the field's.
            kwargs: The call's further parameters; they override the fields.

        Returns:
            The body as a dict (`encode_payload` checks and encodes it).

        Raises:
            TogetherConfigurationError: `n` other than 1.
        """
        payload = dict(base)
        payload.update(self.request_params())
        payload.update(kwargs)
        stop = stop if stop is not None else self.stop
        if stop:
            payload["stop"] = [stop] if isinstance(stop, str) else list(stop)
        n = payload.get("n")
        if n is not None and n != 1:
            raise _n_error(n)
        return payload


class CompletionParams(SamplingParams):
    """The completions endpoint's parameters: the sampling ones, and `echo`."""

    echo: Annotated[bool | None, SENT] = None
    """Ask Together to echo the prompt in the response."""


class ChatParams(SamplingParams):
    """The chat endpoint's parameters: the sampling ones, and the reasoning switches."""

    reasoning_effort: Annotated[str | None, SENT] = None
    """How hard a reasoning model thinks (`"low"`, `"medium"`, `"high"`), for models that
    take it (gpt-oss)."""
    reasoning: Annotated[dict[str, Any] | None, SENT] = None
    """Together's reasoning settings for hybrid models, e.g. `{"enabled": True}`; the
    reasoning text arrives in `additional_kwargs["reasoning_content"]`."""
