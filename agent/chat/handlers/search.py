"""`/search <query>`: the top document passages for a query, by the document-search tool."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolMessage
from pydantic import BaseModel, ConfigDict, Field

from agent.chat.pipeline import (
    Access,
    CommandContext,
    CommandError,
    CommandResult,
    CommandSpec,
    free_text,
)
from agent.chat.protocol import ErrorCode, Wire
from tools.artifacts import ToolRole, tools_with_role

__all__ = ["SearchReply", "call_tool", "clip", "command"]

MAX_TEXT_CHARS = 2000
_SHOWN_QUERY_CHARS = 80


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    property_id: str | None = Field(default=None, min_length=1, max_length=128)


class SearchResult(Wire):
    source: str
    title: str
    section: str
    chunk: int
    score: float
    preview: str


class SearchReply(Wire):
    query: str
    property_id: str | None
    min_score: float | None
    results: list[SearchResult]


async def call_tool(
    ctx: CommandContext, role: ToolRole, args: dict[str, Any], *, what: str
) -> dict[str, Any]:
    """Run the tool declaring `role` as the graph would; returns its artifact."""
    found = tools_with_role(ctx.services.tools, role)
    if not found:
        raise CommandError(
            ErrorCode.UNAVAILABLE, f"{what} is not available: no document store is configured"
        )
    tool = found[0]
    call = {
        "type": "tool_call",
        "id": f"cmd-{uuid.uuid4().hex[:12]}",
        "name": tool.name,
        "args": args,
    }
    result = await tool.ainvoke(call)
    if isinstance(result, ToolMessage):
        artifact = result.artifact if isinstance(result.artifact, dict) else {}
        text = result.text if isinstance(result.content, list) else str(result.content)
    else:
        artifact, text = {}, str(result)
    if artifact.get("ok") is False:
        raise CommandError(ErrorCode.UNAVAILABLE, text)
    return artifact


def clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _result(hit: Mapping[str, Any]) -> SearchResult:
    return SearchResult(
        source=str(hit.get("source", "")),
        title=str(hit.get("title", "")),
        section=str(hit.get("section", "")),
        chunk=int(hit.get("chunk", 0) or 0),
        score=float(hit.get("score", 0.0) or 0.0),
        preview=str(hit.get("preview") or clip(str(hit.get("text", "")), 160)),
    )


async def _search(ctx: CommandContext, args: SearchArgs) -> CommandResult:
    facts = await ctx.services.conversation.facts()
    property_id = args.property_id or facts.get("property_id")
    artifact = await call_tool(
        ctx,
        ToolRole.DOCUMENT_SEARCH,
        {"query": args.query, "property_id": property_id},
        what="document search",
    )
    results = [_result(hit) for hit in artifact.get("hits", []) if isinstance(hit, Mapping)]
    data = SearchReply(
        query=args.query,
        property_id=property_id,
        min_score=artifact.get("min_score"),
        results=results,
    )
    shown = clip(args.query, _SHOWN_QUERY_CHARS)
    if not results:
        return CommandResult(data, f"Nothing relevant found for “{shown}”.")
    lines = [f"{len(results)} result(s) for “{shown}”:"]
    for number, hit in enumerate(results, start=1):
        label = f"{hit.title or hit.source}" + (f" — {hit.section}" if hit.section else "")
        lines.append(f"{number}. {label} (score {hit.score:.2f}; {hit.source} #{hit.chunk})")
        lines.append(f"   {hit.preview}")
    return CommandResult(data, "\n".join(lines))


command = CommandSpec(
    name="search",
    summary="top documents for a query, with sources and scores",
    usage="/search <query>",
    access=Access.CALLER,
    args_model=SearchArgs,
    reply_model=SearchReply,
    handler=_search,
    from_text=free_text("query"),
)
