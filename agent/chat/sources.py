"""Which document passages an answer was built from, read from the thread's latest turn.

After the agent answers, the latest turn (everything after the last human message) holds
what the answer was built from: the ToolMessages of the model's tool calls, whose knowledge
artifacts list `hits` (search_documents), `sources` (answer_from_documents) or `documents`
(find_similar_documents); or, when the fallback responder answered without a model, its
AIMessage, which carries the passages it looked up in `response_metadata["sources"]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.protocol import PregelProtocol

from workflows.fallback import cited_sources, fallback_sources

__all__ = ["MAX_SOURCES", "answer_sources", "sources_from_messages"]

MAX_SOURCES = 10


def _cited(message: BaseMessage) -> list[dict[str, Any]]:
    if isinstance(message, ToolMessage):
        return cited_sources(message)
    if isinstance(message, AIMessage):
        return fallback_sources(message)
    return []


def sources_from_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Sources cited in the last turn, best score first, one per (source, chunk)."""
    start = 0
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            start = index + 1
            break
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for message in messages[start:]:
        for source in _cited(message):
            ident = (source["source"], source["chunk"])
            if ident not in found or found[ident]["score"] < source["score"]:
                found[ident] = source
    ranked = sorted(found.values(), key=lambda s: -s["score"])
    return ranked[:MAX_SOURCES]


async def answer_sources(
    graph: PregelProtocol[Any, Any, Any, Any], thread_id: str, *, timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """Sources of the thread's latest turn (empty when it used none)."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    snapshot = await asyncio.wait_for(graph.aget_state(config), timeout_s)
    values = snapshot.values if isinstance(snapshot.values, Mapping) else {}
    messages = [m for m in values.get("messages", ()) if isinstance(m, BaseMessage)]
    return sources_from_messages(messages)
