"""SSE events to a model's chunks, for any endpoint and both paths.

A `StreamReader` owns what every stream shares: `[DONE]`, the end of the body, one more read
after `[DONE]` so the connection goes back to the pool, and `partial_text` on a failure. What
an event means is the endpoint's `parse` (see `_wire`); what the caller gets is the model's
`Assembler` (`GenerationChunk`s for `TogetherLLM`, in `_chunks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import Generic, Protocol, TypeVar

from langchain_together_stream._sse import SSEEvent
from langchain_together_stream._wire import DONE
from langchain_together_stream.errors import TogetherError

WireT = TypeVar("WireT")
"""What the endpoint's `parse` makes of one event."""
ChunkT = TypeVar("ChunkT")
"""What the reader yields: the model's LangChain chunk."""
WireT_contra = TypeVar("WireT_contra", contravariant=True)
ChunkT_co = TypeVar("ChunkT_co", covariant=True)


class Assembler(Protocol[WireT_contra, ChunkT_co]):
    """Turns one stream's parsed chunks into the model's chunks; one per stream."""

    @property
    def partial_text(self) -> str:
        """All text received so far, set on an error as its `partial_text`."""

    def add(self, chunk: WireT_contra) -> ChunkT_co | None:
        """Take one parsed chunk.

        Args:
            chunk: What `parse` returned for the event.

        Returns:
            The chunk to yield now, or None (nothing to show yet).
        """

    def finish(self, *, saw_done: bool) -> ChunkT_co | None:
        """End the stream (at `[DONE]`, or when the body ended without it).

        Args:
            saw_done: Whether `[DONE]` arrived.

        Returns:
            A last chunk to yield, or None.

        Raises:
            TogetherStreamError: The stream is incomplete.
        """


class StreamReader(Generic[WireT, ChunkT]):
    """Turns one stream's SSE events into the model's chunks, for the sync and async paths.

    Both paths decide here what `[DONE]`, each event and the end of the body mean, and set
    `partial_text` on a failure; they differ only in how they iterate.
    """

    __slots__ = ("_assembler", "_parse", "_saw_done")

    def __init__(
        self,
        parse: Callable[[str, str], WireT],
        assembler: Assembler[WireT, ChunkT],
    ) -> None:
        """Read into `assembler`.

        Args:
            parse: The endpoint's parser: `(event type, data) -> parsed chunk`; it raises
                `TogetherStreamError` for error events and invalid data.
            assembler: The stream's assembler.
        """
        self._parse = parse
        self._assembler = assembler
        self._saw_done = False

    def chunks(self, events: Generator[SSEEvent, None, None]) -> Generator[ChunkT, None, None]:
        """The chunks of a sync event stream; closes `events` when done or left.

        Args:
            events: The transport's events.

        Yields:
            The assembler's chunks as the events arrive, then its final chunk.
        """
        with self._partial_text_on_error(), contextlib.closing(events):
            for event in events:
                chunk = self._take(event)
                if chunk is not None:
                    yield chunk
                if self._saw_done:
                    # One more read reaches the end of the body, which returns the connection
                    # to the pool. The answer is complete: whatever that read brings (more
                    # events, a failure) is ignored, and nothing more is read.
                    with contextlib.suppress(TogetherError):
                        next(events, None)
                    return
            if (last := self._end()) is not None:
                yield last

    async def achunks(self, events: AsyncGenerator[SSEEvent, None]) -> AsyncGenerator[ChunkT, None]:
        """The chunks of an async event stream; closes `events` when done or left.

        Args:
            events: The transport's events.

        Yields:
            The assembler's chunks as the events arrive, then its final chunk.
        """
        with self._partial_text_on_error():
            async with contextlib.aclosing(events):
                async for event in events:
                    chunk = self._take(event)
                    if chunk is not None:
                        yield chunk
                    if self._saw_done:
                        # As in `chunks`: one more read to reuse the connection, then stop.
                        with contextlib.suppress(TogetherError):
                            await anext(events, None)
                        return
            if (last := self._end()) is not None:
                yield last

    def _take(self, event: SSEEvent) -> ChunkT | None:
        if event.data == DONE:
            self._saw_done = True
            return self._assembler.finish(saw_done=True)
        return self._assembler.add(self._parse(event.event, event.data))

    def _end(self) -> ChunkT | None:
        return None if self._saw_done else self._assembler.finish(saw_done=False)

    @contextlib.contextmanager
    def _partial_text_on_error(self) -> Iterator[None]:
        try:
            yield
        except TogetherError as error:
            error.partial_text = self._assembler.partial_text
            raise
