"""`TogetherLLM`'s assembler: completion chunks to LangChain `GenerationChunk`s.

Plugged into `_stream.StreamReader`, shared by the sync and async paths.

LangChain merges chunk metadata by concatenating repeated strings and summing repeated ints,
so `finish_reason`, `usage`, `model`, `id` and `seed` ride on the final chunk only. The chunk
that carries the finish reason is held until the stream ends (normally `[DONE]` follows it in
the same read), so its text and the metadata arrive together and no empty extra chunk is
needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.outputs import GenerationChunk

from langchain_together_stream._wire.completions import StreamChunk
from langchain_together_stream.errors import TogetherStreamError


class GenerationAssembler:
    """Turns one stream's Together chunks into LangChain chunks and remembers the text."""

    __slots__ = (
        "_finish_reason",
        "_held_logprob",
        "_held_text",
        "_id",
        "_model",
        "_seed",
        "_texts",
        "_usage",
        "_with_logprobs",
    )

    def __init__(self, *, model: str, with_logprobs: bool) -> None:
        """Start an empty stream.

        Args:
            model: The requested model, reported when the stream names none.
            with_logprobs: Whether per-token log-probabilities were asked for.
        """
        self._texts: list[str] = []
        self._held_text = ""
        self._held_logprob: float | None = None
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model = model
        self._id: str | None = None
        self._seed: int | float | None = None
        self._with_logprobs = with_logprobs

    @property
    def partial_text(self) -> str:
        """All text received so far, including a held final token."""
        return "".join(self._texts) + self._held_text

    def add(self, chunk: StreamChunk) -> GenerationChunk | None:
        """Take one Together chunk.

        Args:
            chunk: The parsed chunk.

        Returns:
            The LangChain chunk to emit now, or None (nothing new, or held until the end).
        """
        text, finish_reason, logprob = chunk.text, chunk.finish_reason, chunk.logprob
        # Most chunks carry only text: remember the rest without a call per token.
        if chunk.model:
            self._model = chunk.model
        if chunk.id:
            self._id = chunk.id
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.seed is not None:
            self._seed = chunk.seed
        if self._held_text:
            # Text held from an earlier finish-reason chunk goes out with this one: a stream
            # that continues after a finish reason (tool-call streams repeat it) loses nothing.
            text = self._held_text + text
        if finish_reason is not None:
            self._finish_reason = finish_reason
            self._held_text, self._held_logprob = text, logprob
            return None
        self._held_text = ""
        if not text:
            return None
        self._texts.append(text)
        if self._with_logprobs and logprob is not None:
            info = {"logprobs": {"tokens": [text], "token_logprobs": [logprob]}}
            return GenerationChunk(text=text, generation_info=info)
        return GenerationChunk(text=text)

    def finish(self, *, saw_done: bool) -> GenerationChunk:
        """End the stream: the final chunk with the held text and all the metadata.

        Args:
            saw_done: Whether `[DONE]` arrived (else the body simply ended).

        Returns:
            The final chunk, possibly with empty text.

        Raises:
            TogetherStreamError: The body ended with neither `[DONE]` nor a finish reason.
        """
        if not saw_done and self._finish_reason is None:
            msg = (
                "Together's stream ended without [DONE] or a finish reason; the answer is "
                "incomplete."
            )
            raise TogetherStreamError(msg, request_id=self._id)
        text, self._held_text = self._held_text, ""
        if text:
            self._texts.append(text)
        info: dict[str, Any] = {"finish_reason": self._finish_reason}
        if self._usage is not None:
            info["usage"] = self._usage
        info["model"] = self._model
        if self._id is not None:
            info["id"] = self._id
        if self._seed is not None:
            info["seed"] = self._seed
        if self._with_logprobs and text and self._held_logprob is not None:
            info["logprobs"] = {"tokens": [text], "token_logprobs": [self._held_logprob]}
        return GenerationChunk(text=text, generation_info=info)


class Aggregate:
    """Adds up one stream's chunks in linear time, as `chunk + chunk` would but cheaper.

    `chunk + chunk` copies the whole text each time, which is quadratic in the answer's length.
    Only the final chunk carries metadata other than log-probabilities (see `finish`), so
    keeping the last value of each key merges exactly as LangChain's `merge_dicts` would.
    """

    __slots__ = ("_info", "_texts", "_token_logprobs", "_tokens")

    def __init__(self) -> None:
        """Start empty."""
        self._texts: list[str] = []
        self._info: dict[str, Any] = {}
        self._tokens: list[str] = []
        self._token_logprobs: list[float] = []

    def __bool__(self) -> bool:
        """Whether any chunk was added."""
        return bool(self._texts)

    def add(self, chunk: GenerationChunk) -> None:
        """Add the next chunk.

        Args:
            chunk: The chunk, in stream order.
        """
        self._texts.append(chunk.text)
        if chunk.generation_info:
            for key, value in chunk.generation_info.items():
                if key == "logprobs":
                    self._tokens.extend(value["tokens"])
                    self._token_logprobs.extend(value["token_logprobs"])
                else:
                    self._info[key] = value

    def result(self) -> GenerationChunk:
        """The sum of the chunks added so far.

        Returns:
            One chunk with the whole text and the merged metadata.
        """
        info = dict(self._info)
        if self._tokens:
            info["logprobs"] = {
                "tokens": [*self._tokens],
                "token_logprobs": [*self._token_logprobs],
            }
        return GenerationChunk(text="".join(self._texts), generation_info=info or None)


def aggregate(chunks: Iterable[GenerationChunk]) -> GenerationChunk:
    """Add up one stream's chunks in linear time.

    Args:
        chunks: The chunks of one stream, in order.

    Returns:
        One chunk with the whole text and the merged metadata.
    """
    total = Aggregate()
    for chunk in chunks:
        total.add(chunk)
    return total.result()
