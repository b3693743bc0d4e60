"""Together's request and response shapes, one module per endpoint; knows JSON, not HTTP.

- `errors`: what every endpoint shares: `[DONE]`, error bodies, error objects in a stream.
- `completions`: the completions stream's chunks.
- `chat`: the chat stream's deltas (text, tool-call fragments, reasoning).
"""

from langchain_together_stream._wire.completions import StreamChunk, parse_chunk
from langchain_together_stream._wire.errors import (
    DONE,
    ErrorInfo,
    ErrorObject,
    parse_error_body,
)

__all__ = ["DONE", "ErrorInfo", "ErrorObject", "StreamChunk", "parse_chunk", "parse_error_body"]
