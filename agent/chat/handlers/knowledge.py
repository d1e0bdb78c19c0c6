"""`/search <query>` and `/embed <text>`, backed by the brain's knowledge tools."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from agent.chat.access import Access
from agent.chat.handlers.text_args import free_text
from agent.chat.protocol import ErrorCode
from agent.chat.registry import CommandContext, CommandError, CommandResult, CommandSpec

__all__ = ["call_tool", "embed_command", "search_command"]

MAX_TEXT_CHARS = 2000
_SHOWN_QUERY_CHARS = 80


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    property_id: str | None = Field(default=None, min_length=1, max_length=128)


class EmbedArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


async def call_tool(
    tools: Mapping[str, BaseTool], name: str, args: dict[str, Any], *, what: str
) -> tuple[str, dict[str, Any]]:
    """Run a LangChain tool as the graph would; returns (its text, its artifact)."""
    tool = tools.get(name)
    if tool is None:
        raise CommandError(
            ErrorCode.UNAVAILABLE, f"{what} is not available: no document store is configured"
        )
    call = {"type": "tool_call", "id": f"cmd-{uuid.uuid4().hex[:12]}", "name": name, "args": args}
    result = await tool.ainvoke(call)
    if isinstance(result, ToolMessage):
        artifact = result.artifact if isinstance(result.artifact, dict) else {}
        text = result.text if isinstance(result.content, list) else str(result.content)
    else:
        artifact, text = {}, str(result)
    if artifact.get("ok") is False:
        raise CommandError(ErrorCode.UNAVAILABLE, text)
    return text, artifact


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _source(hit: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": str(hit.get("source", "")),
        "title": str(hit.get("title", "")),
        "section": str(hit.get("section", "")),
        "chunk": int(hit.get("chunk", 0) or 0),
        "score": float(hit.get("score", 0.0) or 0.0),
        "preview": str(hit.get("preview") or _clip(str(hit.get("text", "")), 160)),
    }


def _label(hit: Mapping[str, Any]) -> str:
    title = hit["title"] or hit["source"]
    return f"{title} — {hit['section']}" if hit["section"] else title


async def _search(ctx: CommandContext, args: SearchArgs) -> CommandResult:
    facts = await ctx.services.conversation.facts()
    property_id = args.property_id or facts.get("property_id")
    _, artifact = await call_tool(
        ctx.services.tools,
        "search_documents",
        {"query": args.query, "property_id": property_id},
        what="document search",
    )
    results = [_source(hit) for hit in artifact.get("hits", []) if isinstance(hit, Mapping)]
    data = {
        "query": args.query,
        "property_id": property_id,
        "min_score": artifact.get("min_score"),
        "results": results,
    }
    shown = _clip(args.query, _SHOWN_QUERY_CHARS)
    if not results:
        return CommandResult(data=data, text=f"Nothing relevant found for “{shown}”.")
    lines = [f"{len(results)} result(s) for “{shown}”:"]
    for number, hit in enumerate(results, start=1):
        lines.append(
            f"{number}. {_label(hit)} (score {hit['score']:.2f}; {hit['source']} #{hit['chunk']})"
        )
        lines.append(f"   {hit['preview']}")
    return CommandResult(data=data, text="\n".join(lines))


async def _embed(ctx: CommandContext, args: EmbedArgs) -> CommandResult:
    _, artifact = await call_tool(
        ctx.services.tools, "embed_text", {"text": args.text}, what="embedding analysis"
    )
    nearest = [
        {
            "source": str(doc.get("source", "")),
            "title": str(doc.get("title", "")),
            "score": float(doc.get("score", 0.0) or 0.0),
            "preview": str(doc.get("preview", "")),
        }
        for doc in artifact.get("nearest", [])
        if isinstance(doc, Mapping)
    ]
    data = {
        "model": str(artifact.get("model", "")),
        "dimensions": int(artifact.get("dimensions", 0) or 0),
        "norm": artifact.get("norm"),
        "vector_preview": list(artifact.get("vector_preview", [])),
        "nearest": nearest,
    }
    lines = [f"Model {data['model']}, {data['dimensions']} dimensions."]
    if nearest:
        lines.append("Nearest documents:")
        lines.extend(f"- {doc['title'] or doc['source']} ({doc['score']:.2f})" for doc in nearest)
    else:
        lines.append("No documents to compare with yet.")
    return CommandResult(data=data, text="\n".join(lines))


def search_command() -> CommandSpec[SearchArgs]:
    return CommandSpec(
        name="search",
        summary="top documents for a query, with sources and scores",
        usage="/search <query>",
        access=Access.CALLER,
        args_model=SearchArgs,
        handler=_search,
        from_text=free_text("query"),
    )


def embed_command() -> CommandSpec[EmbedArgs]:
    return CommandSpec(
        name="embed",
        summary="embedding model, dimensions and the nearest documents for a text",
        usage="/embed <text>",
        access=Access.CALLER,
        args_model=EmbedArgs,
        handler=_embed,
        from_text=free_text("text"),
    )
