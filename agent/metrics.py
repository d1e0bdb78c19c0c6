"""The project's Prometheus metrics: conversations, turns, tool calls and errors by stage.

They live on a `CollectorRegistry` the caller creates (one per job process, made in prewarm)
and passes down. LiveKit's worker serves `/metrics` on `PROMETHEUS_PORT` from its main
process; jobs run in child processes, so the worker is started in Prometheus multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`) and these values reach that same endpoint through the
per-process files, next to LiveKit's own `lk_agents_*` series.
"""

from __future__ import annotations

from typing import Any, Literal

from livekit.agents import AgentSession
from livekit.agents.llm import ChatMessage
from livekit.agents.voice.events import ConversationItemAddedEvent, ErrorEvent
from prometheus_client import CollectorRegistry, Counter, Histogram

from agent.graph_llm import ToolFinished

__all__ = ["Stage", "WorkerMetrics", "error_stage"]

Stage = Literal["metadata", "startup", "stt", "llm", "tts", "tool", "session"]

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ERROR_TYPE_STAGE: dict[str, Stage] = {
    "stt_error": "stt",
    "llm_error": "llm",
    "realtime_model_error": "llm",
    "tts_error": "tts",
}


def error_stage(error: Any) -> Stage:
    """The pipeline stage a LiveKit session error came from."""
    return _ERROR_TYPE_STAGE.get(str(getattr(error, "type", "")), "session")


class WorkerMetrics:
    """Counters and histograms for one process, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.conversations = Counter(
            "voice_agent_conversations",
            "Conversations started, by how they began (metadata ok or with problems).",
            ["metadata"],
            registry=registry,
        )
        self.turns = Counter(
            "voice_agent_turns",
            "Conversation turns added to the history, by speaker and whether cut off.",
            ["role", "interrupted"],
            registry=registry,
        )
        self.response_latency = Histogram(
            "voice_agent_response_latency_seconds",
            "End of the caller's speech to the start of the agent's reply.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tool_calls = Counter(
            "voice_agent_tool_calls",
            "Tool calls made by the brain, by tool and outcome.",
            ["tool", "outcome"],
            registry=registry,
        )
        self.tool_latency = Histogram(
            "voice_agent_tool_call_duration_seconds",
            "Wall time of one tool call.",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "voice_agent_errors",
            "Errors by pipeline stage.",
            ["stage", "recoverable"],
            registry=registry,
        )

    def conversation_started(self, *, metadata_ok: bool) -> None:
        self.conversations.labels(metadata="ok" if metadata_ok else "problems").inc()

    def turn(self, role: str, *, interrupted: bool = False) -> None:
        self.turns.labels(role=role, interrupted=str(interrupted).lower()).inc()

    def tool_call(self, tool: str, *, duration_s: float, ok: bool) -> None:
        self.tool_calls.labels(tool=tool, outcome="ok" if ok else "error").inc()
        self.tool_latency.labels(tool=tool).observe(max(duration_s, 0.0))

    def error(self, stage: Stage, *, recoverable: bool = False) -> None:
        self.errors.labels(stage=stage, recoverable=str(recoverable).lower()).inc()

    def observe_session(self, session: AgentSession[Any]) -> None:
        """Count the session's turns, reply latencies and errors as they happen."""

        def on_item(event: ConversationItemAddedEvent) -> None:
            item = event.item
            if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
                return
            self.turn(item.role, interrupted=item.interrupted)
            latency = item.metrics.get("e2e_latency") if item.role == "assistant" else None
            if latency is not None:
                self.response_latency.observe(latency)

        def on_error(event: ErrorEvent) -> None:
            self.error(
                error_stage(event.error),
                recoverable=bool(getattr(event.error, "recoverable", False)),
            )

        session.on("conversation_item_added", on_item)
        session.on("error", on_error)

    def observe_tools(self, graph_llm: Any) -> None:
        """Count the tool calls GraphLLM reports (`tool_finished` events) and their latency."""

        def on_finished(event: ToolFinished) -> None:
            self.tool_call(event.name, duration_s=event.duration, ok=event.ok)
            if not event.ok:
                self.error("tool", recoverable=True)

        if hasattr(graph_llm, "on"):
            graph_llm.on("tool_finished", on_finished)
