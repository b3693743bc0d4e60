"""A small web app that relays tokens from TogetherLLM to a browser over SSE.

The page opens an `EventSource`; the server streams `llm.stream(prompt)` and forwards each
token as it arrives. When the browser goes away, the loop stops and the upstream
connection to Together is closed, so generation (and billing) stops too.

Run: python examples/web_ui/app.py [--port 8000]   then open the printed address
(`--port 0` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from langchain_together_stream import TogetherError, TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator

PAGE = (Path(__file__).with_name("index.html")).read_bytes()


def make_server(llm: TogetherLLM, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 serving the page and the token stream."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                self._send_page()
            elif url.path == "/stream":
                prompt = parse_qs(url.query).get("prompt", ["Tell me a story."])[0]
                self._relay(prompt)
            else:
                self.send_error(404)

        def _send_page(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def _relay(self, prompt: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            tokens = llm.stream(prompt)
            try:
                for token in tokens:
                    self._event("token", {"token": token})
                self._event("done", {})
            except TogetherError as error:
                # "error" is EventSource's own event name, so failures travel as "failure".
                self._event("failure", {"message": str(error), "partial_text": error.partial_text})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser left; closing `tokens` below closes the upstream stream
            finally:
                tokens.close()

        def _event(self, name: str, data: dict[str, object]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the console for the tokens

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Relay TogetherLLM tokens to a web page.")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000; 0: any free port")
    args = parser.parse_args(argv)
    with TogetherEmulator(time_to_first_token=0.3, tokens_per_second=15) as emulator:
        llm = TogetherLLM(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            api_key="emulator-key",
            base_url=emulator.base_url,
            max_tokens=120,
        )
        server = make_server(llm, port=args.port)
        host, port = server.server_address[:2]
        print(f"Open http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            server.shutdown()


if __name__ == "__main__":
    main()
