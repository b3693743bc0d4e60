"""The `together-stream` command: stream one completion to the terminal."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any, TextIO, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

from langchain_together_stream.errors import TogetherError
from langchain_together_stream.llms import TogetherLLM

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
NO_KEY_HELP = """\
together-stream: no Together API key.

  Get one at https://api.together.ai/settings/api-keys, then:
      export TOGETHER_API_KEY="your-key"

  Or run offline against the bundled emulator, no key needed:
      together-stream --emulator "Alan Turing was"
"""


class _Stats(BaseCallbackHandler):
    """Counts tokens and keeps the final metadata, for the stats line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.tokens = 0
        self.info: dict[str, Any] = {}

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        **kwargs: Any,
    ) -> None:
        """Count a token as usage counts it, and note when the first text arrived.

        Together ends an `eos`/`stop` stream with an empty chunk that carries the
        end-of-sequence token, and counts it in `usage.completion_tokens`; it comes here as
        the final chunk (the only empty one, with the finish reason). A final chunk without a
        finish reason (a stream ended by `[DONE]` alone) carries no token.
        """
        if token:
            self.tokens += 1
            if self.first_token is None:
                self.first_token = time.perf_counter()
        elif chunk is not None and (chunk.generation_info or {}).get("finish_reason"):
            self.tokens += 1

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Keep the final chunk's metadata."""
        self.info = response.generations[0][0].generation_info or {}

    def line(self) -> str:
        """One line: time to first token, tokens, tokens/s, finish reason, usage."""
        now = time.perf_counter()
        parts = []
        if self.first_token is not None:
            ttft = self.first_token - self.started
            streaming = max(now - self.first_token, 1e-9)
            rate = (self.tokens - 1) / streaming if self.tokens > 1 else 0.0
            parts += [f"ttft {ttft:.2f}s", f"{self.tokens} tokens", f"{rate:.1f} tokens/s"]
        else:
            parts.append("no tokens")
        parts.append(f"finish {self.info.get('finish_reason') or '?'}")
        usage = self.info.get("usage")
        if usage:
            parts.append(
                f"usage {usage.get('prompt_tokens', '?')} prompt + "
                f"{usage.get('completion_tokens', '?')} completion = "
                f"{usage.get('total_tokens', '?')} tokens"
            )
        return " · ".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="together-stream",
        description="Stream a Together AI completion to the terminal as it is generated.",
    )
    parser.add_argument("prompt", help="the text to complete")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"default: {DEFAULT_MODEL}")
    parser.add_argument("--max-tokens", type=int, default=128, help="default: 128")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument(
        "--stop", action="append", default=None, help="a stop sequence (repeatable)"
    )
    parser.add_argument("--base-url", default=None, help="default: $TOGETHER_BASE_URL or Together")
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against the bundled offline Together emulator (no key, no network)",
    )
    parser.add_argument(
        "--ttft", type=float, default=0.4, help="emulator: seconds to the first token"
    )
    parser.add_argument(
        "--tps", type=float, default=25.0, help="emulator: tokens per second (0: unpaced)"
    )
    return parser


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Where to send the request: the emulator, started here, or the given/real API."""
    if not args.emulator:
        settings: dict[str, Any] = {}
        if args.base_url:
            settings["base_url"] = args.base_url
        yield settings
        return
    from langchain_together_stream.emulator import TogetherEmulator  # noqa: PLC0415

    pace = args.tps or None  # 0 means as fast as possible
    with TogetherEmulator(time_to_first_token=args.ttft, tokens_per_second=pace) as emu:
        yield {"base_url": emu.base_url, "api_key": "emulator-key"}


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command.

    Args:
        argv: Arguments (default: `sys.argv[1:]`).
        stdout: Where tokens go (default: `sys.stdout`).
        stderr: Where the stats line and errors go (default: `sys.stderr`).

    Returns:
        The exit status: 0 on success, 1 on a Together error, 2 on a usage error, 130 on Ctrl-C,
        141 (128 + SIGPIPE, as a shell reports for Unix tools) when stdout is closed early,
        e.g. by `| head`.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if not args.emulator and not os.environ.get("TOGETHER_API_KEY"):
        err.write(NO_KEY_HELP)
        return 2
    try:
        return _run(args, out, err)
    except BrokenPipeError:
        # The reader left (`| head -c 20`): stop quietly, as Unix tools do. The stream is
        # already closed; stdout is pointed at /dev/null so that Python's own flush at exit
        # does not report the broken pipe either.
        if out is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_BROKEN_PIPE


_EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stats = _Stats()
    try:
        with _endpoint(args) as endpoint:
            llm = TogetherLLM(
                model=args.model,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
                stop=args.stop,
                **endpoint,
            )
            # A failed write leaves the loop, and the connection must close with it, not
            # whenever the generator is collected. stream() returns a generator.
            stream = cast(
                "Generator[str, None, None]",
                llm.stream(args.prompt, config={"callbacks": [stats]}),
            )
            with contextlib.closing(stream) as tokens:
                for token in tokens:
                    out.write(token)
                    out.flush()
    except TogetherError as error:
        out.write("\n")
        err.write(f"together-stream: {type(error).__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:
        out.write("\n")
        err.write("together-stream: interrupted\n")
        return 130
    out.write("\n")
    out.flush()
    err.write(stats.line() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
