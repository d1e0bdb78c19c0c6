"""GraphLLM: a compiled LangGraph graph with a `messages` channel as the LiveKit LLM.

    graph_llm = GraphLLM(graph, thread_id="conv-42", speaking_nodes=("model", "fallback"))
    session = AgentSession(llm=graph_llm, stt=..., tts=..., vad=...)

Compared with livekit-plugins-langchain's LLMAdapter it speaks only what speaking nodes
say, keeps the checkpointed thread as the single copy of the conversation (sending each
turn only what the thread lacks), remembers what the caller actually heard after a
barge-in, undoes discarded preemptive runs, reports token usage, answers LangGraph
`interrupt()`s, says a filler line during slow tools, and maps failures to LiveKit
APIErrors with the right `retryable` flag (`to_api_error`). See docs/graph-llm.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import httpx
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel.protocol import PregelProtocol
from langgraph.pregel.remote import RemoteGraph
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError, llm
from livekit.agents.llm import ToolChoice
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

from .builders import (
    check_messages_channel,
    default_speaking_nodes,
    graph_input_keys,
    may_write_custom_stream,
    side_effecting_tools,
    validate_speaking_nodes,
)
from .events import GraphLLMEvent, ToolFinished, ToolStarted, TurnLatency
from .speech import GraphFlush
from .threads import REMOTE_INPUT_KEYS, CheckpointerThreads, GraphThreads, ServerThreads
from .turn import GraphTurn, ThreadMemory, TurnOptions

__all__ = [
    "DEFAULT_APOLOGY",
    "DEFAULT_FILLER",
    "GraphLLM",
    "GraphLLMStream",
    "to_api_error",
]

logger = logging.getLogger(__name__)

DEFAULT_FILLER = "One moment, please."
DEFAULT_APOLOGY = "Sorry, something went wrong on my side. Could you say that again?"

_MESSAGE_LIMIT = 300

# -- failures as LiveKit API errors ------------------------------------------------------
# LiveKit's LLMStream retries `retryable` errors and FallbackAdapter switches LLMs on them;
# provider SDK errors are recognised by shape, so no provider SDK is imported here.


def to_api_error(exc: BaseException) -> APIError:
    """The LiveKit APIError that best describes `exc` (returned, not raised)."""
    if isinstance(exc, APIError):
        return exc
    message = _describe(exc)
    if _is_timeout(exc):
        return APITimeoutError(message, retryable=True)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        # LiveKit marks 4xx (except 408/429) as not retryable
        return APIStatusError(message, status_code=status, body=getattr(exc, "body", None))
    if _is_connection_error(exc):
        return APIConnectionError(message, retryable=True)
    # a bug in a node, a recursion limit, bad tool output: the same input fails the same way
    return APIError(message, retryable=False)


def _describe(exc: BaseException) -> str:
    text = f"graph run failed: {type(exc).__name__}: {exc}"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return True
    return any("Timeout" in name for name in _class_names(exc))


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | httpx.TransportError):
        return True
    return any("Connection" in name for name in _class_names(exc))


class GraphLLM(llm.LLM[GraphLLMEvent]):
    """Runs a checkpointed LangGraph graph as a LiveKit LLM, one graph run per turn.

    Events (LiveKit emitter API): ``"tool_started"`` → :class:`ToolStarted`,
    ``"tool_finished"`` → :class:`ToolFinished`, plus LiveKit's ``"metrics_collected"``
    and ``"error"``.
    """

    def __init__(
        self,
        graph: PregelProtocol[Any, Any, Any, Any],
        *,
        thread_id: str,
        speaking_nodes: Sequence[str] | None = None,
        model: str | None = None,
        provider: str | None = None,
        context: Mapping[str, Any] | None = None,
        tools: Sequence[BaseTool] = (),
        config: RunnableConfig | None = None,
        slow_tool_threshold: float = 0.7,
        filler_text: str | None = DEFAULT_FILLER,
        apology_text: str | None = DEFAULT_APOLOGY,
        turn_timeout: float = 30.0,
        state_timeout: float = 5.0,
        turn_lock: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
        node_speech: bool | None = None,
    ) -> None:
        """
        Args:
            graph: a compiled graph whose input has a ``messages`` key, compiled with a
                checkpointer (the thread lives there), or a ``RemoteGraph`` on a LangGraph
                Agent Server (the server keeps the thread; see ``threads.py``).
            thread_id: the conversation's thread; settable later (``/reset``).
            speaking_nodes: nodes whose AI text is spoken; ``"parent/child"`` names a node
                inside a subgraph, a bare parent name speaks its whole subgraph. None picks
                them for the builders GraphLLM recognises (create_agent, create_react_agent,
                langgraph-supervisor, langgraph-swarm) or a node called ``model``.
            model, provider: reported to LiveKit metrics; discovered from the graph's chat
                model calls when not given.
            context: initial conversation facts sent to a graph with a ``context`` key.
            tools: the graph's tools, for side-effect detection when they do not sit in a
                LangGraph ``ToolNode``.
            config: extra RunnableConfig for every run (recursion_limit, tags, ...).
            slow_tool_threshold: seconds a tool may run before the filler line is said.
            filler_text: the filler line (once per turn); None disables it.
            apology_text: said when a turn fails for good; None raises silently, which
                lets a FallbackAdapter take over.
            turn_timeout: seconds one graph run may take.
            state_timeout: seconds a checkpointer read or rewind may take.
            turn_lock: ``turn_lock(thread_id)`` is entered around each turn (read, run,
                write), e.g. a lock shared by every process serving the conversation.
            node_speech: listen to LangGraph's custom stream for ``graph_llm.say`` /
                ``graph_llm.flush`` events; None turns it on when a node's code uses
                ``get_stream_writer`` or takes a ``writer`` argument.
        """
        super().__init__()
        threads: GraphThreads
        if isinstance(graph, RemoteGraph):
            # the server owns the checkpointer; its schema is only known over the network
            threads, input_keys = ServerThreads(graph), REMOTE_INPUT_KEYS
        else:
            checkpointer = getattr(graph, "checkpointer", None)
            if not isinstance(checkpointer, BaseCheckpointSaver):
                raise ValueError("GraphLLM needs a graph compiled with a checkpointer")
            threads, input_keys = CheckpointerThreads(graph, checkpointer), graph_input_keys(graph)
        if "messages" not in input_keys:
            raise ValueError("GraphLLM needs a graph whose input has a 'messages' key")
        check_messages_channel(graph)
        speaking = validate_speaking_nodes(
            graph, default_speaking_nodes(graph) if speaking_nodes is None else speaking_nodes
        )
        self._graph = graph
        self._threads = threads
        self._options = TurnOptions(
            speaking_nodes=speaking,
            input_keys=input_keys,
            slow_tool_threshold=slow_tool_threshold,
            filler_text=filler_text,
            turn_timeout=turn_timeout,
            state_timeout=state_timeout,
            config=config or {},
            node_speech=may_write_custom_stream(graph) if node_speech is None else node_speech,
        )
        self._apology_text = apology_text
        self._model = model
        self._provider = provider
        self._seen_model: str | None = None
        self._seen_provider: str | None = None
        self._context: dict[str, Any] = dict(context or {})
        self._side_effecting = side_effecting_tools(graph, tools)
        self._memory = ThreadMemory(thread_id=thread_id)
        self._turn_lock = asyncio.Lock()
        self._thread_lock = turn_lock or (lambda _thread_id: contextlib.nullcontext())
        self._last_latency: TurnLatency | None = None
        self._warned_tools = False

    # -- identity ------------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._model or self._seen_model or "unknown"

    @property
    def provider(self) -> str:
        return self._provider or self._seen_provider or "langgraph"

    # -- conversation --------------------------------------------------------------------

    @property
    def thread_id(self) -> str:
        return self._memory.thread_id

    @thread_id.setter
    def thread_id(self, value: str) -> None:
        """Switch threads (``/reset``): earlier LiveKit history stays with the old thread."""
        if value != self._memory.thread_id:
            self._memory = ThreadMemory(thread_id=value, history_floor=True)

    @property
    def context(self) -> Mapping[str, Any]:
        return dict(self._context)

    def update_context(self, facts: Mapping[str, Any]) -> None:
        """Merge conversation facts; the next turn sends them if the thread differs."""
        self._context.update(facts)

    @property
    def awaiting_confirmation(self) -> bool:
        """True while the thread is paused at an ``interrupt()`` waiting for the caller."""
        return self._memory.awaiting_confirmation

    @property
    def last_turn_latency(self) -> TurnLatency | None:
        return self._last_latency

    # -- speculative runs ----------------------------------------------------------------

    @property
    def side_effecting_tools(self) -> tuple[str, ...]:
        return self._side_effecting

    @property
    def preemptive_generation_safe(self) -> bool:
        """False when a side-effecting tool is bound: a preemptive run could call it.

        Pass it to the session: ``TurnHandlingOptions(preemptive_generation={"enabled":
        graph_llm.preemptive_generation_safe})``. Thread state is protected either way.
        """
        return not self._side_effecting

    # -- LiveKit LLM API -----------------------------------------------------------------

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> GraphLLMStream:
        if tools and not self._warned_tools:
            self._warned_tools = True
            logger.warning(
                "GraphLLM does not execute LiveKit function tools; bind tools in the graph "
                "(agent.tool_bridge converts the other way)",
                extra={"tools": [getattr(t, "id", str(t)) for t in tools]},
            )
        return GraphLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    def _new_turn(self, stream: GraphLLMStream, requested_at: float) -> GraphTurn:
        return GraphTurn(
            threads=self._threads,
            options=self._options,
            memory=self._memory,
            chat_ctx=stream.chat_ctx,
            context=self._context,
            sink=stream,
            requested_at=requested_at,
        )

    def _model_seen(self, provider: str | None, model: str | None) -> None:
        self._seen_provider = provider or self._seen_provider
        self._seen_model = model or self._seen_model


class GraphLLMStream(llm.LLMStream):
    """One LiveKit LLM request: one graph turn (LiveKit may retry it on retryable errors)."""

    def __init__(
        self,
        graph_llm: GraphLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(graph_llm, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._graph_llm = graph_llm
        self._requested_at = time.perf_counter()
        # a retry after text was spoken would repeat it
        self._retry_on_chunk_sent = False
        self._attempt = 0

    async def _run(self) -> None:
        self._attempt += 1
        owner = self._graph_llm
        turn = owner._new_turn(self, self._requested_at)
        try:
            async with owner._turn_lock, owner._thread_lock(turn.record.thread_id):
                await turn.run()
        except Exception as exc:
            error = to_api_error(exc)
            if self._event_ch.output_sent:
                error.retryable = False
            if (not error.retryable or self._attempt > self._conn_options.max_retry) and (
                owner._apology_text
            ):
                turn.say(owner._apology_text)
            logger.warning(
                "graph turn failed",
                extra={"thread_id": turn.record.thread_id, "error": str(error)},
            )
            if error is exc:
                raise
            raise error from exc
        finally:
            owner._last_latency = turn.latency()

    # -- where GraphTurn's output goes -----------------------------------------------------

    def text(self, chunk_id: str, text: str) -> None:
        self._event_ch.send_nowait(
            llm.ChatChunk(id=chunk_id, delta=llm.ChoiceDelta(role="assistant", content=text))
        )

    def flush(self, chunk_id: str) -> None:
        # duck-types a ChatChunk for every reader; LiveKit's pipeline flushes TTS on it
        self._event_ch.send_nowait(cast(llm.ChatChunk, GraphFlush(chunk_id)))

    def usage(self, chunk_id: str, usage: llm.CompletionUsage) -> None:
        self._event_ch.send_nowait(llm.ChatChunk(id=chunk_id, usage=usage))

    def tool_started(self, event: ToolStarted) -> None:
        self._graph_llm.emit("tool_started", event)

    def tool_finished(self, event: ToolFinished) -> None:
        self._graph_llm.emit("tool_finished", event)

    def model_seen(self, provider: str | None, model: str | None) -> None:
        self._graph_llm._model_seen(provider, model)
