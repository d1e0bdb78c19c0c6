"""GraphLLM on a graph deployed on a LangGraph Agent Server (a real `langgraph dev`).

Each test talks to the server through `RemoteGraph` inside LiveKit's AgentSession harness
and checks what a caller would notice — what is spoken — and what the server's thread
holds afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.pregel.remote import RemoteGraph
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
)
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.brain import build_brain
from agent.graph_llm import (
    DEFAULT_APOLOGY,
    DEFAULT_FILLER,
    GraphLLM,
    ToolFinished,
    ToolStarted,
    server_thread_id,
)
from agent.metadata import DispatchMetadata
from agent.settings import WorkerSettings
from tests.agent._worker_fakes import clear_worker_env
from tests.agent.graph_fakes import ROUTER_SECRET, TOOL_SECRET, add_transcript, spoken
from tests.agent.langgraph_server import LangGraphDevServer
from tests.agent.remote_graphs import ANSWER, BREAKFAST, DECLINED, LONG_ANSWER

pytestmark = pytest.mark.timeout(300)

RATE_QUESTION = "How much is a double room tonight?"


def remote(server: LangGraphDevServer | str, graph: str = "concierge") -> RemoteGraph:
    url = server if isinstance(server, str) else server.url
    return RemoteGraph(graph, url=url)


@asynccontextmanager
async def voice_session(
    graph_llm: GraphLLM, *, max_retry: int = 0
) -> AsyncIterator[tuple[AgentSession, Agent]]:
    conn = SessionConnectOptions(
        llm_conn_options=APIConnectOptions(max_retry=max_retry, retry_interval=0.05)
    )
    agent = Agent(instructions="You are the concierge of Hotel Aurora.")
    async with AgentSession(llm=graph_llm, conn_options=conn) as session:
        await session.start(agent)
        yield session, agent


async def server_messages(graph: RemoteGraph, thread_id: str) -> list[BaseMessage]:
    """The server thread's messages, read with the SDK client (not through GraphLLM)."""
    assert graph.client is not None
    state = await graph.client.threads.get_state(server_thread_id(thread_id))
    values = state["values"] if isinstance(state["values"], dict) else {}
    kinds = {"human": HumanMessage, "ai": AIMessage, "tool": ToolMessage}
    return [kinds[m["type"]].model_validate(m) for m in values.get("messages", [])]


def contents(messages: list[BaseMessage]) -> list[Any]:
    return [m.content for m in messages]


# -- speech, one copy of each message, tool progress ---------------------------------------


