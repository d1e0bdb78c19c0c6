"""AGENT_GRAPH: a team's own graph in place of the assistant, named like `langgraph.json` does.

The team's graph here is LangChain's own `create_agent` over the worker's real tools (demo PMS,
embedded documents), in a file the test writes; only its chat model is scripted. The call runs
through the real brain, GraphLLM and LiveKit's `AgentSession` harness.
"""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest
from livekit.agents import Agent, AgentSession

from agent.brain import build_brain
from agent.metadata import DispatchMetadata
from agent.settings import SettingsError, WorkerSettings, load_graph_builder, preflight

TEAM_GRAPH = """
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage

from graph_fakes import ScriptedChatModel, tool_call


def _reply(messages):
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content="Our own graph found: " + str(last.content))
    args = {"property_id": "alpine-chalet", "topic": "wifi"}
    return AIMessage(content="", tool_calls=[tool_call("get_property_info", args, "c1")])


def build_graph(model, tools, checkpointer):
    team_model = ScriptedChatModel(default=_reply)
    return create_agent(
        team_model,
        tools,
        system_prompt="You are our front desk.",
        checkpointer=checkpointer,
        name="front_desk",
    )


not_a_function = build_graph(None, [], None)


def returns_a_builder(model, tools, checkpointer):
    from langgraph.graph import StateGraph, MessagesState
    return StateGraph(MessagesState)
"""


def _settings(tmp_path: Path, graph: str) -> WorkerSettings:
    return WorkerSettings(_env_file=None, DATA_DIR=tmp_path / "data", AGENT_GRAPH=graph)  # type: ignore[call-arg]


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    path = tmp_path / "team" / "front_desk.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(TEAM_GRAPH))
    return path


async def test_the_worker_runs_the_graph_agent_graph_names_with_its_own_tools(
    tmp_path: Path, team_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(team_file.parent.parent)
    settings = _settings(tmp_path, "./team/front_desk.py:build_graph")
    metadata = DispatchMetadata(property_id="alpine-chalet", language="en")
    async with contextlib.AsyncExitStack() as stack:
        brain = await build_brain(
            settings, metadata, room_name="r1", caller_identity="guest-1", stack=stack
        )
        assert brain.graph.name == "front_desk"
        async with AgentSession(llm=brain.llm) as session:
            await session.start(Agent(instructions=brain.instructions))
            result = await session.run(user_input="What is the wifi password?")
        spoken = " ".join(e.item.text_content or "" for e in result.events if e.type == "message")
    # the team's graph called the worker's PMS tool, and its answer is what the caller hears
    assert spoken.startswith("Our own graph found:")
    assert "matterhorn88" in spoken
    # create_agent's graph is recognised: its model node speaks, its tool node does not
    assert "get_property_info" not in spoken


def test_a_dotted_module_path_names_the_default_and_any_importable_module(
    team_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflows.assistant import build_graph

    assert load_graph_builder("workflows.assistant:build_graph") is build_graph
    monkeypatch.syspath_prepend(str(team_file.parent))
    assert load_graph_builder("front_desk:build_graph").__name__ == "build_graph"


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("./team/missing.py:build_graph", "cannot import ./team/missing.py: FileNotFoundError"),
        ("no_such_package.graphs:build_graph", "cannot import no_such_package.graphs"),
        ("./team/front_desk.py:nothing_here", "has no 'nothing_here'"),
        ("./team/front_desk.py:not_a_function", "expected a function build_graph(model"),
    ],
)
async def test_a_wrong_agent_graph_stops_start_up_with_one_line(
    tmp_path: Path, team_file: Path, monkeypatch: pytest.MonkeyPatch, reference: str, named: str
) -> None:
    monkeypatch.chdir(team_file.parent.parent)
    with pytest.raises(SettingsError) as raised:
        await preflight(_settings(tmp_path, reference))
    assert named in str(raised.value)
    assert str(raised.value).startswith(f"AGENT_GRAPH={reference!r}")


async def test_a_builder_that_returns_an_uncompiled_graph_is_named_at_call_start(
    tmp_path: Path, team_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(team_file.parent.parent)
    settings = _settings(tmp_path, "./team/front_desk.py:returns_a_builder")
    async with contextlib.AsyncExitStack() as stack:
        with pytest.raises(SettingsError, match=r"returned a StateGraph, not a compiled graph"):
            await build_brain(
                settings, DispatchMetadata(), room_name="r", caller_identity="c", stack=stack
            )


@pytest.mark.parametrize("reference", ["workflows.assistant", "a:b c", ":build_graph"])
def test_a_malformed_reference_is_a_settings_error(tmp_path: Path, reference: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"package\.module:function"):
        _settings(tmp_path, reference)
