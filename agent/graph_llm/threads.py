"""Where a GraphLLM thread lives, and the few operations a turn needs from it.

Two homes exist: a graph compiled in the worker with a checkpointer (`CheckpointerThreads`)
and a graph deployed on a LangGraph Agent Server reached as a `RemoteGraph`
(`ServerThreads`). A turn reads the latest state, runs the graph streaming
`("messages", (message, metadata))` and `("interrupt", Interrupt)` parts, and rewinds the
thread to an earlier checkpoint when a run must not stand.

On a LangGraph Agent Server the server keeps the thread (its checkpointer, its
persistence); GraphLLM talks to it with the `langgraph_sdk` client the RemoteGraph holds:

* A GraphLLM thread id maps to one server thread: the id itself when it is a UUID, else a
  UUID5 of it, so every worker reaches the same server thread. It is created when missing.
* State and stream payloads arrive as JSON; messages are turned back into LangChain
  messages and interrupts into `Interrupt`s, so the turn logic is the local one.
* Tool progress comes from the run's `updates` stream (the server's callbacks do not cross
  the wire): a tool-calling AIMessage starts its calls, each ToolMessage finishes one; a call
  a run left waiting at an `interrupt()` is reported again when a resumed run returns its result.
* Rewinding a run first cancels whatever the server still runs on the thread, then copies
  the base checkpoint forward (LangGraph's `__copy__`), or deletes a thread that was empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, cast

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, messages_from_dict
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import INTERRUPT
from langgraph.pregel.protocol import PregelProtocol
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command, Interrupt, StateSnapshot, StreamMode
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError
from langgraph_sdk.schema import Checkpoint

from .events import ToolEventHandler, with_handler

__all__ = [
    "MODES",
    "NODE_SPEECH_MODES",
    "REMOTE_INPUT_KEYS",
    "CheckpointerThreads",
    "GraphThreads",
    "PausedSubgraphs",
    "ServerThreads",
    "StreamPart",
    "server_thread_id",
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
        stream = self._graph.astream(
            graph_input,
            with_handler(config, tools),
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


# -- threads on a LangGraph Agent Server ------------------------------------------------

REMOTE_INPUT_KEYS = frozenset({"messages", "instructions", "context"})
"""What GraphLLM may send a remote graph; keys its input schema lacks are dropped per run
(the schema is fetched from the server once, on the first run)."""

_THREAD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:livekit-langgraph-voice:graph-llm-thread")
_LIVE_RUN_STATUSES = ("pending", "running")
_CONFLICT_PAUSE = 0.1
_SERVER_METADATA_KEYS = frozenset({"thread_id", "assistant_id", "run_id", "cron_id"})


def server_thread_id(thread_id: str) -> str:
    """The server thread for a GraphLLM thread id (deterministic across workers)."""
    try:
        return str(uuid.UUID(thread_id))
    except ValueError:
        return str(uuid.uuid5(_THREAD_NAMESPACE, thread_id))


def _message(payload: Any) -> BaseMessage | None:
    if isinstance(payload, BaseMessage):
        return payload
    if isinstance(payload, Mapping) and isinstance(payload.get("type"), str):
        with contextlib.suppress(ValueError, TypeError):
            return messages_from_dict([{"type": payload["type"], "data": dict(payload)}])[0]
    return None


def _messages(payload: Any) -> list[BaseMessage]:
    items = payload if isinstance(payload, list | tuple) else [payload]
    return [m for m in map(_message, items) if m is not None]


def _interrupt(payload: Any) -> Interrupt | None:
    if isinstance(payload, Interrupt):
        return payload
    if isinstance(payload, Mapping) and "id" in payload:
        return Interrupt(value=payload.get("value"), id=str(payload["id"]))
    return None


class _ToolProgress:
    """Turns the tool calls and tool results of `updates` into tool callbacks, once each."""

    def __init__(self, handler: ToolEventHandler) -> None:
        self._handler = handler
        self._started: dict[str, uuid.UUID] = {}
        self._calls: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._finished: set[str] = set()
        self._resumed: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def update(self, messages: Iterable[BaseMessage]) -> None:
        for message in messages:
            if isinstance(message, AIMessage):
                for call in message.tool_calls:
                    self._start(call["name"], call.get("id") or "", call.get("args") or {})
            elif isinstance(message, ToolMessage):
                self._finish(message)

    def unfinished(self) -> dict[str, tuple[str, Mapping[str, Any]]]:
        return {
            **self._resumed,
            **{call_id: self._calls[call_id] for call_id in self._started},
        }

    def resume(self, calls: Mapping[str, tuple[str, Mapping[str, Any]]]) -> None:
        """Expect the calls a previous run stopped before (at an `interrupt()`): when one's
        result arrives it is reported started and finished (its real start is not streamed)."""
        self._resumed.update(calls)

    def _start(self, name: str, call_id: str, args: Mapping[str, Any]) -> None:
        if not call_id or call_id in self._started or call_id in self._finished:
            return
        run_id = uuid.uuid5(_THREAD_NAMESPACE, call_id)
        self._started[call_id] = run_id
        self._calls[call_id] = (name, args)
        self._handler.on_tool_start(
            {"name": name}, str(args), run_id=run_id, inputs=dict(args), tool_call_id=call_id
        )

    def _finish(self, message: ToolMessage) -> None:
        if (resumed := self._resumed.pop(message.tool_call_id, None)) is not None:
            self._start(resumed[0], message.tool_call_id, resumed[1])
        run_id = self._started.pop(message.tool_call_id, None)
        if run_id is None:
            return
        self._finished.add(message.tool_call_id)
        self._handler.on_tool_end(message, run_id=run_id)


class ServerThreads:
    """Threads of a graph served by a LangGraph Agent Server."""

    def __init__(self, graph: RemoteGraph) -> None:
        if graph.client is None:
            raise ValueError("GraphLLM needs a RemoteGraph with an async client (url= or client=)")
        self._graph = graph
        self._client: LangGraphClient = graph.client
        self._known: set[str] = set()
        self._accepted: frozenset[str] | None = None
        # tool calls a finished run left waiting at an interrupt, per server thread
        self._paused_calls: dict[str, dict[str, tuple[str, Mapping[str, Any]]]] = {}

    async def _ensure(self, thread_id: str) -> str:
        server_id = server_thread_id(thread_id)
        if server_id not in self._known:
            await self._client.threads.create(
                thread_id=server_id,
                if_exists="do_nothing",
                metadata={"graph_llm_thread_id": thread_id},
            )
            self._known.add(server_id)
        return server_id

    async def _accepted_keys(self) -> frozenset[str]:
        """Top-level keys of the served graph's input schema (plus `messages`)."""
        if self._accepted is None:
            assistant_id = await self._assistant_uuid()
            properties: Mapping[str, Any] = {}
            if assistant_id is not None:
                schemas = await self._client.assistants.get_schemas(assistant_id)
                # the server reports no input schema when it cannot derive one; input = state then
                schema = schemas.get("input_schema") or schemas.get("state_schema") or {}
                properties = schema.get("properties") or {}
            self._accepted = frozenset(properties) | {"messages"}
        return self._accepted

    async def _assistant_uuid(self) -> str | None:
        """The assistant's UUID; a RemoteGraph may name a graph instead (its default assistant)."""
        with contextlib.suppress(ValueError):
            return str(uuid.UUID(self._graph.assistant_id))
        found = await self._client.assistants.search(graph_id=self._graph.assistant_id, limit=1)
        return str(found[0]["assistant_id"]) if found else None

    async def _accepted_input(
        self, graph_input: dict[str, Any] | Command[Any]
    ) -> dict[str, Any] | Command[Any]:
        accepted = await self._accepted_keys()
        if isinstance(graph_input, Command):
            if not isinstance(graph_input.update, Mapping):
                return graph_input
            update = {k: v for k, v in graph_input.update.items() if k in accepted}
            return dataclasses.replace(graph_input, update=update or None)
        return {k: v for k, v in graph_input.items() if k in accepted}

    async def read(self, config: RunnableConfig) -> StateSnapshot:
        thread_id = str(config.get("configurable", {})["thread_id"])
        server_id = await self._ensure(thread_id)
        try:
            state: Mapping[str, Any] = await self._client.threads.get_state(server_id)
        except NotFoundError:
            # deleted on the server meanwhile (its TTL, an operator): start it afresh
            self._known.discard(server_id)
            state = await self._client.threads.get_state(await self._ensure(thread_id))
        values = dict(state.get("values") or {}) if isinstance(state.get("values"), dict) else {}
        if "messages" in values:
            values["messages"] = _messages(values["messages"])
        checkpoint = state.get("checkpoint") or {}
        configurable: dict[str, Any] = {"thread_id": thread_id}
        if checkpoint.get("checkpoint_id"):
            configurable["checkpoint_ns"] = checkpoint.get("checkpoint_ns", "")
            configurable["checkpoint_id"] = checkpoint["checkpoint_id"]
        pending = state.get("interrupts") or [
            item for task in state.get("tasks") or () for item in task.get("interrupts") or ()
        ]
        return StateSnapshot(
            values=values,
            next=tuple(state.get("next") or ()),
            config={"configurable": configurable},
            metadata=None,
            created_at=state.get("created_at"),
            parent_config=None,
            tasks=(),
            interrupts=tuple(i for i in map(_interrupt, pending) if i is not None),
        )

    async def _cancel_live_runs(self, server_id: str) -> None:
        """Stop runs the server still executes, so none writes after the rewind."""
        for status in _LIVE_RUN_STATUSES:
            for run in await self._client.runs.list(server_id, status=status):  # type: ignore[arg-type]
                with contextlib.suppress(NotFoundError, ConflictError):
                    await self._client.runs.cancel(server_id, run["run_id"], wait=True)

    async def paused_subgraphs(self, snapshot: StateSnapshot) -> PausedSubgraphs:
        # the server's checkpointer is out of reach; it resumes subgraphs from its own state
        return ()

    async def restore(
        self, thread_id: str, base: RunnableConfig | None, subgraphs: PausedSubgraphs = ()
    ) -> None:
        server_id = await self._ensure(thread_id)
        while True:  # bounded by the caller's state timeout
            await self._cancel_live_runs(server_id)
            try:
                await self._rewind(server_id, base)
                return
            except ConflictError:
                # a cancelled run was still winding down on the server
                await asyncio.sleep(_CONFLICT_PAUSE)

    async def _rewind(self, server_id: str, base: RunnableConfig | None) -> None:
        if base is None:
            await self._client.threads.delete(server_id)
            self._known.discard(server_id)
            return
        configurable = base.get("configurable", {})
        await self._client.threads.update_state(
            server_id,
            None,
            as_node="__copy__",
            checkpoint=Checkpoint(
                thread_id=server_id,
                checkpoint_ns=configurable.get("checkpoint_ns", ""),
                checkpoint_id=configurable["checkpoint_id"],
                checkpoint_map={},
            ),
        )

    async def run(
        self,
        graph_input: dict[str, Any] | Command[Any],
        config: RunnableConfig,
        tools: ToolEventHandler,
        *,
        custom: bool,
    ) -> AsyncIterator[StreamPart]:
        configurable = dict(config.get("configurable", {}))
        configurable["thread_id"] = await self._ensure(str(configurable["thread_id"]))
        server_config: RunnableConfig = {**config, "configurable": configurable}
        if "metadata" in config:
            # the server sets these itself and refuses runs that carry them
            metadata = config["metadata"]
            server_config["metadata"] = {
                k: v for k, v in metadata.items() if k not in _SERVER_METADATA_KEYS
            }
        progress = _ToolProgress(tools)
        paused = self._paused_calls.pop(configurable["thread_id"], {})
        if isinstance(graph_input, Command) and graph_input.resume is not None:
            progress.resume(paused)
        stream = self._graph.astream(
            await self._accepted_input(graph_input),
            server_config,
            stream_mode=list(NODE_SPEECH_MODES if custom else MODES),
            subgraphs=True,
            on_disconnect="cancel",  # a cancelled turn stops the server's run too
        )
        try:
            async for part in stream:
                _namespace, mode, data = cast(tuple[Any, str, Any], part)
                if mode == "messages":
                    payload, metadata = data
                    if (message := _message(payload)) is not None:
                        yield "messages", (message, dict(metadata or {}))
                elif mode == "custom":
                    yield "custom", data
                elif mode == "updates" and isinstance(data, Mapping):
                    for node, update in data.items():
                        if node == "__interrupt__":
                            for item in update or ():
                                if (pending := _interrupt(item)) is not None:
                                    yield "interrupt", pending
                        elif isinstance(update, Mapping) and "messages" in update:
                            progress.update(_messages(update["messages"]))
            if unfinished := progress.unfinished():
                self._paused_calls[configurable["thread_id"]] = unfinished
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