async def test_only_the_speaking_node_is_heard_and_the_server_thread_holds_each_message_once(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    graph_llm = GraphLLM(graph, thread_id="remote-speech", slow_tool_threshold=0.05)
    events: list[ToolStarted | ToolFinished] = []
    graph_llm.on("tool_started", events.append)
    graph_llm.on("tool_finished", events.append)
    async with voice_session(graph_llm) as (session, _):
        first = spoken(await session.run(user_input=RATE_QUESTION))
        [first_usage] = session.usage.model_usage
        second = spoken(await session.run(user_input="When is breakfast?"))
        third = spoken(await session.run(user_input="Thanks"))

    assert first == f"Let me check. {DEFAULT_FILLER} {ANSWER}"
    assert ROUTER_SECRET not in first and TOOL_SECRET not in first
    assert second == BREAKFAST
    assert third == "Noted: Thanks (3 from you so far)."
    # the server's chat model identity and token usage reach LiveKit's metrics
    assert (graph_llm.provider, graph_llm.model) == ("scripted", "scripted-voice-1")
    assert first_usage.input_tokens > 0 and first_usage.output_tokens > 0
    messages = await server_messages(graph, "remote-speech")
    assert [m.content for m in messages if isinstance(m, HumanMessage)] == [
        RATE_QUESTION,
        "When is breakfast?",
        "Thanks",
    ]
    assert [m.content for m in messages if isinstance(m, AIMessage) and not m.tool_calls] == [
        ANSWER,
        BREAKFAST,
        "Noted: Thanks (3 from you so far).",
    ]
    assert sum(isinstance(m, ToolMessage) for m in messages) == 1
    assert len({m.id for m in messages}) == len(messages)
    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [(e.name, e.args_summary) for e in started] == [("room_rate", "room_type='double'")]
    assert [(e.call_id, e.ok) for e in finished] == [(started[0].call_id, True)]
    assert finished[0].duration >= 0.2  # the tool sleeps 0.3 s on the server


async def test_the_thread_id_maps_to_one_server_thread_that_a_new_worker_continues(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    async with voice_session(GraphLLM(graph, thread_id="conv-42")) as (session, _):
        await session.run(user_input="When is breakfast?")

    assert graph.client is not None
    thread = await graph.client.threads.get(server_thread_id("conv-42"))
    assert thread["metadata"]["graph_llm_thread_id"] == "conv-42"
    # a restarted worker (new GraphLLM, new LiveKit history) reaches the same conversation
    async with voice_session(GraphLLM(remote(langgraph_server), thread_id="conv-42")) as (
        session,
        _,
    ):
        recalled = spoken(await session.run(user_input="What did you say?"))

    assert recalled == f"I told you: {BREAKFAST}"
    assert len(await server_messages(graph, "conv-42")) == 4


async def test_a_server_thread_deleted_mid_call_is_created_again(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    assert graph.client is not None
    async with voice_session(GraphLLM(graph, thread_id="remote-expired")) as (session, _):
        await session.run(user_input="Hi")
        await graph.client.threads.delete(server_thread_id("remote-expired"))
        reply = spoken(await session.run(user_input="When is breakfast?"))

    assert reply == BREAKFAST
    # the server thread starts again from LiveKit's history after its last assistant reply
    assert contents(await server_messages(graph, "remote-expired"))[-2:] == [
        "When is breakfast?",
        BREAKFAST,
    ]


async def test_agent_instructions_and_context_reach_the_remote_graph_state(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    graph_llm = GraphLLM(graph, thread_id="remote-instructed", context={"property_id": "aurora"})
    async with voice_session(graph_llm) as (session, agent):
        first = spoken(await session.run(user_input="Who are you?"))
        await agent.update_instructions("You are the night concierge.")
        graph_llm.update_context({"guest_name": "Ada"})
        second = spoken(await session.run(user_input="Who are you now?"))

    assert first == "I am told: You are the concierge of Hotel Aurora."
    assert second == "I am told: You are the night concierge."
    assert graph.client is not None
    state = await graph.client.threads.get_state(server_thread_id("remote-instructed"))
    assert isinstance(state["values"], dict)
    assert state["values"]["context"] == {"property_id": "aurora", "guest_name": "Ada"}


# -- human in the loop ---------------------------------------------------------------------


async def test_an_interrupt_on_the_server_is_spoken_and_the_answer_resumes_it(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server, "confirming")
    graph_llm = GraphLLM(graph, thread_id="remote-hitl")
    finished: list[ToolFinished] = []
    graph_llm.on("tool_finished", finished.append)
    async with voice_session(graph_llm) as (session, _):
        asked = spoken(await session.run(user_input=RATE_QUESTION))
        waiting = graph_llm.awaiting_confirmation
        finished_before_yes = list(finished)
        answered = spoken(await session.run(user_input="Yes please"))
        after = spoken(await session.run(user_input="Thanks"))

    assert asked == "Let me check. Shall I run room_rate for you?"
    assert waiting
    assert answered == ANSWER
    assert after.startswith("Noted: Thanks")
    assert not graph_llm.awaiting_confirmation
    # the tool ran after the yes, and its progress events said so
    assert finished_before_yes == []
    assert [(e.name, e.ok) for e in finished] == [("room_rate", True)]
    messages = await server_messages(graph, "remote-hitl")
    assert [m.content for m in messages if isinstance(m, HumanMessage)] == [RATE_QUESTION, "Thanks"]
    assert TOOL_SECRET in str(contents([m for m in messages if isinstance(m, ToolMessage)]))


async def test_a_discarded_yes_does_not_run_the_tool_on_the_server(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server, "confirming")
    graph_llm = GraphLLM(graph, thread_id="remote-spec-confirm")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input=RATE_QUESTION)
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "yes")
        await graph_llm.chat(chat_ctx=guess).collect()  # preemptive, then discarded
        reply = spoken(await session.run(user_input="no, wait"))

    assert reply == DECLINED
    messages = await server_messages(graph, "remote-spec-confirm")
    assert contents([m for m in messages if isinstance(m, ToolMessage)]) == ["The caller declined."]
    assert TOOL_SECRET not in str(contents(messages))


# -- barge-in ------------------------------------------------------------------------------


async def test_what_the_caller_heard_is_written_back_to_the_server_thread(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    graph_llm = GraphLLM(graph, thread_id="remote-barge")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="When is breakfast?")
        heard = agent.chat_ctx.copy()
        reply = heard.messages()[-1]
        reply.content = ["Breakfast is served from seven"]
        reply.interrupted = True
        await agent.update_chat_ctx(heard)
        recalled = spoken(await session.run(user_input="What did you say?"))

    assert recalled == "I told you: Breakfast is served from seven"
    messages = await server_messages(graph, "remote-barge")
    assert [m.content for m in messages if isinstance(m, AIMessage)] == [
        "Breakfast is served from seven",
        recalled,
    ]


async def test_a_barge_in_mid_stream_leaves_only_the_played_words_on_the_server(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server, "slow")
    graph_llm = GraphLLM(graph, thread_id="remote-mid")
    async with voice_session(graph_llm) as (session, _):
        speaking = asyncio.Event()
        session.on(
            "agent_state_changed",
            lambda ev: speaking.set() if ev.new_state == "speaking" else None,
        )
        run = session.run(user_input="Count for me")
        await asyncio.wait_for(speaking.wait(), timeout=60)
        await asyncio.sleep(0.2)
        await session.interrupt()
        played = spoken(await run)
        await session.run(user_input="Stop, thanks")

    assert played and played != LONG_ANSWER
    messages = await server_messages(graph, "remote-mid")
    assert contents(messages)[:3] == ["Count for me", played, "Stop, thanks"]
    assert len(messages) == 4


# -- speculative runs ----------------------------------------------------------------------


async def test_a_finished_but_discarded_run_is_rewound_on_the_server(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    graph_llm = GraphLLM(graph, thread_id="remote-spec")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Hi")
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "When is breakfast")
        assert (await graph_llm.chat(chat_ctx=guess).collect()).text == BREAKFAST
        real = spoken(await session.run(user_input="Parking for two cars?"))

    assert real == "Noted: Parking for two cars? (2 from you so far)."
    assert contents(await server_messages(graph, "remote-spec")) == [
        "Hi",
        "Noted: Hi (1 from you so far).",
        "Parking for two cars?",
        real,
    ]


async def test_a_cancelled_run_is_stopped_on_the_server_and_the_thread_rewound(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server, "slow")
    graph_llm = GraphLLM(graph, thread_id="remote-cancel", filler_text=None)
    tool_running = asyncio.Event()
    graph_llm.on("tool_started", lambda _: tool_running.set())
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Hi")
        before = await server_messages(graph, "remote-cancel")
        guess = agent.chat_ctx.copy()
        add_transcript(guess, RATE_QUESTION)
        stream = graph_llm.chat(chat_ctx=guess)
        consumer = asyncio.create_task(stream.collect())
        await asyncio.wait_for(tool_running.wait(), timeout=60)
        await stream.aclose()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError, APIError):
            await consumer
        after_cancel = await server_messages(graph, "remote-cancel")
        # the server is free again: a new run on the thread is not refused as busy
        result = spoken(await session.run(user_input="Is breakfast included?"))

    assert [m.id for m in after_cancel] == [m.id for m in before]
    assert result == BREAKFAST
    assert len(await server_messages(graph, "remote-cancel")) == 4


# -- errors --------------------------------------------------------------------------------


async def test_a_failing_node_on_the_server_is_an_apology_and_the_next_turn_works(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server)
    graph_llm = GraphLLM(graph, thread_id="remote-fail")
    async with voice_session(graph_llm, max_retry=2) as (session, agent):
        with pytest.raises(APIError) as failure:
            await session.run(user_input="Please fail")
        apology = agent.chat_ctx.messages()[-1].text_content
        after = spoken(await session.run(user_input="Hello again"))

    assert not failure.value.retryable
    assert "model exploded" in str(failure.value)
    assert apology == DEFAULT_APOLOGY
    assert after == "Noted: Hello again (2 from you so far)."
    assert contents(await server_messages(graph, "remote-fail")) == [
        "Please fail",
        DEFAULT_APOLOGY,
        "Hello again",
        after,
    ]


async def test_an_unknown_graph_is_a_4xx_apology(langgraph_server: LangGraphDevServer) -> None:
    graph_llm = GraphLLM(remote(langgraph_server, "no-such-graph"), thread_id="remote-404")
    async with voice_session(graph_llm, max_retry=2) as (session, agent):
        with pytest.raises(APIStatusError) as failure:
            await session.run(user_input="Hello")
        apology = agent.chat_ctx.messages()[-1].text_content

    assert 400 <= failure.value.status_code < 500
    assert not failure.value.retryable
    assert apology == DEFAULT_APOLOGY


async def test_a_turn_over_its_budget_times_out_and_the_server_thread_is_rewound(
    langgraph_server: LangGraphDevServer,
) -> None:
    graph = remote(langgraph_server, "slow")
    graph_llm = GraphLLM(graph, thread_id="remote-timeout", turn_timeout=8.0, filler_text=None)
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Hi")
        before = await server_messages(graph, "remote-timeout")
        with pytest.raises(APITimeoutError):
            await session.run(user_input=RATE_QUESTION)
        heard = agent.chat_ctx.messages()[-1].text_content
        after = await server_messages(graph, "remote-timeout")
        later = spoken(await session.run(user_input="Is breakfast included?"))

    assert heard == f"Let me check. {DEFAULT_APOLOGY}"
    assert [m.id for m in after] == [m.id for m in before]
    assert later == BREAKFAST


class _Relay:
    """A loopback TCP relay to the server that can be switched off, like a server outage."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.answer_500 = False
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.answer_500:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await reader.readuntil(b"\r\n\r\n")
                body = b'{"detail": "upstream exploded"}'
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            self._writers.clear()
            await self._server.wait_closed()
            self._server = None


async def test_a_server_outage_is_a_connection_error_and_the_call_recovers(
    langgraph_server: LangGraphDevServer,
) -> None:
    relay = _Relay(int(langgraph_server.url.rsplit(":", 1)[1]))
    graph = remote(f"http://127.0.0.1:{relay.port}")
    graph_llm = GraphLLM(graph, thread_id="remote-outage")
    await relay.start()
    try:
        async with voice_session(graph_llm) as (session, agent):
            first = spoken(await session.run(user_input="Hi"))
            await relay.stop()
            with pytest.raises(APIConnectionError):
                await session.run(user_input="Are you there?")
            apology = agent.chat_ctx.messages()[-1].text_content
            await relay.start()
            back = spoken(await session.run(user_input="When is breakfast?"))
    finally:
        await relay.stop()

    assert first == "Noted: Hi (1 from you so far)."
    assert apology == DEFAULT_APOLOGY
    assert back == BREAKFAST
    assert contents(await server_messages(remote(langgraph_server), "remote-outage")) == [
        "Hi",
        first,
        "Are you there?",
        DEFAULT_APOLOGY,
        "When is breakfast?",
        BREAKFAST,
    ]


# -- the worker --------------------------------------------------------------------------


async def test_the_worker_brain_talks_to_the_server_when_a_url_is_set(
    langgraph_server: LangGraphDevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(
        _env_file=None,  # type: ignore[call-arg]
        DATA_DIR=tmp_path / "data",
        EMBEDDINGS_PROVIDER="hashing",
        LANGGRAPH_SERVER_URL=langgraph_server.url,
        LANGGRAPH_ASSISTANT_ID="concierge",
    )
    async with contextlib.AsyncExitStack() as stack:
        brain = await build_brain(
            settings, DispatchMetadata(), room_name="room-r", caller_identity="guest-r", stack=stack
        )
        async with voice_session(brain.llm) as (session, _):
            reply = spoken(await session.run(user_input="When is breakfast?"))

    assert reply == BREAKFAST
    assert brain.graph is None
    assert brain.providers["checkpointer"] == "langgraph-server"
    stored = await server_messages(remote(langgraph_server), brain.thread_id)
    assert contents(stored) == ["When is breakfast?", BREAKFAST]


async def test_server_5xx_is_retried_then_apologised_and_the_next_turn_works(
    langgraph_server: LangGraphDevServer,
) -> None:
    relay = _Relay(int(langgraph_server.url.rsplit(":", 1)[1]))
    graph_llm = GraphLLM(remote(f"http://127.0.0.1:{relay.port}"), thread_id="remote-500")
    errors: list[Any] = []
    graph_llm.on("error", errors.append)
    await relay.start()
    try:
        async with voice_session(graph_llm, max_retry=1) as (session, agent):
            relay.answer_500 = True
            with pytest.raises(APIStatusError) as failure:
                await session.run(user_input="Hi")
            apology = agent.chat_ctx.messages()[-1].text_content
            relay.answer_500 = False
            back = spoken(await session.run(user_input="When is breakfast?"))
    finally:
        await relay.stop()

    assert failure.value.status_code == 500
    assert [e.recoverable for e in errors] == [True, False]  # retried once, then final
    assert apology == DEFAULT_APOLOGY
    assert back == BREAKFAST
