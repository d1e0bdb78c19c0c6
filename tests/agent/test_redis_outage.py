"""While Redis is down mid-call (frozen, or refusing connections) a turn ends at once with
the apology instead of leaving the caller in silence for seconds of timeouts and retries.
The precise timing is measured by `benchmarks/redis_outage.py`; here the bound only
separates "answered promptly" from "hung in 5 s timeouts and retries" (over 20 s before)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _worker_fakes import clear_worker_env
from livekit.agents import Agent, AgentSession, APIError

from agent.brain import build_brain
from agent.graph_llm import DEFAULT_APOLOGY
from agent.metadata import DispatchMetadata
from agent.settings import WorkerSettings
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_redis: Callable[..., RedisProcess]
) -> None:
    clear_worker_env(monkeypatch)
    redis = start_redis("--appendonly", "yes")
    settings = WorkerSettings(  # type: ignore[call-arg]
        _env_file=None, DATA_DIR=tmp_path, REDIS_URL=redis.url, EMBEDDINGS_PROVIDER="hashing"
    )
    async with contextlib.AsyncExitStack() as stack:
        brain = await build_brain(
            settings,
            DispatchMetadata(property_id="casa-del-sol"),
            room_name="r",
            caller_identity="c",
            stack=stack,
        )
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
