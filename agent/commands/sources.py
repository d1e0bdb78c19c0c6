"""Which document passages an answer was built from, read from the turn's tool results.

After the agent answers, the thread's latest turn (everything after the last human message)
holds the ToolMessages of that turn. Knowledge tools attach JSON artifacts: `hits`
(search_documents), `sources` (answer_from_documents) or `documents` (find_similar_documents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.protocol import PregelProtocol

__all__ = ["answer_sources", "sources_from_messages"]

_ARTIFACT_LISTS = ("hits", "sources", "documents")
_PREVIEW_CHARS = 160
MAX_SOURCES = 10


def _preview(hit: Mapping[str, Any]) -> str:
    preview = hit.get("preview")
    if isinstance(preview, str) and preview:
        return preview
    flat = " ".join(str(hit.get("text", "")).split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def _number(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _source(hit: Mapping[str, Any], tool: str) -> dict[str, Any] | None:
    source = hit.get("source")
    if not isinstance(source, str) or not source:
        return None
    chunk = hit.get("chunk")
    return {
        "source": source,
        "title": str(hit.get("title") or ""),
        "chunk": chunk if isinstance(chunk, int) and not isinstance(chunk, bool) else None,
        "score": round(_number(hit.get("score"), 0.0), 4),
        "preview": _preview(hit),
        "tool": tool,
    }


def sources_from_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Sources cited by the tool results of the last turn, best score first, deduplicated."""
    start = 0
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            start = index + 1
            break
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for message in messages[start:]:
        if not isinstance(message, ToolMessage) or not isinstance(message.artifact, Mapping):
            continue
        for key in _ARTIFACT_LISTS:
            items = message.artifact.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                source = _source(item, message.name or "tool")
                if source is None:
                    continue
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
