"""Fixtures for the agent tests: a real `langgraph dev` server with the test graphs, and the
worker's own brain built from settings alone."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _worker_fakes import WorkerBrain, clear_worker_env

from agent.brain import Brain, build_brain
from agent.metadata import DispatchMetadata
from agent.settings import WorkerSettings
from tests.agent.langgraph_server import LangGraphDevServer, langgraph_dev
from tests.agent.remote_graphs import GRAPHS


@pytest.fixture(scope="session")
def langgraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LangGraphDevServer]:
    """`langgraph dev` on a free loopback port serving tests/agent/remote_graphs.py."""
    with langgraph_dev(GRAPHS, tmp_path_factory.mktemp("langgraph-dev")) as server:
        yield server


@pytest.fixture
def worker_brain(monkeypatch: pytest.MonkeyPatch) -> WorkerBrain:
    """`async with worker_brain(DATA_DIR=..., ...) as brain`: the worker's brain for one call
    at casa-del-sol, from exactly these settings (the developer's shell cannot leak in)."""
    clear_worker_env(monkeypatch)

    @contextlib.asynccontextmanager
    async def build(**settings: Any) -> AsyncIterator[Brain]:
        worker = WorkerSettings(_env_file=None, **settings)
        async with contextlib.AsyncExitStack() as stack:
            yield await build_brain(
                worker,
                DispatchMetadata(property_id="casa-del-sol"),
                room_name="r",
                caller_identity="c",
                stack=stack,
            )

    return build
