"""The fallback responder reports which document passages its answer quotes.

Real knowledge tools on in-memory Qdrant with the hashing embedder; the graph has no chat
model, so every answer comes from the fallback node. Threads are stored in SQLite on disk
and read back through a freshly opened checkpointer, so what is asserted survived
serialization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.runnables import RunnableConfig

from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
from tools.embeddings import HashingEmbedder
from tools.knowledge import knowledge_tools
from workflows.assistant import build_assistant_graph
from workflows.checkpoint import open_checkpointer
from workflows.fallback import SOURCES_METADATA_KEY, fallback_sources
from workflows.history import repair_tool_pairs

DOCS = {
    "properties/casa-del-sol/wifi.md": (
        "# Wi-Fi\n\nThe Wi-Fi network is CasaGuest and the Wi-Fi password is sunflower42. "
        "The router is in the hallway cupboard."
    ),
    "properties/alpine-chalet/wifi.md": (
        "# Wi-Fi\n\nThe Wi-Fi network is ChaletNet and the Wi-Fi password is edelweiss7. "
        "The router is behind the television."
    ),
    "policies/parking.md": (
        "# Parking\n\nGuests park for free in the courtyard. The gate code is 4711."
    ),
}


@pytest.fixture
async def store(tmp_path: Path) -> DocumentStore:
    root = tmp_path / "knowledge"
    for name, text in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    documents = DocumentStore(
        QdrantGateway(QdrantLocation()),
        HashingEmbedder(),
        min_score=HashingEmbedder.suggested_min_score,
    )
    await documents.ingest([root])
    return documents


async def _ask(
    store: DocumentStore,
    database: Path,
    question: str,
    *,
    context: dict[str, Any] | None = None,
    thread_id: str = "guest-1",
) -> list[AnyMessage]:
    """One caller turn through a no-model graph; the thread as a new checkpointer reads it."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    turn: dict[str, Any] = {"messages": [HumanMessage(question)]}
    if context is not None:
        turn["context"] = context
    async with open_checkpointer(redis_url=None, sqlite_path=database) as saver:
        graph = build_assistant_graph(model=None, tools=knowledge_tools(store), checkpointer=saver)
        await graph.ainvoke(turn, config)
    async with open_checkpointer(redis_url=None, sqlite_path=database) as saver:
        graph = build_assistant_graph(model=None, tools=knowledge_tools(store), checkpointer=saver)
        snapshot = await graph.aget_state(config)
    return list(snapshot.values["messages"])


def _answer(thread: list[AnyMessage]) -> AIMessage:
    answer = thread[-1]
    assert isinstance(answer, AIMessage)
    return answer


async def test_a_fallback_answer_carries_the_passages_it_quoted(
    store: DocumentStore, tmp_path: Path
) -> None:
    thread = await _ask(
        store,
        tmp_path / "threads.sqlite",
        "What is the Wi-Fi password?",
        context={"property_id": "casa-del-sol"},
    )
    answer = _answer(thread)
    assert "sunflower42" in answer.text
    sources = fallback_sources(answer)
    assert sources, answer.response_metadata
    best = sources[0]
    assert best["source"].endswith("casa-del-sol/wifi.md")
    assert best["title"] == "Wi-Fi"
    assert best["chunk"] == 0
    assert best["tool"] == "search_documents"
    assert "sunflower42" in best["preview"]
    assert set(best) == {"source", "title", "chunk", "score", "preview", "tool"}
    # The cited scores are the store's own, for the same query and property.
    found = await store.search("What is the Wi-Fi password?", property_id="casa-del-sol")
    expected = {(h.source, h.chunk): round(h.score, 4) for h in found.hits}
    assert {(s["source"], s["chunk"]): s["score"] for s in sources} == expected
    # Another property's documents are neither searched nor cited.
    assert not any("alpine-chalet" in s["source"] for s in sources)


async def test_the_cited_sources_never_reach_a_chat_model_and_leave_the_thread_valid(
    store: DocumentStore, tmp_path: Path
) -> None:
    thread = await _ask(store, tmp_path / "threads.sqlite", "Where can I park my car?")
    answer = _answer(thread)
    assert fallback_sources(answer)[0]["source"].endswith("parking.md")
    # No tool messages are recorded, so there is nothing to pair or repair.
    assert not any(isinstance(m, ToolMessage) for m in thread)
    assert repair_tool_pairs(thread) == thread
    # What a chat model would be sent for this message is only the spoken text.
    wire = convert_to_openai_messages([answer])
    assert wire == [{"role": "assistant", "content": answer.text}]
    assert "parking.md" not in str(wire)


async def test_answers_without_document_facts_cite_nothing(
    store: DocumentStore, tmp_path: Path
) -> None:
    database = tmp_path / "threads.sqlite"
    greeting = _answer(await _ask(store, database, "Hello there!"))
    assert "unavailable" in greeting.text
    assert SOURCES_METADATA_KEY not in greeting.response_metadata
    nothing = _answer(await _ask(store, database, "zyxw qqqv plorth?", thread_id="guest-2"))
    assert "unavailable" in nothing.text and "sunflower42" not in nothing.text
    assert fallback_sources(nothing) == []
    assert SOURCES_METADATA_KEY not in nothing.response_metadata


def test_only_the_fallback_answers_sources_are_read_back() -> None:
    stored = [
        {"source": "/docs/wifi.md", "title": "Wi-Fi", "chunk": 0, "score": 0.51234, "tool": "t"},
        {"title": "no source"},
        "not a mapping",
    ]
    fallback = AIMessage(
        "…", response_metadata={"model_name": "fallback", SOURCES_METADATA_KEY: stored}
    )
    assert fallback_sources(fallback) == [
        {
            "source": "/docs/wifi.md",
            "title": "Wi-Fi",
            "chunk": 0,
            "score": 0.5123,
            "preview": "",
            "tool": "t",
        }
    ]
    # A chat model's reply that happens to have such metadata is not the fallback's.
    other = AIMessage("…", response_metadata={"model_name": "gpt", SOURCES_METADATA_KEY: stored})
    assert fallback_sources(other) == []


async def test_fallback_speaks_the_passage_not_the_search_tools_model_prompt(
    store: DocumentStore, tmp_path: Path
) -> None:
    messages = await _ask(
        store,
        tmp_path / "t.sqlite3",
        "Where do guests park?",
        context={"property_id": "casa-del-sol"},
    )
    spoken = str(messages[-1].content)
    assert "Guests park for free in the courtyard." in spoken
    assert "Relevant passages" not in spoken and "[1]" not in spoken
    # the answer is the passage's sentence, not its Markdown heading
    assert "#" not in spoken
