"""What a caller hears from the fallback responder during a model outage.

The worker's own tools (demo PMS, the sample knowledge base on the embedded store, the
hashing embedder), built as the LangGraph server builds them, and the assistant graph with
no chat model: every answer comes from the fallback node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.langgraph_app import ServedParts, build_parts
from agent.settings import WorkerSettings
from tools.documents import build_document_store
from workflows.assistant import build_assistant_graph
from workflows.fallback import fallback_sources

KNOWLEDGE = Path(__file__).resolve().parents[2] / "examples" / "knowledge"
ENGLISH_LEAD = "My language model is unavailable"


@pytest.fixture
async def parts(tmp_path: Path) -> ServedParts:
    data = tmp_path
    settings = WorkerSettings.model_validate(
        {
            "DATA_DIR": str(data),
            "QDRANT_PATH": str(data / "qdrant"),
            "PMS_DEMO_PATH": str(data / "pms.sqlite"),
            "EMBEDDINGS_PROVIDER": "hashing",
        }
    )
    # The served store is read-only, as in the worker: ingest through a writer first.
    writer = build_document_store(settings.document_store_config())
    await writer.ingest([KNOWLEDGE])
    await writer.aclose()
    return build_parts(settings)


class Call:
    """One caller's thread through the no-model assistant graph."""

    def __init__(self, parts: ServedParts, context: dict[str, Any], thread: str) -> None:
        self.graph = build_assistant_graph(
            model=None, tools=parts.tools, checkpointer=InMemorySaver()
        )
        self.config: Any = {"configurable": {"thread_id": thread}}
        self.context = context

    async def say(self, text: str) -> AIMessage:
        values = await self.graph.ainvoke(
            {"messages": [HumanMessage(text)], "context": self.context}, self.config
        )
        reply = values["messages"][-1]
        assert isinstance(reply, AIMessage)
        return reply


def _text(message: AIMessage) -> str:
    return str(message.content)


async def test_a_verified_caller_still_gets_booking_and_property_answers(
    parts: ServedParts,
) -> None:
    call = Call(parts, {"property_id": "alpine-chalet", "language": "en"}, "verified-1")
    first = await call.say("My confirmation code is ALP-7826 and my last name is Rossi")
    assert "Giulia" in _text(first)
    again = await call.say("My confirmation code is ALP-7826 and my last name is Rossi")
    assert "December" in _text(again) or "Giulia" in _text(again)
    total = await call.say("What is the total of my booking?")
    assert "5,191" in _text(total)
    wifi = await call.say("What is the Wi-Fi password?")
    assert "matterhorn88" in _text(wifi)


@pytest.mark.parametrize("language", ["de", "fr", "es", "it", "pt", "nl"])
async def test_the_fallback_answers_in_the_callers_language(
    parts: ServedParts, language: str
) -> None:
    call = Call(parts, {"property_id": "alpine-chalet", "language": language}, f"lang-{language}")
    hello = await call.say("Hello")
    wifi = await call.say("What is the Wi-Fi password?")
    assert ENGLISH_LEAD not in _text(hello)
    assert ENGLISH_LEAD not in _text(wifi)
    assert "matterhorn88" in _text(wifi)


async def test_a_german_caller_hears_german_around_the_facts(parts: ServedParts) -> None:
    call = Call(parts, {"property_id": "alpine-chalet", "language": "de-CH"}, "lang-de-ch")
    wifi = await call.say("Wie lautet das WLAN-Passwort?")
    assert _text(wifi).startswith("Mein Sprachmodell ist gerade nicht verfügbar")
    assert "matterhorn88" in _text(wifi)


async def test_an_unrelated_question_quotes_no_passage(parts: ServedParts) -> None:
    call = Call(parts, {"property_id": "alpine-chalet", "language": "en"}, "unrelated")
    reply = await call.say("Who won the football match yesterday?")
    assert "couldn't find anything" in _text(reply)
    assert fallback_sources(reply) == []


async def test_a_second_guests_booking_details_bring_no_document_passage(
    parts: ServedParts,
) -> None:
    call = Call(parts, {"property_id": "alpine-chalet", "language": "en"}, "second-guest")
    await call.say("My confirmation code is ALP-7826 and my last name is Rossi")
    reply = await call.say("My confirmation code is HVL-2187 and my last name is Kowalski")
    assert fallback_sources(reply) == []
    assert "Marek" in _text(reply)  # their own booking is read back, not a document
