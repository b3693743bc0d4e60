"""A tool-using ReAct agent loop driven by TogetherLLM.

The emulator is scripted to answer like a model would (a `responder`), so the whole pipeline
runs offline: the LLM picks a tool, the loop runs it, the observation goes back into the
prompt, and the LLM gives the final answer.

Run: python examples/agent.py
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.prompts import PromptTemplate
from langchain_core.tools import BaseTool, tool

from langchain_together_stream import TogetherLLM
from langchain_together_stream.emulator import TogetherEmulator


@tool
def multiply(expression: str) -> str:
    """Multiply two integers written as 'a * b'."""
    left, right = (int(part) for part in expression.split("*"))
    return str(left * right)


@tool
def word_length(word: str) -> str:
    """Count the letters in a word."""
    return str(len(word.strip()))


TOOLS: dict[str, BaseTool] = {t.name: t for t in (multiply, word_length)}

REACT = PromptTemplate.from_template(
    """Answer the question using the tools.

Tools:
{tools}

Use this format:
Thought: what to do next
Action: one of [{tool_names}]
Action Input: the input
Observation: the result
... (repeat as needed)
Thought: I know the answer
Final Answer: the answer

Question: {question}
{scratchpad}Thought:"""
)

ACTION = re.compile(r"Action:\s*(\S+)\s*Action Input:\s*(.+)", re.DOTALL)


def scripted_model(prompt: str, request: Mapping[str, Any]) -> str | None:
    """What a model would answer to our ReAct prompt; stands in for Together."""
    if "Question:" not in prompt:
        return None
    # Only the transcript after the question counts; the format block mentions observations too.
    observations = re.findall(r"Observation: (.*)", prompt.split("Question:", 1)[1])
    if not observations:
        return " I should multiply the numbers.\nAction: multiply\nAction Input: 12 * 7\n"
    if len(observations) == 1:
        return (
            " Now count the letters of the word.\nAction: word_length\nAction Input: lighthouse\n"
        )
    product, letters = observations
    answer = f"12 * 7 = {product}, and 'lighthouse' has {letters} letters."
    return f" I know the answer\nFinal Answer: {answer}"


def run_agent(llm: TogetherLLM, question: str, max_steps: int = 5) -> tuple[str, list[str]]:
    scratchpad = ""
    steps: list[str] = []
    for _ in range(max_steps):
        prompt = REACT.format(
            tools="\n".join(f"{t.name}: {t.description}" for t in TOOLS.values()),
            tool_names=", ".join(TOOLS),
            question=question,
            scratchpad=scratchpad,
        )
        # Stop before the model invents its own observation.
        reply = llm.invoke(prompt, stop=["\nObservation:"])
        if "Final Answer:" in reply:
            return reply.split("Final Answer:", 1)[1].strip(), steps
        match = ACTION.search(reply)
        if match is None:
            msg = f"the model answered without an action: {reply!r}"
            raise RuntimeError(msg)
        name, argument = match.group(1), match.group(2).strip()
        observation = TOOLS[name].invoke(argument)
        steps.append(f"{name}({argument}) -> {observation}")
        print(f"  {steps[-1]}")
        scratchpad += f"Thought:{reply.rstrip()}\nObservation: {observation}\n"
    msg = f"no final answer after {max_steps} steps"
    raise RuntimeError(msg)


def main(base_url: str) -> tuple[str, list[str]]:
    llm = TogetherLLM(
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        api_key="emulator-key",
        base_url=base_url,
        max_tokens=200,
        temperature=0.0,
    )
    answer, steps = run_agent(llm, "What is 12 times 7, and how many letters are in 'lighthouse'?")
    print("Final answer:", answer)
    return answer, steps


if __name__ == "__main__":
    with TogetherEmulator(responder=scripted_model, tokens_per_second=60) as emulator:
        main(emulator.base_url)
