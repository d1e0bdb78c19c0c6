"""A 500-message conversation on the Redis checkpointer's layout (messages stored once,
bounded checkpoints, decoded-state cache): it resumes in a fresh process, a discarded
speculative run is rewound, a barge-in rewrites what the caller heard, and a worker whose
cache is stale still sees what another worker wrote."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph
from livekit.agents import Agent, AgentSession

from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import ScriptedChatModel, spoken
from workflows.checkpoint import RedisCheckpointSaver

THREAD = "long-call"
KEEP = 8
_SPA_AND_TOWELS = [
    "The spa opens at nine and closes at eight in the evening, every day.",
    "Towels are at the pool.",
]


def seed_messages(count: int) -> list[AnyMessage]:
    messages: list[AnyMessage] = []
    for n in range(count // 2):
        messages.append(HumanMessage(f"Question {n}: is the pool open late?", id=f"seed-h{n}"))
        messages.append(AIMessage(f"Answer {n}: until ten tonight.", id=f"seed-a{n}"))
    return messages


def chat_graph(model: ScriptedChatModel, saver: RedisCheckpointSaver) -> Any:
    async def respond(state: MessagesState) -> dict[str, list[AnyMessage]]:
        return {"messages": [await model.ainvoke(state["messages"][-6:])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", respond)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


async def contents(graph: Any) -> list[str]:
    state = await graph.aget_state({"configurable": {"thread_id": THREAD}})
    return [str(m.content) for m in state.values["messages"]]


async def test_a_500_message_thread_resumes_rewinds_and_rewrites(redis_url: str) -> None:
    seed = seed_messages(500)
    model = ScriptedChatModel(
        script=[*["Anything else?"] * 12, "Guess.", *_SPA_AND_TOWELS],
        default="Anything else?",
    )
    async with RedisCheckpointSaver.from_url(redis_url, max_checkpoints=KEEP) as worker_a:
        graph = chat_graph(model, worker_a)
        await graph.aupdate_state({"configurable": {"thread_id": THREAD}}, {"messages": seed})
        graph_llm = GraphLLM(graph, thread_id=THREAD)
        async with AgentSession(llm=graph_llm) as session:
            agent = Agent(instructions="Concierge.")
            await session.start(agent)
            for n in range(12):  # enough turns for pruning to run several times
                await session.run(user_input=f"One more thing {n}")
            guess = agent.chat_ctx.copy()
            guess.add_message(role="user", content="parking")
            await graph_llm.chat(chat_ctx=guess).collect()  # preemptive run, then discarded
            answer = await session.run(user_input="When is the spa open?")
            assert spoken(answer).startswith("The spa opens at nine")

            # the caller cut the answer short: only what they heard stays in the thread
            heard = agent.chat_ctx.copy()
            reply = heard.messages()[-1]
            reply.content = ["The spa opens at nine"]
            reply.interrupted = True
            await agent.update_chat_ctx(heard)
            await session.run(user_input="And towels?")
            await session.run(user_input="Thanks")

        expected = [str(m.content) for m in seed]
        for n in range(12):
            expected += [f"One more thing {n}", "Anything else?"]
        expected += [
            "When is the spa open?",
            "The spa opens at nine",
            "And towels?",
            "Towels are at the pool.",
            "Thanks",
            "Anything else?",
        ]
        assert await contents(graph) == expected

    # a fresh process (nothing cached) resumes the same thread and goes on
    async with RedisCheckpointSaver.from_url(redis_url, max_checkpoints=KEEP) as worker_b:
        resumed = chat_graph(ScriptedChatModel(default="Good night."), worker_b)
        assert await contents(resumed) == expected
        await resumed.ainvoke({"messages": [HumanMessage("Bye")]}, _config())
        assert (await contents(resumed))[-2:] == ["Bye", "Good night."]
        await _assert_storage_is_bounded(worker_b.redis, len(expected) + 2)


async def test_a_stale_cache_still_sees_what_another_worker_wrote(redis_url: str) -> None:
    async with (
        RedisCheckpointSaver.from_url(redis_url, max_checkpoints=KEEP) as worker_a,
        RedisCheckpointSaver.from_url(redis_url, max_checkpoints=KEEP) as worker_b,
    ):
        graph_a = chat_graph(ScriptedChatModel(default="From A."), worker_a)
        graph_b = chat_graph(ScriptedChatModel(default="From B."), worker_b)
        await graph_a.aupdate_state(_config(), {"messages": seed_messages(500)})
        for turn in range(3):
            await graph_a.ainvoke({"messages": [HumanMessage(f"a{turn}")]}, _config())
            await graph_b.ainvoke({"messages": [HumanMessage(f"b{turn}")]}, _config())
        # rewrite an old message on B; A's cached copy of it must not come back
        state = await graph_b.aget_state(_config())
        old: BaseMessage = state.values["messages"][10]
        await graph_b.aupdate_state(
            _config(), {"messages": [old.model_copy(update={"content": "rewritten"})]}
        )
        latest = await worker_a.aget_tuple(_config())  # A's cache still holds the old head
        assert latest is not None
        assert [m.content for m in latest.checkpoint["channel_values"]["messages"]][10:11] == [
            "rewritten"
        ]
        await graph_a.ainvoke({"messages": [HumanMessage("a-last")]}, _config())
        for graph in (graph_a, graph_b):
            texts = await contents(graph)
            assert texts[10] == "rewritten"
            assert texts[500:] == [
                *("a0", "From A.", "b0", "From B.", "a1", "From A.", "b1", "From B."),
                *("a2", "From A.", "b2", "From B.", "a-last", "From A."),
            ]


async def _assert_storage_is_bounded(redis: aioredis.Redis, thread_length: int) -> None:
    prefix = f"langgraph:{{{THREAD}}}:"
    checkpoints = await redis.zcard(prefix + "checkpoints")
    assert checkpoints <= KEEP + max(2, KEEP // 2)
    # every message is stored once (plus the few the rewind and the rewrite replaced)
    assert thread_length <= await redis.hlen(prefix + "messages") <= thread_length + 4
    blobs = await redis.hgetall(prefix + "blobs")
    stored_lists = sum(len(v) for v in blobs.values())
    one_full_copy = sum(len(v) for v in (await redis.hgetall(prefix + "messages")).values())
    assert stored_lists < one_full_copy / 4


def _config() -> Any:
    return {"configurable": {"thread_id": THREAD}}
