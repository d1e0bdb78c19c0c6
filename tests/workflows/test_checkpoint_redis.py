"""RedisCheckpointSaver behaviour with real LangGraph graphs and a real redis-server."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, TypedDict

import pytest
import redis.asyncio as aioredis
from echo_graph import echo_graph
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability, interrupt

from workflows.checkpoint import RedisCheckpointSaver


@pytest.fixture
async def saver(redis_url: str) -> AsyncIterator[RedisCheckpointSaver]:
    async with RedisCheckpointSaver.from_url(redis_url) as s:
        yield s


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def say(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    thread_id: str,
    text: str,
    durability: Durability = "async",
    run_id: str | None = None,
) -> None:
    config = thread(thread_id)
    if run_id is not None:
        config["metadata"] = {"run_id": run_id}
    await graph.ainvoke({"messages": [HumanMessage(text)]}, config, durability=durability)


async def transcript(graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str) -> list[str]:
    state = await graph.aget_state(thread(thread_id))
    return [str(m.content) for m in state.values.get("messages", [])]


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
async def test_conversation_survives_a_restart(redis_url: str, durability: Durability) -> None:
    async with RedisCheckpointSaver.from_url(redis_url) as first:
        graph = echo_graph(first)
        for text in ("hi", "breakfast?", "thanks"):
            await say(graph, "guest-1", text, durability)

    async with RedisCheckpointSaver.from_url(redis_url) as second:
        graph = echo_graph(second)
        assert await transcript(graph, "guest-1") == [
            "hi",
            "echo: hi",
            "breakfast?",
            "echo: breakfast?",
            "thanks",
            "echo: thanks",
        ]
        await say(graph, "guest-1", "bye", durability)
        assert (await transcript(graph, "guest-1"))[-2:] == ["bye", "echo: bye"]
        history = [s async for s in graph.aget_state_history(thread("guest-1"))]
        assert len(history[0].values["messages"]) == 8
        lengths = [len(s.values.get("messages", [])) for s in history]
        assert lengths == sorted(lengths, reverse=True) and lengths[-1] <= 2


async def test_interrupt_resumes_on_another_saver_instance(redis_url: str) -> None:
    class State(TypedDict):
        answer: str

    def ask(state: State) -> dict[str, str]:
        return {"answer": str(interrupt("Shall I book the spa for you?"))}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)

    async with RedisCheckpointSaver.from_url(redis_url) as first:
        result = await builder.compile(checkpointer=first).ainvoke({"answer": ""}, thread("t"))
        assert result["__interrupt__"][0].value == "Shall I book the spa for you?"

    async with RedisCheckpointSaver.from_url(redis_url) as second:
        graph = builder.compile(checkpointer=second)
        pending = await graph.aget_state(thread("t"))
        assert pending.next == ("ask",)
        assert await graph.ainvoke(Command(resume="yes please"), thread("t")) == {
            "answer": "yes please"
        }


async def test_a_newer_checkpoint_from_another_worker_is_seen(redis_url: str) -> None:
    async with (
        RedisCheckpointSaver.from_url(redis_url) as worker_a,
        RedisCheckpointSaver.from_url(redis_url) as worker_b,
    ):
        graph_a, graph_b = echo_graph(worker_a), echo_graph(worker_b)
        await say(graph_a, "shared", "one")
        await say(graph_b, "shared", "two")
        assert (await transcript(graph_a, "shared"))[-1] == "echo: two"
        await say(graph_a, "shared", "three")
        assert await transcript(graph_b, "shared") == [
            "one",
            "echo: one",
            "two",
            "echo: two",
            "three",
            "echo: three",
        ]


async def test_ttl_expires_the_whole_thread(redis_url: str) -> None:
    async with RedisCheckpointSaver.from_url(redis_url, ttl=0.3, key_prefix="ttl") as saver:
        graph = echo_graph(saver)
        await say(graph, "short-lived", "hello", run_id="run-1")
        keys = await saver.redis.keys("ttl:*")
        assert len(keys) == 5
        assert all(0 < ttl <= 300 for ttl in [await saver.redis.pttl(k) for k in keys])
        for _ in range(100):
            if not await saver.redis.keys("ttl:*"):
                break
            await asyncio.sleep(0.05)
        assert await saver.redis.keys("ttl:*") == []
        assert await saver.aget_tuple(thread("short-lived")) is None


async def test_every_write_refreshes_the_ttl_of_all_thread_keys(redis_url: str) -> None:
    async with RedisCheckpointSaver.from_url(redis_url, ttl=600, key_prefix="ttl") as saver:
        graph = echo_graph(saver)
        await say(graph, "guest", "hello", run_id="run-1")
        keys = await saver.redis.keys("ttl:*")
        assert len(keys) == 5
        for key in keys:  # age the thread as if it had been idle for a long time
            await saver.redis.pexpire(key, 1000)
        latest = await saver.aget_tuple(thread("guest"))
        assert latest is not None
        await saver.aput_writes(latest.config, [("messages", [])], "task-1")
        assert all(ttl > 500_000 for ttl in [await saver.redis.pttl(k) for k in keys])


async def test_without_ttl_keys_never_expire(saver: RedisCheckpointSaver) -> None:
    await say(echo_graph(saver), "guest", "hello", run_id="run-1")
    keys = await saver.redis.keys("langgraph:*")
    assert len(keys) == 5
    assert [await saver.redis.pttl(k) for k in keys] == [-1] * 5


@pytest.mark.parametrize(
    "thread_ids",
    [["a", "a}:x", "{a}", "a*", "room:caller-1", "ünïcödé thread", "a%7D"]],
)
async def test_thread_ids_with_key_syntax_stay_isolated(
    saver: RedisCheckpointSaver, thread_ids: list[str]
) -> None:
    for thread_id in thread_ids:
        await say(echo_graph(saver), thread_id, f"I am {thread_id}")
    graph = echo_graph(saver)
    for thread_id in thread_ids:
        assert await transcript(graph, thread_id) == [
            f"I am {thread_id}",
            f"echo: I am {thread_id}",
        ]
    listed = {t.config["configurable"]["thread_id"] async for t in saver.alist(None)}
    assert listed == set(thread_ids)


async def test_pending_writes_keep_the_first_value_but_special_writes_replace(
    saver: RedisCheckpointSaver,
) -> None:
    stored = await saver.aput(
        {"configurable": {"thread_id": "w", "checkpoint_ns": ""}},
        empty_checkpoint(),
        {"source": "loop", "step": 0, "parents": {}},
        {},
    )
    await saver.aput_writes(stored, [("out", "first"), (ERROR, "boom 1")], "task", "~a")
    await saver.aput_writes(
        stored, [("out", "second"), (ERROR, "boom 2"), (ERROR, "boom 3")], "task", "~a"
    )
    await saver.aput_writes(stored, [("out", "other task")], "earlier-path", "~0")
    tup = await saver.aget_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [
        ("earlier-path", "out", "other task"),
        ("task", ERROR, "boom 3"),
        ("task", "out", "first"),
    ]


async def test_list_pages_through_long_histories(saver: RedisCheckpointSaver) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    ids = []
    for step in range(150):
        checkpoint = empty_checkpoint()
        config = await saver.aput(
            config, checkpoint, {"source": "loop", "step": step, "parents": {}}, {}
        )
        ids.append(checkpoint["id"])
    newest_first = list(reversed(ids))

    async def listed(**kwargs: Any) -> list[str]:
        return [t.checkpoint["id"] async for t in saver.alist(thread("long"), **kwargs)]

    assert await listed() == newest_first
    assert await listed(limit=100) == newest_first[:100]
    before = {"configurable": {"thread_id": "long", "checkpoint_id": ids[120]}}
    assert await listed(before=before, limit=70) == newest_first[30:100]
    assert await listed(filter={"step": 3}) == [ids[3]]
    assert [
        t.metadata["step"]
        async for t in saver.alist(
            {"configurable": {"thread_id": "long", "checkpoint_ns": ""}},
            filter={"source": "loop"},
            limit=65,
        )
    ] == list(range(149, 84, -1))


async def test_prune_keeps_the_latest_state_and_reclaims_old_blobs(
    saver: RedisCheckpointSaver,
) -> None:
    graph = echo_graph(saver)
    for n in range(5):
        await say(graph, "long-call", f"turn {n}")
    blobs_key = "langgraph:{long-call}:blobs"
    before_prune = await saver.redis.hlen(blobs_key)
    expected = await transcript(graph, "long-call")

    await saver.aprune(["long-call"])

    assert await saver.redis.hlen(blobs_key) < before_prune
    assert len([t async for t in saver.alist(thread("long-call"))]) == 1
    async with RedisCheckpointSaver.from_url(_url(saver)) as fresh:
        assert await transcript(echo_graph(fresh), "long-call") == expected
        await say(echo_graph(fresh), "long-call", "still here?")
        assert (await transcript(echo_graph(fresh), "long-call"))[-1] == "echo: still here?"


def _url(saver: RedisCheckpointSaver) -> str:
    kwargs = saver.redis.get_connection_kwargs()
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def _append(state: list[int], writes: Sequence[list[int]]) -> list[int]:
    return state + [item for write in writes for item in write]


async def test_prune_keeps_what_a_delta_channel_is_rebuilt_from(
    saver: RedisCheckpointSaver,
) -> None:
    class State(TypedDict):
        items: Annotated[list[int], DeltaChannel(_append, snapshot_frequency=3)]
        total: Annotated[int, operator.add]

    def add(state: State) -> dict[str, Any]:
        return {"items": [len(state["items"])], "total": 1}

    builder = StateGraph(State)
    builder.add_node("add", add)
    builder.add_edge(START, "add")
    builder.add_edge("add", END)
    graph = builder.compile(checkpointer=saver)
    for _ in range(7):
        await graph.ainvoke({"items": [], "total": 0}, thread("delta"))
    expected = (await graph.aget_state(thread("delta"))).values
    assert expected["total"] == 7 and len(expected["items"]) == 7

    await saver.aprune(["delta"])

    async with RedisCheckpointSaver.from_url(_url(saver)) as fresh:
        state = await builder.compile(checkpointer=fresh).aget_state(thread("delta"))
        assert state.values == expected
    remaining = [t async for t in saver.alist(thread("delta"))]
    assert len(remaining) < 14  # checkpoints older than the last snapshot are gone


async def test_sync_api_works_from_a_worker_thread_only(saver: RedisCheckpointSaver) -> None:
    graph = echo_graph(saver)
    await say(graph, "sync", "hello")
    latest = await asyncio.to_thread(saver.get_tuple, thread("sync"))
    assert latest is not None
    assert [m.content for m in latest.checkpoint["channel_values"]["messages"]] == [
        "hello",
        "echo: hello",
    ]
    assert len(await asyncio.to_thread(lambda: list(saver.list(thread("sync"))))) == 3
    with pytest.raises(asyncio.InvalidStateError, match="ainvoke"):
        saver.get_tuple(thread("sync"))


async def test_a_client_that_decodes_responses_is_rejected(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisCheckpointSaver(client)
    finally:
        await client.aclose()


async def test_copy_thread_gives_an_independent_conversation(
    saver: RedisCheckpointSaver,
) -> None:
    graph = echo_graph(saver)
    await say(graph, "original", "hello")
    await saver.acopy_thread("original", "copy")
    await say(graph, "copy", "only in the copy")
    assert await transcript(graph, "original") == ["hello", "echo: hello"]
    assert (await transcript(graph, "copy"))[:2] == ["hello", "echo: hello"]
    assert len(await transcript(graph, "copy")) == 4


async def test_deleting_a_run_rolls_the_thread_back(saver: RedisCheckpointSaver) -> None:
    graph = echo_graph(saver)
    await say(graph, "guest", "first", run_id="run-1")
    await say(graph, "guest", "second", run_id="run-2")
    blobs_key = "langgraph:{guest}:blobs"
    blobs_before = await saver.redis.hlen(blobs_key)

    await saver.adelete_for_runs(["run-2"])

    assert await transcript(graph, "guest") == ["first", "echo: first"]
    assert await saver.redis.hlen(blobs_key) < blobs_before
    runs = {t.metadata.get("run_id") async for t in saver.alist(thread("guest"))}
    assert runs == {"run-1"}


async def test_subgraph_interrupt_resumes_from_its_own_namespace(redis_url: str) -> None:
    class State(TypedDict):
        booking: str

    def confirm(state: State) -> dict[str, str]:
        return {"booking": f"spa: {interrupt('Confirm the spa at 5 pm?')}"}

    inner = StateGraph(State)
    inner.add_node("confirm", confirm)
    inner.add_edge(START, "confirm")
    inner.add_edge("confirm", END)
    outer = StateGraph(State)
    outer.add_node("book", inner.compile())
    outer.add_edge(START, "book")
    outer.add_edge("book", END)

    async with RedisCheckpointSaver.from_url(redis_url) as first:
        graph = outer.compile(checkpointer=first)
        await graph.ainvoke({"booking": ""}, thread("sub"))
        state = await graph.aget_state(thread("sub"), subgraphs=True)
        (task,) = state.tasks
        assert task.state is not None and task.interrupts[0].value == "Confirm the spa at 5 pm?"
        namespaces = {
            t.config["configurable"]["checkpoint_ns"]
            async for t in first.alist({"configurable": {"thread_id": "sub"}})
        }
        assert "" in namespaces and any(ns.startswith("book:") for ns in namespaces)

    async with RedisCheckpointSaver.from_url(redis_url) as second:
        graph = outer.compile(checkpointer=second)
        assert await graph.ainvoke(Command(resume="yes"), thread("sub")) == {"booking": "spa: yes"}


async def test_a_copy_fork_makes_an_older_checkpoint_the_latest_again(
    saver: RedisCheckpointSaver,
) -> None:
    graph = echo_graph(saver)
    await say(graph, "guest", "keep this")
    base = (await graph.aget_state(thread("guest"))).config
    await say(graph, "guest", "undo this")

    await graph.aupdate_state(base, None, as_node="__copy__")

    assert await transcript(graph, "guest") == ["keep this", "echo: keep this"]
    async with RedisCheckpointSaver.from_url(_url(saver)) as fresh:
        await say(echo_graph(fresh), "guest", "next")
        assert await transcript(echo_graph(fresh), "guest") == [
            "keep this",
            "echo: keep this",
            "next",
            "echo: next",
        ]


async def test_a_server_that_never_answers_times_out() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the bytes, never reply
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with RedisCheckpointSaver.from_url(
            f"redis://127.0.0.1:{port}/0", timeout=0.2
        ) as silent:
            with pytest.raises(TimeoutError):
                await silent.aget_tuple(thread("anyone"))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_bounded_thread_keeps_its_newest_checkpoints_and_drops_old_messages(
    redis_url: str,
) -> None:
    keep, length = 8, 20
    async with RedisCheckpointSaver.from_url(redis_url, max_checkpoints=keep) as saver:
        config: RunnableConfig = {"configurable": {"thread_id": "rolling", "checkpoint_ns": ""}}
        messages: list[AnyMessage] = []
        version = None
        ids = []
        for turn in range(300):
            # a window of the last 20 messages: older ones leave the thread for good
            messages = [*messages, HumanMessage(f"q{turn}", id=f"q{turn}")][-length:]
            version = saver.get_next_version(version, None)
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"messages": messages}
            checkpoint["channel_versions"] = {"messages": version}
            config = await saver.aput(
                config,
                checkpoint,
                {"source": "loop", "step": turn, "parents": {}},
                {"messages": version},
            )
            ids.append(checkpoint["id"])

        listed = [t.checkpoint["id"] async for t in saver.alist(thread("rolling"))]
        assert listed[:keep] == ids[::-1][:keep]  # the newest ones are all there
        assert len(listed) <= keep + keep // 2
        stored = await saver.redis.hlen("langgraph:{rolling}:messages")
        assert length <= stored <= 2 * length + 64 + keep  # old messages are reclaimed
    async with RedisCheckpointSaver.from_url(redis_url) as fresh:
        latest = await fresh.aget_tuple(thread("rolling"))
        assert latest is not None
        assert [m.content for m in latest.checkpoint["channel_values"]["messages"]] == [
            f"q{n}" for n in range(280, 300)
        ]
        oldest_kept = await fresh.aget_tuple(
            {"configurable": {"thread_id": "rolling", "checkpoint_id": listed[-1]}}
        )
        assert (
            oldest_kept is not None
            and len(oldest_kept.checkpoint["channel_values"]["messages"]) == 20
        )
