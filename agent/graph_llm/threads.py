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
from langgraph.constants import INTERRUPT
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command, Interrupt, StateSnapshot, StreamMode

from .events import ToolEventHandler

__all__ = [
    "MODES",
    "NODE_SPEECH_MODES",
    "CheckpointerThreads",
    "GraphThreads",
    "PausedSubgraphs",
    "StreamPart",
]

PausedSubgraphs = tuple[tuple[str, RunnableConfig], ...]
"""`(task name, latest subgraph checkpoint)` of subgraph tasks paused at an interrupt."""

MODES: tuple[StreamMode, ...] = ("messages", "updates")
# "custom" carries a node's own speech (SAY_EVENT / FLUSH_EVENT); it costs LangGraph about a
# tenth of the time to first token, so it is on only for graphs that may use it
NODE_SPEECH_MODES: tuple[StreamMode, ...] = ("messages", "updates", "custom")

StreamPart = tuple[str, Any]
"""`("messages", (BaseMessage, metadata))`, `("interrupt", Interrupt)` or `("custom", data)`
(what nodes wrote with `get_stream_writer()`)."""


class GraphThreads(Protocol):
    """The thread operations of one graph turn, wherever the thread is stored."""

    async def read(self, config: RunnableConfig) -> StateSnapshot:
        """The latest state; `values["messages"]` holds LangChain messages."""
        ...

    async def paused_subgraphs(self, snapshot: StateSnapshot) -> PausedSubgraphs:
        """The latest checkpoint of each subgraph task of `snapshot` paused at an interrupt."""
        ...

    async def restore(
        self, thread_id: str, base: RunnableConfig | None, subgraphs: PausedSubgraphs = ()
    ) -> None:
        """Make checkpoint `base` the latest again (None: the thread was empty), with the
        paused `subgraphs` it had."""
        ...

    def run(
        self,
        graph_input: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        tools: ToolEventHandler,
        *,
        custom: bool,
    ) -> AsyncIterator[StreamPart]:
        """Run the graph once, reporting tool starts and finishes to `tools`; `custom` adds
        LangGraph's custom stream."""
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

    async def paused_subgraphs(self, snapshot: StateSnapshot) -> PausedSubgraphs:
        paused: list[tuple[str, RunnableConfig]] = []
        for task in snapshot.tasks:
            state = task.state
            if not task.interrupts or not isinstance(state, dict):
                continue
            if not state.get("configurable", {}).get("checkpoint_ns"):
                continue
            found = await self._checkpointer.aget_tuple(state)
            if found is not None:
                paused.append((task.name, found.config))
        return tuple(paused)

    async def restore(
        self, thread_id: str, base: RunnableConfig | None, subgraphs: PausedSubgraphs = ()
    ) -> None:
        if base is None:
            await self._checkpointer.adelete_thread(thread_id)
            return
        copied = await self._graph.aupdate_state(base, None, as_node="__copy__")
        if subgraphs:
            await self._restore_subgraphs(thread_id, subgraphs, copied)

    async def _restore_subgraphs(
        self, thread_id: str, subgraphs: PausedSubgraphs, copied: RunnableConfig
    ) -> None:
        """Give each paused subgraph its pre-run checkpoint under the copy's new task ids.

        A copy gets a new checkpoint id, hence new task ids and fresh subgraph namespaces;
        without this the sub-agent would start over instead of resuming where it paused.
        """
        snapshot: StateSnapshot = await self._graph.aget_state(copied)
        new_ids = {task.name: task.id for task in snapshot.tasks}
        for name, old in subgraphs:
            found = await self._checkpointer.aget_tuple(old)
            if found is None or name not in new_ids:
                continue
            target: RunnableConfig = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": f"{name}:{new_ids[name]}",
                    "checkpoint_id": None,
                }
            }
            saved = await self._checkpointer.aput(
                target, found.checkpoint, found.metadata, found.checkpoint["channel_versions"]
            )
            # only the question itself: other writes on it came from the discarded run
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in found.pending_writes or ():
                if channel == INTERRUPT:
                    by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                await self._checkpointer.aput_writes(saved, writes, task_id)

    async def run(
        self,
        graph_input: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        tools: ToolEventHandler,
        *,
        custom: bool,
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
            graph_input,
            config,
            stream_mode=list(NODE_SPEECH_MODES if custom else MODES),
            subgraphs=True,
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
