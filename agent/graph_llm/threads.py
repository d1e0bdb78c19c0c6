"""Where a GraphLLM thread lives, and the few operations a turn needs from it.

Two homes exist: a graph compiled in the worker with a checkpointer (`CheckpointerThreads`)
and a graph deployed on a LangGraph Agent Server reached as a `RemoteGraph`
(`agent.graph_llm.remote.ServerThreads`). A turn reads the latest state, runs the graph
streaming `("messages", (message, metadata))` and `("interrupt", Interrupt)` parts, and
rewinds the thread to an earlier checkpoint when a run must not stand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command, Interrupt, StateSnapshot

from .events import ToolEventHandler

__all__ = ["CheckpointerThreads", "GraphThreads", "StreamPart"]

StreamPart = tuple[str, Any]
"""`("messages", (BaseMessage, metadata))`, `("interrupt", Interrupt)` or `("custom", data)`
(what nodes wrote with `get_stream_writer()`)."""


class GraphThreads(Protocol):
    """The thread operations of one graph turn, wherever the thread is stored."""

    async def read(self, config: RunnableConfig) -> StateSnapshot:
        """The latest state; `values["messages"]` holds LangChain messages."""
        ...

    async def restore(self, thread_id: str, base: RunnableConfig | None) -> None:
        """Make checkpoint `base` the latest again (None: the thread was empty)."""
        ...

    def run(
        self,
        graph_input: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        tools: ToolEventHandler,
    ) -> AsyncIterator[StreamPart]:
        """Run the graph once, reporting tool starts and finishes to `tools`."""
        ...


class CheckpointerThreads:
    """Threads of a graph compiled in the worker with a checkpointer."""

    def __init__(
        self, graph: PregelProtocol[Any, Any, Any, Any], checkpointer: BaseCheckpointSaver[Any]
    ) -> None:
        self._graph = graph
        self._checkpointer = checkpointer

    async def read(self, config: RunnableConfig) -> StateSnapshot:
        return await self._graph.aget_state(config)

    async def restore(self, thread_id: str, base: RunnableConfig | None) -> None:
        if base is None:
            await self._checkpointer.adelete_thread(thread_id)
        else:
            await self._graph.aupdate_state(base, None, as_node="__copy__")

    async def run(
        self,
        graph_input: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        tools: ToolEventHandler,
    ) -> AsyncIterator[StreamPart]:
        config = {**config}
        callbacks = config.get("callbacks")
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(tools, inherit=True)
            config["callbacks"] = manager
        else:
            config["callbacks"] = [*(callbacks or []), tools]
        stream = self._graph.astream(
            graph_input, config, stream_mode=["messages", "updates", "custom"], subgraphs=True
        )
        try:
            async for _namespace, mode, data in stream:
                if mode in ("messages", "custom"):
                    yield mode, data
                elif mode == "updates" and isinstance(data, dict):
                    for item in data.get("__interrupt__", ()):
                        if isinstance(item, Interrupt):
                            yield "interrupt", item
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
