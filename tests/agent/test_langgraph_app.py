"""`langgraph dev` serves langgraph.json's graphs, and they answer with no keys.

A real LangGraph server (langgraph-cli[inmem], in its own environment) is started on a
loopback port with the repository's own langgraph.json, as a team opening Studio would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.langgraph_server import (
    SERVER_ENV,
    ensure_server_env,
    langgraph_dev,
    repository_graphs,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The repository's langgraph.json under `langgraph dev`; yields its base URL."""
    ensure_server_env()
    data = tmp_path_factory.mktemp("langgraph-app")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))},
        "REDIS_URL": "",
        "QDRANT_PATH": str(data / "qdrant"),
        "PMS_DEMO_PATH": str(data / "pms.sqlite"),
        "EMBEDDINGS_PROVIDER": "hashing",
    }
    # Studio users ingest the sample documents first, with the same CLI the worker uses.
    subprocess.run(
        [
            str(SERVER_ENV / "bin" / "python"),
            "-m",
            "tools.ingest",
            str(ROOT / "examples/knowledge"),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    with langgraph_dev(repository_graphs(), data, env=env) as server:
        yield server.url


def _run(url: str, graph: str, payload: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=60) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        response = client.post(
            f"/threads/{thread}/runs/wait", json={"assistant_id": graph, "input": payload}
        )
        response.raise_for_status()
        return dict(response.json())


def test_langgraph_json_names_the_four_graphs() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert set(config["graphs"]) == {"assistant", "document_qa", "upsell", "gap_nights"}


def test_the_server_lists_every_graph_of_langgraph_json(served: str) -> None:
    found = httpx.post(f"{served}/assistants/search", json={}, timeout=30).json()
    assert {a["graph_id"] for a in found} == {"assistant", "document_qa", "upsell", "gap_nights"}


def test_the_assistant_answers_from_the_demo_pms_without_keys(served: str) -> None:
    values = _run(
        served,
        "assistant",
        {
            "messages": [{"role": "user", "content": "What is the Wi-Fi password?"}],
            "context": {"property_id": "alpine-chalet"},
        },
    )
    answer = values["messages"][-1]["content"]
    assert "matterhorn88" in answer


def test_document_qa_answers_from_the_ingested_documents(served: str) -> None:
    values = _run(
        served,
        "document_qa",
        {"messages": [{"role": "user", "content": "Can I bring my dog to Chalet Edelweiss?"}]},
    )
    answer = values["messages"][-1]["content"]
    assert "dog" in answer.lower()
    assert "couldn't find" not in answer


def test_the_upsell_graph_offers_extras_to_a_known_guest(served: str) -> None:
    values = _run(
        served,
        "upsell",
        {"context": {"reservation_code": "ALP-7826", "guest_name": "Giulia Rossi"}},
    )
    (pending,) = values["__interrupt__"]
    assert "late checkout" in pending["value"]["question"]


def test_the_gap_nights_graph_asks_an_unknown_caller_for_the_booking(served: str) -> None:
    values = _run(served, "gap_nights", {})
    (pending,) = values["__interrupt__"]
    assert "confirmation code" in pending["value"]["question"]


async def test_graph_llm_speaks_the_served_assistant_through_a_remote_graph(served: str) -> None:
    """What a worker with LANGGRAPH_SERVER_URL does: the same call, the graph on the server."""
    from langgraph.pregel.remote import RemoteGraph
    from livekit.agents import Agent, AgentSession

    from agent.graph_llm import GraphLLM, server_thread_id
    from workflows.assistant import SPEAKING_NODES

    graph = RemoteGraph("assistant", url=served)
    graph_llm = GraphLLM(
        graph,
        thread_id="studio-call",
        speaking_nodes=SPEAKING_NODES,
        context={"property_id": "alpine-chalet"},
    )
    async with AgentSession(llm=graph_llm) as session:
        await session.start(Agent(instructions="You are the concierge."))
        result = await session.run(user_input="What is the Wi-Fi password?")

    said = " ".join(
        (event.item.text_content or "") for event in result.events if event.type == "message"
    )
    assert "matterhorn88" in said
    assert graph.client is not None
    state = await graph.client.threads.get_state(server_thread_id("studio-call"))
    assert isinstance(state["values"], dict)
    messages = state["values"]["messages"]
    assert [m["content"] for m in messages if m["type"] == "human"] == [
        "What is the Wi-Fi password?"
    ]
    assert len({m["id"] for m in messages}) == len(messages)
    assert state["values"]["context"]["property_id"] == "alpine-chalet"
