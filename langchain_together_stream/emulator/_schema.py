"""Build a JSON value that satisfies a JSON schema, seeded from the prompt.

The emulator answers ``response_format`` requests and scripted tool calls with
values built here. Numbers and quoted strings in the prompt are used first, in
order (``multiply 3 and 4`` gives ``{"a": 3, "b": 4}``), so a test can steer the
arguments with its prompt; everything else gets a plain value of the right type.

Supported: ``type`` (one or a list), ``enum``, ``const``, ``properties`` with
``required`` (optional properties are filled too), ``items`` / ``prefixItems``
with ``minItems``/``maxItems``, ``anyOf``/``oneOf`` (the first branch that is not
``null``), ``allOf`` (merged), ``$ref`` into ``$defs``/``definitions``,
``minimum``/``maximum`` (and the exclusive forms), ``minLength``/``maxLength``
and a few string ``format``s. ``pattern`` is not honoured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["Hints", "value_for"]

_NUMBER = re.compile(r"(?<![A-Za-z_\d.])-?\d+(?:\.\d+)?(?![A-Za-z_\d])")
# A single quote counts only when it is not an apostrophe inside a word ("What's").
_QUOTED = re.compile(r"\"([^\"]+)\"|(?<!\w)'([^']+)'(?!\w)|\u201c([^\u201d]+)\u201d")
_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}
_MAX_DEPTH = 12
_FALLBACK_TEXT_CHARS = 80


class Hints:
    """Values taken from a prompt, handed out in order as the schema asks for them.

    Args:
        prompt: The text to take numbers and quoted strings from.
    """

    def __init__(self, prompt: str) -> None:
        numbers = [m.group(0) for m in _NUMBER.finditer(prompt)]
        self._ints = [int(n) for n in numbers if "." not in n]
        self._numbers: list[int | float] = [float(n) if "." in n else int(n) for n in numbers]
        self._strings = [
            next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(prompt)
        ]
        self.fallback_text = " ".join(prompt.split())[:_FALLBACK_TEXT_CHARS] or "example"

    def next_int(self) -> int | None:
        """The next integer from the prompt, or None when they are used up."""
        return self._ints.pop(0) if self._ints else None

    def next_number(self) -> int | float | None:
        """The next number (integer or decimal) from the prompt, or None."""
        return self._numbers.pop(0) if self._numbers else None

    def next_string(self) -> str | None:
        """The next quoted string from the prompt, or None."""
        return self._strings.pop(0) if self._strings else None


def value_for(schema: Any, hints: Hints, root: Mapping[str, Any] | None = None) -> Any:
    """Return a value valid for ``schema``.

    Args:
        schema: A JSON schema (a dict; ``True``/``{}`` accept anything).
        hints: Prompt values to use first.
        root: The document ``$ref``s resolve against (defaults to ``schema``).

    Returns:
        A JSON-serializable value.
    """
    base = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    return _value(schema, hints, base, 0)


def _value(schema: Any, hints: Hints, root: Mapping[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(schema, Mapping):
        # Past the depth cap only null stops the recursion; a bare True/{} accepts anything.
        return None if depth > _MAX_DEPTH else "example"
    schema = _resolve(schema, root)
    fixed = _fixed(schema)
    if fixed is not None:
        return fixed[0]
    combined = _combined(schema, root)
    if combined is not None:
        return _value(combined, hints, root, depth + 1)
    kind = _kind(schema)
    if kind == "object":
        return _object(schema, hints, root, depth)
    if kind == "array":
        return _array(schema, hints, root, depth)
    return _scalar(kind, schema, hints)


def _fixed(schema: Mapping[str, Any]) -> tuple[Any] | None:
    """The only allowed value (``const``, or the first of ``enum``), boxed, or None."""
    if "const" in schema:
        return (schema["const"],)
    enum = schema.get("enum")
    return (enum[0],) if isinstance(enum, list) and enum else None


def _combined(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """The schema an ``anyOf``/``oneOf``/``allOf`` stands for, or None."""
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return _pick_branch(branches, root)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = _merge(merged, _resolve(part, root) if isinstance(part, Mapping) else {})
        return merged
    return None


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    # Bounded: a $ref cycle without content is cut after a few hops.
    while isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**(target if isinstance(target, Mapping) else {}), **rest}
        seen += 1
    return schema


def _pick_branch(branches: list[Any], root: Mapping[str, Any]) -> Any:
    for branch in branches:
        if isinstance(branch, Mapping) and _resolve(branch, root).get("type") != "null":
            return branch
    return branches[0]


def _merge(left: dict[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(left)
    for key, value in right.items():
        if key == "properties" and isinstance(value, Mapping):
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            out["required"] = [*out.get("required", []), *value]
        else:
            out.setdefault(key, value)
    return out


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[0] if kinds else None
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _object(
    schema: Mapping[str, Any], hints: Hints, root: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    out = {name: _value(sub, hints, root, depth + 1) for name, sub in props.items()}
    required = schema.get("required")
    extra = schema.get("additionalProperties")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in out:
            out[name] = _value(extra if isinstance(extra, Mapping) else {}, hints, root, depth + 1)
    return out


def _array(
    schema: Mapping[str, Any], hints: Hints, root: Mapping[str, Any], depth: int
) -> list[Any]:
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    low = _int_or(schema.get("minItems"), 0)
    high = _int_or(schema.get("maxItems"), max(low, 1, len(prefix)))
    count = max(low, min(max(1, len(prefix)), high))
    items = schema.get("items", {})
    out = []
    for i in range(count):
        sub = prefix[i] if i < len(prefix) else items
        out.append(_value(sub if isinstance(sub, Mapping) else {}, hints, root, depth + 1))
    return out


def _integer(schema: Mapping[str, Any], hints: Hints) -> int:
    value = hints.next_int()
    low, high = _bounds(schema)
    lo = None if low is None else math.ceil(low)
    hi = None if high is None else math.floor(high)
    if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
        value = 1
        if lo is not None and value < lo:
            value = lo
        if hi is not None and value > hi:
            value = hi
    return value


def _number(schema: Mapping[str, Any], hints: Hints) -> int | float:
    value = hints.next_number()
    low, high = _bounds(schema)
    if value is None or (low is not None and value < low) or (high is not None and value > high):
        value = 1.5
        if low is not None and value < low:
            value = low if "exclusiveMinimum" not in schema else low + 0.5
        if high is not None and value > high:
            value = high if "exclusiveMaximum" not in schema else high - 0.5
    return value


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    low = _num_or(schema.get("minimum"))
    high = _num_or(schema.get("maximum"))
    exclusive_low = _num_or(schema.get("exclusiveMinimum"))
    exclusive_high = _num_or(schema.get("exclusiveMaximum"))
    # Integers step past an exclusive bound by one; numbers by half (see _number).
    if exclusive_low is not None and (low is None or exclusive_low >= low):
        low = exclusive_low + (1 if schema.get("type") == "integer" else 0)
    if exclusive_high is not None and (high is None or exclusive_high <= high):
        high = exclusive_high - (1 if schema.get("type") == "integer" else 0)
    return low, high


def _string(schema: Mapping[str, Any], hints: Hints) -> str:
    fmt = schema.get("format")
    text = hints.next_string()
    if text is None:
        text = (
            _FORMATS.get(fmt, hints.fallback_text) if isinstance(fmt, str) else hints.fallback_text
        )
    low = _int_or(schema.get("minLength"), 0)
    high = _int_or(schema.get("maxLength"), max(low, len(text)))
    if len(text) < low:
        text += "x" * (low - len(text))
    return text[:high]


def _int_or(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _num_or(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _scalar(kind: str, schema: Mapping[str, Any], hints: Hints) -> Any:
    if kind == "integer":
        return _integer(schema, hints)
    if kind == "number":
        return _number(schema, hints)
    if kind in {"boolean", "null"}:
        return True if kind == "boolean" else None
    return _string(schema, hints)
