"""The worker's graphs for a LangGraph server: `langgraph dev`, LangGraph Studio, Platform.

`langgraph.json` at the repository root points here. Each graph gets the same tools the
worker binds (document search, the PMS, the document-QA workflow) and the same chat
model; with no keys the assistant's deterministic fallback answers, so Studio works
offline. The server brings its own checkpointer, so none is compiled in.

This module is the LangGraph server's edge: it reads the worker's settings once, on
import, as `python -m agent` does at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agent.brain import build_chat_model
from agent.settings import WorkerSettings, build_graph
from tools.documents import DocumentStore, build_document_store
from tools.embeddings import build_embedder
from tools.embeddings.factory import REDIS_TIMEOUT_S
from tools.pms import (
    PMS,
    GuestDesk,
    build_pms,
    build_verification_store,
    build_verification_throttle,
    throttle_policy,
)
from workflows.document_qa import build_document_qa_graph
from workflows.gap_nights import build_gap_nights_graph
from workflows.upsell import build_upsell_graph

__all__ = ["ServedParts", "assistant", "build_parts", "document_qa", "gap_nights", "upsell"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedParts:
    """What the served graphs share: one PMS, one verification desk, one document store."""

    chat_model: BaseChatModel | None
    documents: DocumentStore
    pms: PMS
    desk: GuestDesk
    tools: list[BaseTool]


def build_parts(settings: WorkerSettings) -> ServedParts:
    """The tools and backends, built as the worker builds them. With REDIS_URL, verification,
    its throttle and the embedding cache are shared with the workers; else kept in process."""
    # Imported here: brain.py pulls in the LiveKit session layer, which a server never uses.
    from agent.brain import assistant_tools, chat_model_config

    redis = (
        aioredis.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )
        if settings.redis_url
        else None
    )
    chat_model = build_chat_model(chat_model_config(settings))
    store_config = settings.document_store_config()
    embedder = build_embedder(store_config.embeddings, redis=redis)
    # Read-only, as in the worker: only `python -m tools.ingest` writes the embedded store.
    documents = build_document_store(store_config, redis=redis, embedder=embedder, read_only=True)
    pms_config = settings.pms_config()
    pms = build_pms(pms_config, redis=redis)
    desk = GuestDesk(
        pms,
        store=build_verification_store(redis),
        throttle=build_verification_throttle(redis, throttle_policy(pms_config)),
    )
    tools = assistant_tools(documents, pms, desk, chat_model)
    return ServedParts(chat_model, documents, pms, desk, tools)


_settings = WorkerSettings()
_parts = build_parts(_settings)
logger.info(
    "serving graphs with %d tools; chat model: %s",
    len(_parts.tools),
    "configured" if _parts.chat_model else "none (fallback responder)",
)

# The same seam as the worker's (AGENT_GRAPH); the server brings its own checkpointer.
assistant: Any = build_graph(_settings.agent_graph, _parts.chat_model, _parts.tools, None)
document_qa: Any = build_document_qa_graph(_parts.documents, model=_parts.chat_model)
upsell: Any = build_upsell_graph(_parts.pms, desk=_parts.desk)
gap_nights: Any = build_gap_nights_graph(_parts.pms, desk=_parts.desk)
