"""The tool contract: what features read from a tool's artifact and metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from knowledge_helpers import memory_store
from langchain_core.tools import StructuredTool

from tools.artifacts import (
    CONTEXT_KEYS,
    ToolRole,
    artifact_context,
    artifact_sources,
    tool_role,
    tools_with_role,
)
from tools.knowledge import knowledge_tools
from tools.pms import GuestDesk, pms_tools
from tools.pms.demo import DemoPMS
from workflows.document_qa import document_qa_tool
from workflows.state import CONTEXT_KEYS as STATE_CONTEXT_KEYS


def _tool(name: str, role: ToolRole | None) -> StructuredTool:
    async def run(query: str) -> str:
        return query

    metadata = {"role": role} if role is not None else {}
    return StructuredTool.from_function(
        coroutine=run, name=name, description="a tool", metadata=metadata
    )


def test_features_find_a_tool_by_its_role_whatever_it_is_called() -> None:
    ours = _tool("hotel_manual_lookup", ToolRole.DOCUMENT_SEARCH)
    other = _tool("weather", None)
    assert tools_with_role([other, ours], ToolRole.DOCUMENT_SEARCH) == [ours]
    assert tool_role(ours) == "document_search"
    assert tool_role(other) is None
    assert tools_with_role([other], ToolRole.RESERVATION_LOOKUP) == []


def test_only_declared_known_non_empty_facts_update_the_context() -> None:
    artifact = {
        "ok": True,
        "context": {"property_id": "alpine-chalet", "guest_name": None, "role": "staff"},
        # looks like a reservation, but is not declared as context: teaches nothing
        "reservation": {"confirmation_code": "ALP-1", "property_id": "elsewhere"},
    }
    assert artifact_context(artifact) == {"property_id": "alpine-chalet"}
    assert artifact_context({"reservation": {"property_id": "x"}}) == {}


@pytest.mark.parametrize("artifact", [None, "text", 3, [], {"context": "nope"}, {"sources": {}}])
def test_unreadable_artifacts_teach_and_cite_nothing(artifact: Any) -> None:
    assert artifact_context(artifact) == {}
    assert artifact_sources(artifact) == []


def test_sources_keep_order_and_skip_entries_that_name_no_document() -> None:
    artifact = {
        "sources": [
            {"source": "wifi.md", "title": "Wi-Fi", "chunk": 0, "score": 0.7, "extra": 1},
            {"source": "", "title": "empty"},
            {"title": "missing"},
            {"source": "parking.md", "chunk": "not a number"},
            "not an object",
            {"source": "pets.md", "score": 0.4},
        ]
    }
    cited = artifact_sources(artifact)
    assert [(s.source, s.score) for s in cited] == [("wifi.md", 0.7), ("pets.md", 0.4)]
    assert cited[0].title == "Wi-Fi" and cited[1].chunk is None


def test_the_contract_and_the_graph_state_name_the_same_facts() -> None:
    assert CONTEXT_KEYS == STATE_CONTEXT_KEYS


async def test_the_assistants_own_tools_each_declare_a_distinct_role(tmp_path: Path) -> None:
    pms = DemoPMS(tmp_path / "demo.sqlite3")
    store = memory_store()
    try:
        tools = [
            *knowledge_tools(store),
            document_qa_tool(store, model=None),
            *pms_tools(pms, desk=GuestDesk(pms)),
        ]
        for role in ToolRole:
            assert len(tools_with_role(tools, role)) == 1, role
        reservation = tools_with_role(tools, ToolRole.RESERVATION_LOOKUP)[0]
        assert reservation.name == "find_reservation"
    finally:
        await store.aclose()
        await pms.aclose()
