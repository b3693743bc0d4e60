"""``python -m langchain_together_stream.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from langchain_together_stream.emulator._server import TogetherEmulator

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_together_stream.emulator",
        description="Serve an offline Together AI completions and chat API on loopback.",
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    parser.add_argument(
        "--host",
        default=None,
        help="interface to bind (default 127.0.0.1; anything else only when given here)",
    )
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first token")
    parser.add_argument("--tps", type=float, default=None, help="tokens per second")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accept only this key (repeatable); default: any non-empty key",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator from the command line.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    explicit_host = args.host is not None
    emulator = TogetherEmulator(
        port=args.port,
        time_to_first_token=args.ttft,
        tokens_per_second=args.tps,
        api_keys=args.api_keys,
        host=args.host if explicit_host else "127.0.0.1",
        allow_remote=explicit_host,
    )
    with emulator:
        sys.stdout.write(f"Together emulator: {emulator.base_url}\n")
        sys.stdout.write("Press Ctrl-C to stop.\n")
        sys.stdout.flush()
        forever = threading.Event()
        try:
            # Waits in slices so Ctrl-C is delivered promptly on every platform.
            while not forever.wait(1.0):
                pass
        except KeyboardInterrupt:
            sys.stdout.write("\nstopping\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
