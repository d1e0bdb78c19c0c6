"""While Redis is down mid-call (frozen, or refusing connections) a turn ends at once with
the apology instead of leaving the caller in silence for seconds of timeouts and retries.
The precise timing is measured by `benchmarks/redis_outage.py`; here the bound only
separates "answered promptly" from "hung in 5 s timeouts and retries" (over 20 s before)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _worker_fakes import WorkerBrain
from livekit.agents import Agent, AgentSession, APIError

from agent.graph_llm import DEFAULT_APOLOGY
from tests.redis_process import RedisProcess

NO_HANG_S = 12.0


async def apology_after(session: AgentSession, agent: Agent, text: str) -> float:
    started = time.monotonic()
    async with asyncio.timeout(60):  # a guard against a real hang
        with pytest.raises(APIError):
            await session.run(user_input=text)
    elapsed = time.monotonic() - started
    assert agent.chat_ctx.messages()[-1].text_content == DEFAULT_APOLOGY
    return elapsed


@pytest.mark.timeout(240)
async def test_a_frozen_then_refusing_redis_gets_the_apology_promptly(
    tmp_path: Path, worker_brain: WorkerBrain, start_redis: Callable[..., RedisProcess]
) -> None:
    redis = start_redis("--appendonly", "yes")
    async with worker_brain(
        DATA_DIR=tmp_path, REDIS_URL=redis.url, EMBEDDINGS_PROVIDER="hashing"
    ) as brain:
        assert brain.providers["checkpointer"] == "RedisCheckpointSaver"
        async with AgentSession(llm=brain.llm) as session:
            agent = Agent(instructions=brain.instructions)
            await session.start(agent)
            await session.run(user_input="What's the wifi password?")

            os.kill(redis.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
            try:
                frozen = await apology_after(session, agent, "And breakfast?")
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            redis.stop()  # now every connection is refused
            refused = await apology_after(session, agent, "Hello?")

    assert frozen < NO_HANG_S and refused < NO_HANG_S
