"""The LangChain knowledge tools as the assistant graph calls them (ToolCall → ToolMessage)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from knowledge_helpers import KNOWLEDGE_ROOT, closed_port, memory_store
from langchain_core.messages import ToolMessage
from qdrant_client import models as qm

from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
from tools.embeddings import HashingEmbedder, OpenAIEmbedder, OpenAIEmbeddingsConfig
from tools.knowledge import MISMATCH, NOTHING_FOUND, UNREACHABLE, knowledge_tools


async def call(tool: Any, **args: Any) -> ToolMessage:
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "call-1", "name": tool.name, "args": args}
    )
    assert isinstance(message, ToolMessage)
    return message


@pytest.fixture
async def kb_store() -> Any:
    store = memory_store()
    await store.ingest([KNOWLEDGE_ROOT])
    yield store
    await store.aclose()


def by_name(store: DocumentStore) -> dict[str, Any]:
    return {tool.name: tool for tool in knowledge_tools(store)}


def test_the_tools_have_the_documented_names_and_arguments() -> None:
    tools = by_name(memory_store())
    assert set(tools) == {"search_documents", "find_similar_documents", "embed_text"}
    search_args = tools["search_documents"].tool_call_schema.model_json_schema()["properties"]
    assert set(search_args) == {"query", "property_id"}
    assert all(t.response_format == "content_and_artifact" for t in tools.values())
    assert all(len(t.description) > 40 for t in tools.values())


async def test_search_documents_answers_with_labelled_passages(kb_store: DocumentStore) -> None:
    message = await call(
        by_name(kb_store)["search_documents"],
        query="what is the wifi password?",
        property_id="alpine-chalet",
    )
    assert "Alpine Chalet Edelweiss — Wi-Fi, TV and music" in message.content
    assert "matterhorn88" in message.content
    assert "sailboat-2024" not in message.content  # another property's password
    hits = message.artifact["hits"]
    assert hits and {"source", "chunk", "score", "text", "title"} <= set(hits[0])
    assert hits[0]["source"].endswith("alpine-chalet/wifi-and-entertainment.txt")
    assert len(message.content) <= 4200


async def test_search_documents_says_when_nothing_is_relevant(kb_store: DocumentStore) -> None:
    message = await call(
        by_name(kb_store)["search_documents"], query="quantum chromodynamics lecture notes"
    )
    assert message.content == NOTHING_FOUND
    assert message.artifact["ok"] is True and message.artifact["hits"] == []


async def test_find_similar_documents_lists_distinct_documents(kb_store: DocumentStore) -> None:
    message = await call(
        by_name(kb_store)["find_similar_documents"],
        text="dogs are welcome, maximum two, pet fee per night",
    )
    documents = message.artifact["documents"]
    assert len(documents) == 5
    assert len({d["source"] for d in documents}) == 5
    assert documents[0]["source"].endswith("alpine-chalet/pets.md")
    assert [d["score"] for d in documents] == sorted((d["score"] for d in documents), reverse=True)
    assert message.text.startswith("The closest documents are: Alpine Chalet Edelweiss")


async def test_embed_text_reports_model_dimensions_and_neighbours(kb_store: DocumentStore) -> None:
    message = await call(by_name(kb_store)["embed_text"], text="sauna and fireplace")
    artifact = message.artifact
    assert artifact["model"] == "hashing-v1-d2048" and artifact["dimensions"] == 2048
    assert artifact["norm"] == pytest.approx(1.0, abs=1e-3)
    assert len(artifact["vector_preview"]) == 8
    assert artifact["nearest"][0]["source"].endswith("sauna-fireplace-and-ski-room.md")
    assert "2048-dimension vector with the hashing-v1-d2048 model" in message.content


async def test_unreachable_qdrant_gives_a_speakable_answer_and_logs_the_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    store = DocumentStore(QdrantGateway(QdrantLocation(url=url), timeout_s=1), HashingEmbedder())
    tools = by_name(store)
    with caplog.at_level(logging.ERROR, logger="tools.knowledge"):
        for name, args in (
            ("search_documents", {"query": "wifi"}),
            ("find_similar_documents", {"text": "wifi"}),
            ("embed_text", {"text": "wifi"}),
        ):
            message = await call(tools[name], **args)
            assert message.content == UNREACHABLE
            assert message.artifact["ok"] is False
    await store.aclose()
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 3
    assert all(url in line and "unreachable" in line for line in logged)


async def test_an_unreachable_embedding_provider_is_just_as_speakable(
    kb_store: DocumentStore, caplog: pytest.LogCaptureFixture
) -> None:
    dead = OpenAIEmbedder(
        OpenAIEmbeddingsConfig(
            model="text-embedding-3-small",
            base_url=f"http://127.0.0.1:{closed_port()}/v1",
            max_retries=0,
        )
    )
    store = DocumentStore(kb_store.gateway, dead, collection="openai-docs")
    # the collection must exist for a search to reach the embedder
    await store.gateway.run(
        "setup",
        lambda c: c.create_collection(
            "openai-docs",
            vectors_config=qm.VectorParams(size=1536, distance=qm.Distance.COSINE),
            metadata={"embedding_model": "text-embedding-3-small", "embedding_dimensions": 1536},
        ),
    )
    with caplog.at_level(logging.ERROR, logger="tools.knowledge"):
        message = await call(by_name(store)["search_documents"], query="wifi")
    assert message.content == UNREACHABLE
    assert "connection failed" in caplog.text
    await dead.aclose()


async def test_a_model_mismatch_is_explained_not_raised(kb_store: DocumentStore) -> None:
    store = DocumentStore(kb_store.gateway, HashingEmbedder(256))
    message = await call(by_name(store)["search_documents"], query="wifi")
    assert message.content == MISMATCH
    assert "hashing-v1-d256" in message.artifact["error"]


async def test_an_empty_query_asks_for_one(tmp_path: Path) -> None:
    message = await call(by_name(memory_store())["search_documents"], query="  ")
    assert message.content == "Tell me what to look for in the documents."
