"""GraphLLM on the project's Redis checkpointer (a real redis-server from the fixture)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, ToolMessage
from livekit.agents import Agent, AgentSession

from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import (
    ROUTER_SECRET,
    ScriptedChatModel,
    add_transcript,
    build_router_graph,
    room_rate_tool,
    spoken,
    thread_messages,
    tool_call,
)
from workflows.checkpoint import open_checkpointer


async def test_turns_rewinds_and_resumes_on_redis(redis_url: str) -> None:
    lookup = AIMessage(
        "Let me check.", tool_calls=[tool_call("room_rate", {"room_type": "double"}, "c1")]
    )
    model = ScriptedChatModel(
        script=["Hello!", "Guess.", lookup, "It is 180 euros."], default="Bye."
    )
    async with open_checkpointer(redis_url=redis_url, sqlite_path=None) as saver:
        graph = build_router_graph(
            router=ScriptedChatModel(default=ROUTER_SECRET),
            model=model,
            tools=[room_rate_tool()],
            checkpointer=saver,
            confirm_before_tools=True,
        )
        graph_llm = GraphLLM(graph, thread_id="redis-thread")
        async with AgentSession(llm=graph_llm) as session:
            agent = Agent(instructions="Concierge.")
            await session.start(agent)
            await session.run(user_input="Hi")
            guess = agent.chat_ctx.copy()
            add_transcript(guess, "parking")
            await graph_llm.chat(chat_ctx=guess).collect()  # discarded speculative run
            asked = await session.run(user_input="How much is a double?")
            answered = await session.run(user_input="yes")

        messages = await thread_messages(graph, "redis-thread")

    assert spoken(asked).endswith("Shall I run room_rate for you?")
    assert spoken(answered) == "It is 180 euros."
    assert [m.content for m in messages if not isinstance(m, ToolMessage)] == [
        "Hi",
        "Hello!",
        "How much is a double?",
        "Let me check.",
        "It is 180 euros.",
    ]
    assert "Guess." not in str(messages)
