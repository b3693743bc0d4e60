"""Deterministic text and token generation for the emulator.

Text comes from ``corpus.txt`` next to this module. The tokenizer is a small
GPT-2-style pre-tokenizer plus a split of long words, so tokens look like real
BPE pieces (``" word"``, ``","``, ``"ation"``) and a client sees the same mix of
leading spaces, punctuation and sub-word pieces it gets from Together.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "EOS_TOKEN_ID",
    "Completion",
    "Token",
    "complete",
    "count_tokens",
    "token_id",
    "tokenize",
]

#: Llama 3's ``<|eot_id|>``: the id Together puts on its empty end-of-sequence chunk.
EOS_TOKEN_ID = 128009

_PRETOKEN = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
)
# Words longer than this are split in two, as BPE does for rarer words.
_LONG_WORD = 8
_WORD_HEAD = 6

_DEFAULT_MIN_TOKENS = 48
_DEFAULT_MAX_TOKENS = 80
_PARAGRAPH_ODDS = 0.15
_CONFIDENT_ODDS = 0.4
# Keeps a runaway max_tokens from building megabytes of text in memory.
_HARD_TOKEN_LIMIT = 100_000


@dataclass(frozen=True)
class Token:
    """One generated token.

    Attributes:
        text: The token's text (may be empty for the end-of-sequence token).
        id: A token id, stable for a given text.
        logprob: A plausible log probability (<= 0).
    """

    text: str
    id: int
    logprob: float


@dataclass(frozen=True)
class Completion:
    """The tokens to send for one request, and why generation ended.

    Attributes:
        tokens: The visible tokens, in order.
        finish_reason: ``"eos"``, ``"length"`` or ``"stop"``.
        prompt_tokens: Token count of the prompt.
    """

    tokens: tuple[Token, ...]
    finish_reason: str
    prompt_tokens: int

    @property
    def text(self) -> str:
        """The full completion text."""
        return "".join(t.text for t in self.tokens)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into BPE-looking pieces whose concatenation is ``text``.

    Args:
        text: Any string.

    Returns:
        The pieces, in order.
    """
    pieces: list[str] = []
    for match in _PRETOKEN.finditer(text):
        piece = match.group(0)
        bare = piece.lstrip(" ")
        if bare.isalpha() and len(bare) > _LONG_WORD:
            cut = len(piece) - len(bare) + _WORD_HEAD
            pieces.extend((piece[:cut], piece[cut:]))
        else:
            pieces.append(piece)
    return pieces


def count_tokens(text: str) -> int:
    """Count the tokens in ``text`` (used for ``usage.prompt_tokens``)."""
    return len(tokenize(text))


@functools.lru_cache(maxsize=65536)
def token_id(text: str) -> int:
    """Return a stable id for a token text, in a Llama-3-sized vocabulary.

    Hashing (rather than ``hash()``) keeps ids identical across processes.
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return 1000 + int.from_bytes(digest, "big") % 127000


@functools.lru_cache(maxsize=1)
def _sentences() -> tuple[str, ...]:
    raw = resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in raw.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def _rng(prompt: str, seed: object) -> random.Random:
    key = f"{prompt}\x00{seed!r}".encode()
    # Not for security: a reproducible stream of text choices.
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))  # noqa: S311


def _corpus_text(rng: random.Random, min_tokens: int) -> str:
    sentences = _sentences()
    parts: list[str] = []
    count = 0
    # Bounded: every sentence adds at least one token.
    for _ in range(min_tokens + 1):
        if count >= min_tokens:
            break
        sentence = rng.choice(sentences)
        sep = "\n\n" if parts and rng.random() < _PARAGRAPH_ODDS else " "
        chunk = sep + sentence
        parts.append(chunk)
        count += count_tokens(chunk)
    return "".join(parts)


def complete(
    prompt: str,
    *,
    seed: object = None,
    max_tokens: int | None = None,
    stop: list[str] | None = None,
    text: str | None = None,
    natural_tokens: int | None = None,
) -> Completion:
    """Produce the completion for a request, deterministically.

    Args:
        prompt: The request's prompt.
        seed: The request's seed (any JSON value); part of the determinism key.
        max_tokens: Cut after this many tokens (finish reason ``length``).
        stop: Stop sequences; the text is cut before the first one found
            (finish reason ``stop``) and the stop text itself is not emitted.
        text: The full answer to stream instead of corpus text (from a responder).
        natural_tokens: Make the corpus answer exactly this many tokens long
            before its natural end (``eos``).

    Returns:
        The tokens and finish reason.
    """
    rng = _rng(prompt, seed)
    limit = _HARD_TOKEN_LIMIT if max_tokens is None else min(max_tokens, _HARD_TOKEN_LIMIT)
    limit = max(limit, 0)
    if text is not None:
        pieces = tokenize(text)
    elif natural_tokens is not None:
        wanted = max(0, min(natural_tokens, _HARD_TOKEN_LIMIT))
        pieces = tokenize(_corpus_text(rng, min(wanted, limit + 1)))[:wanted]
    else:
        target = rng.randint(_DEFAULT_MIN_TOKENS, _DEFAULT_MAX_TOKENS)
        pieces = tokenize(_corpus_text(rng, min(target, limit + 1)))

    finish = "eos"
    if len(pieces) > limit:
        pieces = pieces[:limit]
        finish = "length"

    if stop:
        pieces, hit = _apply_stop(pieces, [s for s in stop if s])
        if hit:
            finish = "stop"

    # A separate stream keeps text for a smaller max_tokens a prefix of the longer one.
    lp_rng = _rng(prompt, ("logprobs", seed))
    tokens = tuple(Token(p, token_id(p), _logprob(lp_rng)) for p in pieces)
    return Completion(tokens=tokens, finish_reason=finish, prompt_tokens=count_tokens(prompt))


def _apply_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], bool]:
    full = "".join(pieces)
    cuts = [i for i in (full.find(s) for s in stops) if i >= 0]
    if not cuts:
        return pieces, False
    cut = min(cuts)
    kept: list[str] = []
    pos = 0
    for piece in pieces:
        if pos + len(piece) <= cut:
            kept.append(piece)
        elif pos < cut:
            # A token that straddles the stop keeps only the text before it.
            kept.append(piece[: cut - pos])
        else:
            break
        pos += len(piece)
    return kept, True


def _logprob(rng: random.Random) -> float:
    # Real streams show many exact zeros (greedy, confident) among small negatives.
    if rng.random() < _CONFIDENT_ODDS:
        return 0.0
    return -round(rng.random() * 2.5, 6)
