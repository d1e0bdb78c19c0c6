"""Fixtures for the agent tests: a real `langgraph dev` server with the test graphs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.langgraph_server import LangGraphDevServer, langgraph_dev
from tests.agent.remote_graphs import GRAPHS


@pytest.fixture(scope="session")
def langgraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LangGraphDevServer]:
    """`langgraph dev` on a free loopback port serving tests/agent/remote_graphs.py."""
    with langgraph_dev(GRAPHS, tmp_path_factory.mktemp("langgraph-dev")) as server:
        yield server
