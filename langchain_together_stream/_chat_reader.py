"""A stream reader for chat: `_chunks.StreamReader` with the chat parser and assembler.

Temporary: the shared reader is wired to the completions parser, so this subclass swaps in
the chat one until the reader is generic over its parser and assembler.
"""

from __future__ import annotations

from langchain_core.outputs import ChatGenerationChunk

from langchain_together_stream._chat_chunks import ChatAssembler
from langchain_together_stream._chat_wire import parse_chat_chunk
from langchain_together_stream._chunks import StreamReader
from langchain_together_stream._sse import SSEEvent
from langchain_together_stream._wire import DONE


class ChatStreamReader(StreamReader):
    """Turns one chat stream's SSE events into `ChatGenerationChunk`s."""

    __slots__ = ()

    def __init__(self, assembler: ChatAssembler) -> None:
        """Read into `assembler`.

        Args:
            assembler: The stream's assembler.
        """
        super().__init__(assembler)  # type: ignore[arg-type]

    def _take(self, event: SSEEvent) -> ChatGenerationChunk | None:  # type: ignore[override]
        if event.data == DONE:
            self._saw_done = True
            return self._assembler.finish(saw_done=True)  # type: ignore[return-value]
        return self._assembler.add(parse_chat_chunk(event.event, event.data))  # type: ignore[arg-type,return-value]
