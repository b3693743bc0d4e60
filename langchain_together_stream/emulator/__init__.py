r"""An offline Together AI completions and chat server for tests, demos and your own tests.

``TogetherEmulator`` is a real HTTP/1.1 server on 127.0.0.1 (standard library only)
that speaks Together's wire format as recorded from the live API:

- ``POST {base_url}/completions`` (``/v1/completions``): with ``"stream": true`` a
  ``text/event-stream`` of ``data: <chunk>`` events (``object: completion.chunk``),
  the last one carrying ``finish_reason`` (``eos``, ``stop`` or ``length``), a 64-bit
  ``seed`` and ``usage``, then ``data: [DONE]``; without it a ``text.completion`` body.
- ``POST {root_url}/inference``: the legacy endpoint; ``"stream_tokens": true`` streams
  ``{"choices":[{"text":...}],"result_type":"language-model-inference","token":{...}}``
  events without usage or finish reason.
- ``POST {base_url}/chat/completions`` (``/v1/chat/completions``): see "Chat" below.
- Errors use Together's envelope ``{"id", "error": {message, type, param, code}}``.

Text is deterministic for a given ``(prompt, seed)``, drawn from ``corpus.txt``; pass
``responder=`` to script the answers (e.g. to drive an agent). ``max_tokens`` and
``stop`` are honoured. Pacing: ``time_to_first_token`` and ``tokens_per_second``, or
per request the headers ``X-Emulator-TTFT`` and ``X-Emulator-TPS`` (``none`` for no
pacing). ``X-Emulator-Tokens: <n>`` makes the default answer exactly ``n`` tokens long.

Example::

    from langchain_together_stream.emulator import TogetherEmulator

    with TogetherEmulator(tokens_per_second=50) as emu:
        ...  # POST f"{emu.base_url}/completions" with any "Authorization: Bearer <key>"
        assert emu.requests[-1].headers["authorization"] == "[REDACTED]"

From a shell: ``python -m langchain_together_stream.emulator --port 8765``.

Chat
----
``/v1/chat/completions`` streams ``chat.completion.chunk`` events shaped like
Together's 2026 recordings: every delta has ``role: "assistant"``, ``token_id`` and
``content`` (choices also carry ``text``, ``logprobs``, ``seed``); a text stream ends
with an empty chunk with ``finish_reason: "stop"`` (``"length"`` chunks keep their
last token), a ``seed`` above 2**63 and ``usage`` with a top-level ``cached_tokens``;
then ``[DONE]``. A tool-call stream opens with a chunk with a non-standard
``choices[0].role``, sends each call as ``index/id/type/function.name/arguments:""``
then the whole argument JSON (the last with ``finish_reason: "tool_calls"``), then a
final chunk with ``finish_reason: "tool_calls"`` again, ``seed`` and ``usage``; its
chunks have no ``usage`` key before that. Without ``"stream": true`` the answer is
one ``chat.completion`` body. The requested model is echoed.

What it answers, unless ``chat_responder`` does:

- tools bound, ``tool_choice`` not ``"none"``, last message not a tool result: tool
  calls. A named ``tool_choice`` picks the tool; else every tool named in the last
  user message, in order of mention, as parallel calls; else the first tool.
  Arguments are built from the tool's JSON schema: numbers and quoted strings of the
  last user message first, in order (``multiply 3 and 4`` -> ``{"a": 3, "b": 4}``),
  then enum/const/format defaults, then the prompt text for other strings; required
  fields are always filled.
- after tool results: a sentence quoting each result (``The multiply tool returned 12.``).
- ``response_format`` ``json_schema`` (or ``json_object`` with ``schema``): a JSON
  object valid for the schema; plain ``json_object``: an object whose keys are the
  quoted words of the prompt.
- otherwise readable text, deterministic for the messages and seed.
- ``reasoning: {"enabled": true}``, a ``reasoning_effort``, or a model name containing
  ``r1``/``reason``/``think``/``qwq``: ``delta.reasoning`` tokens (empty content) before
  the content; ``message.reasoning`` when not streamed.
- ``tool_choice: "required"``: 400 ``invalid_request_error`` as Together was reported
  to answer (``reject_required_tool_choice=False`` treats it as ``"auto"``).
- ``logprobs``: a bare number per chunk; non-stream ``{tokens, token_logprobs,
  token_ids}`` (+ ``top_logprobs`` when asked). ``max_tokens``, ``stop``, ``seed``,
  pacing and ``X-Emulator-Tokens`` (corpus answers) apply as for completions.
- ``X-Emulator-Usage: when-asked`` sends usage on a stream only when the request has
  ``stream_options: {"include_usage": true}`` (Together sends it unasked);
  ``X-Emulator-Usage: separate-chunk`` sends it, only when asked, OpenAI's way: in an
  extra chunk with empty ``choices`` after the finish chunk.
  ``X-Emulator-Cached-Tokens: <n>`` sets ``cached_tokens``.

``chat_responder=fn`` scripts answers: ``fn(messages, request_json)`` returns a
``ChatReply(content, tool_calls=[ChatToolCall(name, arguments, id)], reasoning)``, a
string (the content), or None for the default behaviour.

Account rate limit
------------------
``TogetherEmulator(rate_limit=AccountRateLimit(requests_per_second=20,
tokens_per_minute=60_000))`` answers past either budget as Together does: 429 with its
envelope, ``retry-after`` and ``x-ratelimit-*`` headers, and 503 "Overloaded" in bursts when
a client keeps sending through its 429s. ``emu.ledger`` (or ``GET {root_url}/emulator/ledger``)
counts requests admitted and refused, and the tokens of every answer served in full.

Faults
------
Choose one per request with the model name ``emulator/fault-<name>`` or the header
``X-Emulator-Fault: <name>[;key=value...]`` (the header wins). Parameters:
``after=<k>`` tokens sent before the fault (default 3), ``seconds=<s>``,
``status=<code>``, ``count=<n>``, ``bytes=<n>``, ``to=<url>``.

- ``http-<status>`` for 400, 401, 402, 403, 404, 422, 429, 500, 502, 503, 504: that
  status with Together's JSON envelope and a realistic ``error.type``
  (``invalid_request_error``, ``credit_limit``, ``rate_limit_exceeded``,
  ``server_error``; 503 says "Overloaded"). 429 adds ``Retry-After`` (``seconds``,
  default 1) and ``x-ratelimit-reset``.
- ``http-<status>-html``: the same status with a Cloudflare-style HTML page.
- ``http-<status>-empty``: the same status with an empty body.
- ``http-error``: any ``status=<code>`` (default 500) with the JSON envelope.
- ``credit-limit``: 429 whose ``error.type`` is ``credit_limit``; clients must not retry.
- ``rate-limit-then-ok``: the first ``count`` (default 1) requests with the same prompt
  get 429 with ``Retry-After: <seconds>`` (default 0.05) and ``x-ratelimit-reset``;
  later ones succeed. Counted per emulator and prompt (``clear()`` resets).
- ``server-error-then-ok``: the same with 503 "Overloaded".
- ``error-mid-stream``: after ``after`` tokens, ``data: {"error": {...,
  "type": "server_error"}}``, then the body ends and the connection closes.
- ``event-error``: the same error object as an ``event: error`` event.
- ``truncate``: after ``after`` tokens the body ends cleanly (chunked terminator) with
  no ``finish_reason`` and no ``[DONE]``. Non-stream: half the promised body, then close.
- ``malformed-json``: after ``after`` tokens, ``data: {"choices": [``, then the rest.
- ``invalid-utf8``: after ``after`` tokens, an event with bytes that are not UTF-8,
  then the rest.
- ``stall``: after ``after`` tokens (0: before the first body byte) nothing is sent for
  ``seconds`` (default 30), then the stream continues. A hang-up is still noticed.
- ``stall-headers``: nothing at all, not even the status line, for ``seconds``.
- ``reset``: after ``after`` tokens the TCP connection is aborted with RST.
- ``close-delimited``: a correct stream with no ``Transfer-Encoding`` or
  ``Content-Length`` and ``Connection: close``; the body ends when the socket closes.
- ``crlf``: a correct stream with ``\r\n`` line endings.
- ``keepalive``: a correct stream with ``count`` (default 3) ``: keep-alive`` comments
  before each token event.
- ``long-line``: after ``after`` tokens, one ``data:`` line of ``bytes`` bytes
  (default 2 MiB) with no newline, written in 64 KiB pieces, then the body ends.
- ``not-sse``: a 200 ``application/json`` completion (or chat) body although stream was
  asked.
- ``redirect``: 307 to ``{root_url}/redirected<request path>`` (or ``to``); a
  client must not follow it with the key (the target answers 404 and is recorded).
- ``byte-at-a-time``: a correct stream written one byte per write.

``FAULTS`` maps every name to a one-line description. Every fault applies to
``/v1/chat/completions`` too, ``after`` counting chunks (a tool-call stream's role
chunk, call start and arguments chunks count).
"""

from langchain_together_stream.emulator._chat import ChatReply, ChatResponder, ChatToolCall
from langchain_together_stream.emulator._faults import FAULTS
from langchain_together_stream.emulator._ratelimit import AccountRateLimit, Ledger
from langchain_together_stream.emulator._server import (
    RecordedRequest,
    Responder,
    TogetherEmulator,
)

__all__ = [
    "FAULTS",
    "AccountRateLimit",
    "ChatReply",
    "ChatResponder",
    "ChatToolCall",
    "Ledger",
    "RecordedRequest",
    "Responder",
    "TogetherEmulator",
]
