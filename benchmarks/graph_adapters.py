"""GraphLLM vs livekit-plugins-langchain's LLMAdapter on graphs made by the real builders.

Each builder graph (create_react_agent, LangChain v1 create_agent, langgraph-supervisor,
langgraph-swarm) runs the same three-turn conversation through LiveKit's AgentSession with
each adapter, on scripted chat models that call tools and hand off. The table shows what
the caller would hear, whether internal text (tool results, supervisor routing, handoff
messages) reached TTS, and how many messages the checkpointed thread holds afterwards
(the conversation itself has 3 user lines, plus the graph's own tool and handoff steps).

    uv run python -m benchmarks.graph_adapters
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph_supervisor import create_supervisor
from langgraph_swarm import create_handoff_tool, create_swarm
from livekit.agents import Agent, AgentSession, llm
from livekit.plugins.langchain import LLMAdapter

from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import ScriptedChatModel, tool_call

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

TOOL_SECRET = "RATE-7781"
ROUTING = "ROUTING-NOTE"
QUESTIONS = ("How much is a double tonight?", "And breakfast?", "Thanks, bye.")
THREAD = "bench"


@tool
def room_rate(room_type: str) -> str:
    """Tonight's rate for a room type."""
    return f"{TOOL_SECRET}: the {room_type} room is 180 euros."


def _rate_call(call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[tool_call("room_rate", {"room_type": "double"}, call_id)])


def _answers() -> list[Any]:
    return [_rate_call("c1"), "A double is 180 euros.", "Breakfast is from seven.", "Goodbye!"]


def _react() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(
            ScriptedChatModel(script=_answers()), [room_rate], checkpointer=InMemorySaver()
        )


def _create_agent() -> Any:
    return create_agent(
        ScriptedChatModel(script=_answers()), [room_rate], checkpointer=InMemorySaver()
    )


def _supervisor() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        worker = create_react_agent(
            ScriptedChatModel(script=_answers()), [room_rate], name="front_desk"
        )
    handoff = AIMessage(ROUTING, tool_calls=[tool_call("transfer_to_front_desk", {}, "h")])
    supervisor_model = ScriptedChatModel(
        script=[handoff, f"{ROUTING} done."] * len(QUESTIONS), default=f"{ROUTING} done."
    )
    return create_supervisor([worker], model=supervisor_model).compile(checkpointer=InMemorySaver())


def _swarm() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        greeter = create_react_agent(
            ScriptedChatModel(
                script=[AIMessage("", tool_calls=[tool_call("transfer_to_desk", {}, "h")])]
            ),
            [create_handoff_tool(agent_name="desk")],
            name="greeter",
        )
        desk = create_react_agent(
            ScriptedChatModel(script=_answers()),
            [room_rate, create_handoff_tool(agent_name="greeter")],
            name="desk",
        )
    return create_swarm([greeter, desk], default_active_agent="greeter").compile(
        checkpointer=InMemorySaver()
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "create_react_agent": _react,
    "create_agent": _create_agent,
    "supervisor": _supervisor,
    "swarm": _swarm,
}


@dataclass
class Outcome:
    spoken: list[str]
    thread_messages: int
    leaked: bool
    error: str | None = None


def _adapters() -> dict[str, Callable[[Any], llm.LLM]]:
    return {
        "GraphLLM": lambda graph: GraphLLM(graph, thread_id=THREAD),
        "LLMAdapter": lambda graph: LLMAdapter(
            graph, config={"configurable": {"thread_id": THREAD}}
        ),
    }


async def _converse(graph: Any, adapter: llm.LLM) -> Outcome:
    spoken: list[str] = []
    error = None
    async with AgentSession(llm=adapter) as session:
        await session.start(Agent(instructions="You are the concierge of Hotel Aurora."))
        for question in QUESTIONS:
            try:
                result = await session.run(user_input=question)
            except Exception as exc:  # the table reports it instead of stopping
                error = f"{type(exc).__name__}: {exc}"[:60]
                break
            texts = [
                (e.item.text_content or "").strip()
                for e in result.events
                if e.type == "message" and e.item.role == "assistant"
            ]
            spoken.append(" ".join(texts))
    state = await graph.aget_state({"configurable": {"thread_id": THREAD}})
    messages = state.values.get("messages", [])
    said = " ".join(spoken)
    leaked = any(secret in said for secret in (TOOL_SECRET, ROUTING, "Transferring"))
    return Outcome(spoken=spoken, thread_messages=len(messages), leaked=leaked, error=error)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def _run() -> None:
    rows: list[tuple[str, str, Outcome]] = []
    for builder, make_graph in BUILDERS.items():
        for name, make_adapter in _adapters().items():
            graph = make_graph()
            rows.append((builder, name, await _converse(graph, make_adapter(graph))))
    header = (
        f"{'builder':20} {'adapter':11} {'thread msgs':>11}  {'internal text spoken':20}  "
        "spoken (turns joined by |)"
    )
    print(f"\nThree turns per builder graph: {' / '.join(QUESTIONS)}\n")
    print(header)
    print("-" * len(header))
    for builder, name, outcome in rows:
        said = outcome.error or " | ".join(outcome.spoken)
        leaked = "YES" if outcome.leaked else "no"
        print(
            f"{builder:20} {name:11} {outcome.thread_messages:11d}  {leaked:20}  {_clip(said, 90)}"
        )
    ours = {b: o for b, n, o in rows if n == "GraphLLM"}
    print(
        "\nGraphLLM never speaks internal text: "
        f"{'PASS' if not any(o.leaked for o in ours.values()) else 'FAIL'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_run())


if __name__ == "__main__":
    main()
