"""The document_qa graph: grounded answers with sources and confidence, retries, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
from tools.embeddings import EmbeddingsUnavailable, HashingEmbedder
from workflows.document_qa import (
    NO_QUESTION,
    NOTHING_FOUND,
    SPEAKING_NODES,
    UNREACHABLE,
    DocumentQAConfig,
    build_document_qa_graph,
    confidence_from_scores,
    confidence_label,
    document_qa_tool,
    sentences,
)

KNOWLEDGE = Path(__file__).resolve().parents[2] / "examples" / "knowledge"
FAST_RETRY = DocumentQAConfig(backoff_s=0.001)


class FlakyEmbedder(HashingEmbedder):
    """Fails the first `failures` query embeddings, like a provider having a bad moment."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.query_calls = 0

    async def aembed_query(self, text: str) -> list[float]:
        self.query_calls += 1
        if self.query_calls <= self.failures:
            raise EmbeddingsUnavailable("provider returned HTTP 503")
        return await super().aembed_query(text)


class RecordingChatModel(FakeListChatModel):
    """A scripted chat model that keeps the prompts it was given."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _call(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> str:
        self.prompts.append(list(messages))
        return super()._call(messages, *args, **kwargs)


class BrokenChatModel(FakeListChatModel):
    def _call(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> str:
        raise TimeoutError("model timed out")


async def knowledge_store(embedder: HashingEmbedder | None = None) -> DocumentStore:
    store = DocumentStore(
        QdrantGateway(QdrantLocation()), embedder or HashingEmbedder(), min_score=0.08
    )
    await store.ingest([KNOWLEDGE])
    return store


async def test_answers_from_the_documents_with_source_and_confidence() -> None:
    store = await knowledge_store()
    graph = build_document_qa_graph(store)
    state = await graph.ainvoke(
        {
            "messages": [HumanMessage("When is the pool heated?")],
            "context": {"property_id": "casa-del-sol"},
        }
    )
    reply = state["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert "April to October" in reply.content
    assert reply.text.endswith("(Source: Casa del Sol — private pool, garden and barbecue.)")
    assert state["sources"][0]["source"].endswith("casa-del-sol/pool-and-garden.md")
    assert state["confidence_label"] in ("medium", "high") and state["confidence"] > 0.34
    await store.aclose()


async def test_a_question_key_and_property_work_without_messages() -> None:
    store = await knowledge_store()
    graph = build_document_qa_graph(store)
    state = await graph.ainvoke(
        {"question": "how much is the pet fee for dogs?", "property_id": "alpine-chalet"}
    )
    assert "CHF 25 per dog per night" in state["answer"]
    assert state["sources"][0]["source"].endswith("alpine-chalet/pets.md")
    assert all(
        "alpine-chalet/" in s["source"] or s["source"].startswith("policies/")
        for s in state["sources"]
    )
    await store.aclose()


async def test_nothing_relevant_is_said_plainly() -> None:
    store = await knowledge_store()
    state = await build_document_qa_graph(store).ainvoke(
        {"question": "quantum chromodynamics lecture notes"}
    )
    assert state["answer"] == NOTHING_FOUND
    assert (state["confidence"], state["confidence_label"], state["sources"]) == (0.0, "none", [])
    await store.aclose()


async def test_an_empty_question_asks_what_to_look_up() -> None:
    store = await knowledge_store()
    state = await build_document_qa_graph(store).ainvoke({"messages": [HumanMessage("  ")]})
    assert state["messages"][-1].content == NO_QUESTION
    await store.aclose()


async def test_embedding_is_retried_until_it_works() -> None:
    embedder = FlakyEmbedder(failures=2)
    store = await knowledge_store(embedder)
    graph = build_document_qa_graph(store, config=FAST_RETRY)
    state = await graph.ainvoke(
        {"question": "where is the fuse box?", "property_id": "casa-del-sol"}
    )
    assert "utility room" in state["answer"]
    assert embedder.query_calls == 3
    await store.aclose()


async def test_three_failed_embeddings_give_a_speakable_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    embedder = FlakyEmbedder(failures=10)
    store = await knowledge_store(embedder)
    graph = build_document_qa_graph(store, config=FAST_RETRY)
    state = await graph.ainvoke({"question": "where is the fuse box?"})
    assert state["messages"][-1].content == UNREACHABLE
    assert embedder.query_calls == 3
    assert "embedding failed 3 times" in caplog.text and "HTTP 503" in caplog.text
    await store.aclose()


async def test_a_chat_model_writes_the_answer_from_the_sources() -> None:
    store = await knowledge_store()
    model = RecordingChatModel(responses=["The Wi-Fi password is matterhorn88."])
    graph = build_document_qa_graph(store, model=model)
    state = await graph.ainvoke(
        {"question": "what's the wifi password?", "property_id": "alpine-chalet"}
    )
    assert state["answer"].startswith("The Wi-Fi password is matterhorn88.")
    assert "(Source: Alpine Chalet Edelweiss — Wi-Fi, TV and music.)" in state["answer"]
    system, human = model.prompts[-1]
    assert "only the numbered sources" in system.content
    assert "Password: matterhorn88" in human.content and "[1]" in human.content
    await store.aclose()


async def test_a_failing_chat_model_falls_back_to_an_extractive_answer() -> None:
    store = await knowledge_store()
    graph = build_document_qa_graph(store, model=BrokenChatModel(responses=["unused"]))
    state = await graph.ainvoke(
        {"question": "what's the wifi password?", "property_id": "casa-del-sol"}
    )
    assert "paella-sunset" in state["answer"]
    await store.aclose()


async def test_runs_as_a_checkpointed_workflow_and_only_respond_speaks() -> None:
    store = await knowledge_store()
    graph = build_document_qa_graph(store, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "call-42"}}
    first = await graph.ainvoke(
        {
            "messages": [HumanMessage("how do I light the fireplace?")],
            "context": {"property_id": "alpine-chalet"},
        },
        config,
    )
    assert "firelighters" in first["messages"][-1].content
    state = await graph.ainvoke({"messages": [HumanMessage("and the wifi password?")]}, config)
    assert len(state["messages"]) == 4
    assert "matterhorn88" in state["messages"][-1].content  # same property, new question
    assert SPEAKING_NODES == ("respond",)
    await store.aclose()


async def test_as_a_tool_it_returns_the_answer_with_sources() -> None:
    store = await knowledge_store()
    tool = document_qa_tool(store, config=FAST_RETRY)
    message = await tool.ainvoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "answer_from_documents",
            "args": {"question": "Can I cancel for free two weeks before?"},
        }
    )
    assert "14 days" in message.content
    assert message.artifact["sources"][0]["source"].endswith("cancellation-policy.md")
    assert message.artifact["confidence_label"] in ("low", "medium", "high")
    await store.aclose()


def test_confidence_grows_with_the_scores() -> None:
    assert confidence_from_scores([], 0.1, 0.25) == 0.0
    weak = confidence_from_scores([0.12, 0.1], 0.1, 0.25)
    strong = confidence_from_scores([0.4, 0.35, 0.3], 0.1, 0.25)
    assert 0 < weak < strong == 1.0
    assert (confidence_label(weak), confidence_label(strong)) == ("low", "high")
    assert confidence_label(0.5) == "medium"


def test_sentences_unwrap_lines_and_keep_items_apart() -> None:
    text = (
        "The pool is cleaned twice a week by our\ntechnician. Please don't adjust it.\n"
        "- **No glass** at the pool\n- No diving\n"
        "| Property | Deposit |\n|---|---|\n| Loft | USD 300 |"
    )
    assert sentences(text) == [
        "The pool is cleaned twice a week by our technician.",
        "Please don't adjust it.",
        "No glass at the pool",
        "No diving",
        "Property: Deposit",
        "Loft: USD 300",
    ]
