"""LangChain tools over the document store: search, similar documents, embedding analysis.

Each returns a short text for the model (speakable, with source labels) and a JSON-able
artifact. Failures never raise into the graph: the model gets a sentence it can say, and the
cause is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from tools.artifacts import ToolRole, artifact_tool
from tools.documents import (
    DocumentStore,
    DocumentStoreError,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
    SearchHit,
)

logger = logging.getLogger(__name__)

UNREACHABLE = "I can't reach the document store right now."
MISMATCH = (
    "The document index was built with a different embedding model, so I can't search it "
    "until it is rebuilt."
)
FAILED = "Searching the documents failed just now."
NOTHING_FOUND = "I found nothing relevant in the documents about that."
PASSAGE_CHARS = 420
MAX_TEXT_CHARS = 4000

ToolResult = tuple[str, dict[str, Any]]


class SearchDocumentsArgs(BaseModel):
    query: str = Field(description="What the caller wants to know, as a short question.")
    property_id: str | None = Field(
        default=None,
        description="The property the caller is staying at (e.g. 'casa-del-sol'), when known; "
        "general policies are always included.",
    )


class TextArgs(BaseModel):
    text: str = Field(description="The text to compare against the documents.")


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _failure(tool: str, exc: Exception) -> ToolResult:
    if isinstance(exc, EmbeddingModelMismatch):
        sentence = MISMATCH
    elif isinstance(exc, DocumentStoreUnavailable):
        sentence = UNREACHABLE
    else:
        sentence = FAILED
    logger.error("%s failed: %s", tool, exc, exc_info=exc.__cause__ is not None)
    return sentence, {"ok": False, "error": str(exc)}


async def _guarded(tool: str, run: Callable[[], Awaitable[ToolResult]]) -> ToolResult:
    try:
        return await run()
    except DocumentStoreError as exc:
        return _failure(tool, exc)


def format_passages(hits: list[SearchHit]) -> str:
    """Numbered passages with their source labels, for the model to answer from."""
    lines = ["Relevant passages from the documents, best first (cite by title):"]
    budget = MAX_TEXT_CHARS
    for number, hit in enumerate(hits, start=1):
        line = f"[{number}] {hit.label}: {_clip(hit.text, PASSAGE_CHARS)}"
        if len(line) > budget:
            break
        lines.append(line)
        budget -= len(line)
    return "\n".join(lines)


def _documents(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {"source": h.source, "title": h.title, "score": h.score, "preview": h.preview} for h in hits
    ]


def _similarity_sentence(hits: list[SearchHit]) -> str:
    if not hits:
        return "There are no documents to compare with yet."
    parts = [f"{h.title} (similarity {h.score:.2f})" for h in hits]
    return "The closest documents are: " + "; ".join(parts) + "."


def knowledge_tools(store: DocumentStore, *, k: int = 5) -> list[BaseTool]:
    """`search_documents`, `find_similar_documents` and `embed_text` bound to `store`."""

    async def search_documents(query: str, property_id: str | None = None) -> ToolResult:
        if not query.strip():
            return "Tell me what to look for in the documents.", {
                "ok": False,
                "hits": [],
                "sources": [],
            }

        async def run() -> ToolResult:
            result = await store.search(query, k=k, property_id=property_id)
            hits = [h.to_dict() for h in result.hits]
            artifact = {
                "ok": True,
                "query": query,
                "property_id": property_id,
                "min_score": result.min_score,
                "hits": hits,
                # the cited passages, in the contract's shape (tools/artifacts.py)
                "sources": hits,
            }
            if not result.found:
                return NOTHING_FOUND, artifact
            return format_passages(result.hits), artifact

        return await _guarded("search_documents", run)

    async def find_similar_documents(text: str) -> ToolResult:
        if not text.strip():
            return "Give me some text to compare.", {"ok": False, "documents": [], "sources": []}

        async def run() -> ToolResult:
            vector = await store.embed_query(text)
            hits = await store.nearest_documents(vector, k=k)
            documents = _documents(hits)
            artifact = {"ok": True, "documents": documents, "sources": documents}
            return _similarity_sentence(hits), artifact

        return await _guarded("find_similar_documents", run)

    async def embed_text(text: str) -> ToolResult:
        if not text.strip():
            return "Give me some text to embed.", {"ok": False}

        async def run() -> ToolResult:
            vector = await store.embed_query(text)
            hits = await store.nearest_documents(vector, k=3)
            model = store.embedder.model_name
            norm = math.sqrt(sum(x * x for x in vector))
            sentence = (
                f"That text becomes a {len(vector)}-dimension vector with the {model} model. "
                + _similarity_sentence(hits)
            )
            return sentence, {
                "ok": True,
                "model": model,
                "dimensions": len(vector),
                "norm": round(norm, 4),
                "vector_preview": [round(x, 4) for x in vector[:8]],
                "nearest": _documents(hits),
            }

        return await _guarded("embed_text", run)

    return [
        artifact_tool(
            search_documents,
            metadata={"role": ToolRole.DOCUMENT_SEARCH},
            description=(
                "Search the house manuals, FAQs and policies for facts to answer the caller: "
                "Wi-Fi, parking, check-in and check-out, pets, quiet hours, appliances, local "
                "tips, cancellation, payment, deposits, accessibility. Pass the property_id "
                "when you know where the caller is staying. Answer only from the passages "
                "returned and mention which document the answer comes from."
            ),
            args_schema=SearchDocumentsArgs,
        ),
        artifact_tool(
            find_similar_documents,
            metadata={"role": ToolRole.SIMILAR_DOCUMENTS},
            description=(
                "List the documents most similar to a piece of text, with similarity scores. "
                "Use when the caller asks which documents cover a topic."
            ),
            args_schema=TextArgs,
        ),
        artifact_tool(
            embed_text,
            metadata={"role": ToolRole.EMBEDDING_ANALYSIS},
            description=(
                "Analyse a text with the embedding model: which model and how many dimensions "
                "it uses, and the nearest documents. Use only when asked about embeddings."
            ),
            args_schema=TextArgs,
        ),
    ]
