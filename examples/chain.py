"""A `PromptTemplate | TogetherLLM | StrOutputParser` chain, streamed and batched.

Run: python examples/chain.py
"""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from langchain_together_stream import TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator


def main(base_url: str) -> dict[str, object]:
    llm = TogetherLLM(
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        api_key="emulator-key",
        base_url=base_url,
        max_tokens=20,
    )
    prompt = PromptTemplate.from_template("Write one sentence about {topic}:")
    chain = prompt | llm | StrOutputParser()

    print("streamed: ", end="")
    pieces = []
    for piece in chain.stream({"topic": "lighthouses"}):
        print(piece, end="", flush=True)
        pieces.append(piece)
    print()

    topics = [{"topic": "rivers"}, {"topic": "bridges"}, {"topic": "owls"}]
    answers = chain.batch(topics, config={"max_concurrency": 3})
    for topic, answer in zip(topics, answers, strict=True):
        print(f"{topic['topic']}: {answer.strip()}")
    return {"stream": pieces, "batch": answers}


if __name__ == "__main__":
    with TogetherEmulator(tokens_per_second=40) as emulator:
        main(emulator.base_url)
