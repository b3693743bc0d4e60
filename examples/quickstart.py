"""Invoke, stream and watch tokens with a callback, offline against the emulator.

Run: python examples/quickstart.py   (with a Python that has the package installed; see the
README's Quick start)
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.callbacks import BaseCallbackHandler

    from langchain_together_stream import TogetherLLM
    from langchain_together_stream.emulator import TogetherEmulator
except ModuleNotFoundError as missing:
    # The usual first stumble: a `python` that does not have the package installed.
    hint = (
        f"{missing}: install langchain-together-stream into this Python first,\n"
        "    python -m pip install /path/to/langchain-together-stream\n"
        "or, in the repository after `make test`, run: .venv/bin/python examples/quickstart.py"
    )
    raise SystemExit(hint) from None


class TokenCounter(BaseCallbackHandler):
    """Counts the tokens streamed through any call."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:
            self.tokens.append(token)


def main(base_url: str) -> dict[str, Any]:
    llm = TogetherLLM(
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        api_key="emulator-key",  # the emulator accepts any key
        base_url=base_url,
        max_tokens=24,
        seed=7,
    )

    answer = llm.invoke("Alan Turing was")
    print("invoke:", answer)

    print("stream: ", end="")
    streamed = []
    for token in llm.stream("Ada Lovelace was"):
        print(token, end="|", flush=True)
        streamed.append(token)
    print()

    counter = TokenCounter()
    result = llm.generate(["Grace Hopper was"], callbacks=[counter])
    info = result.generations[0][0].generation_info or {}
    print(f"callbacks saw {len(counter.tokens)} tokens; finish_reason={info['finish_reason']}")
    print("usage:", result.llm_output["token_usage"] if result.llm_output else None)
    return {"invoke": answer, "stream": streamed, "counted": counter.tokens, "info": info}


if __name__ == "__main__":
    with TogetherEmulator(tokens_per_second=40) as emulator:
        main(emulator.base_url)
