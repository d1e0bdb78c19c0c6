"""One worker process taking `--turns` turns on a shared conversation (see
test_two_workers_one_conversation.py). Prints nothing; the parent reads the thread."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage
from langgraph.graph import START, MessagesState, StateGraph
from livekit.agents import llm

from agent.brain import fail_fast
from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import ScriptedChatModel
from workflows.checkpoint import open_checkpointer, turn_lock_for

THREAD = "shared-conversation"


def answer(prompt: list[BaseMessage]) -> str:
    return f"answer to {prompt[-1].content}"


def build_graph(checkpointer: Any) -> Any:
    # the model takes a while, so the two workers' turns overlap
    model = ScriptedChatModel(default=answer, first_token_delay=0.05)

    async def respond(state: MessagesState) -> dict[str, list[AnyMessage]]:
        return {"messages": [await model.ainvoke(state["messages"][-2:])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", respond)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=checkpointer)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--turns", type=int, required=True)
    parser.add_argument("--redis-url")
    parser.add_argument("--sqlite", type=Path)
    parser.add_argument("--no-lock", action="store_true")
    args = parser.parse_args()
    async with open_checkpointer(redis_url=args.redis_url, sqlite_path=args.sqlite) as saver:
        lock = None if args.no_lock else turn_lock_for(saver, sqlite_path=args.sqlite)
        graph_llm = GraphLLM(
            build_graph(saver),
            thread_id=THREAD,
            turn_lock=fail_fast(lock) if lock is not None else None,
        )
        chat_ctx = llm.ChatContext()
        for turn in range(args.turns):
            chat_ctx.add_message(role="user", content=f"{args.name}-{turn}")
            stream = graph_llm.chat(chat_ctx=chat_ctx)
            text = "".join(
                [chunk.delta.content or "" async for chunk in stream if chunk.delta is not None]
            )
            chat_ctx.add_message(role="assistant", content=text)
        await graph_llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
