"""`/embed <text>`: embedding model, dimensions and nearest documents, by the embedding tool."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agent.chat.handlers.search import MAX_TEXT_CHARS, call_tool
from agent.chat.pipeline import Access, CommandContext, CommandResult, CommandSpec, free_text
from agent.chat.protocol import Wire
from tools.artifacts import ToolRole

__all__ = ["EmbedReply", "command"]


class EmbedArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class NearestDocument(Wire):
    source: str
    title: str
    score: float
    preview: str


class EmbedReply(Wire):
    model: str
    dimensions: int
    norm: float | None
    vector_preview: list[float]
    nearest: list[NearestDocument]


async def _embed(ctx: CommandContext, args: EmbedArgs) -> CommandResult:
    artifact = await call_tool(
        ctx, ToolRole.EMBEDDING_ANALYSIS, {"text": args.text}, what="embedding analysis"
    )
    nearest = [
        NearestDocument(
            source=str(doc.get("source", "")),
            title=str(doc.get("title", "")),
            score=float(doc.get("score", 0.0) or 0.0),
            preview=str(doc.get("preview", "")),
        )
        for doc in artifact.get("nearest", [])
        if isinstance(doc, Mapping)
    ]
    data = EmbedReply(
        model=str(artifact.get("model", "")),
        dimensions=int(artifact.get("dimensions", 0) or 0),
        norm=artifact.get("norm"),
        vector_preview=list(artifact.get("vector_preview", [])),
        nearest=nearest,
    )
    lines = [f"Model {data.model}, {data.dimensions} dimensions."]
    if nearest:
        lines.append("Nearest documents:")
        lines.extend(f"- {doc.title or doc.source} ({doc.score:.2f})" for doc in nearest)
    else:
        lines.append("No documents to compare with yet.")
    return CommandResult(data, "\n".join(lines))


command = CommandSpec(
    name="embed",
    summary="embedding model, dimensions and the nearest documents for a text",
    usage="/embed <text>",
    access=Access.CALLER,
    args_model=EmbedArgs,
    reply_model=EmbedReply,
    handler=_embed,
    from_text=free_text("text"),
)
