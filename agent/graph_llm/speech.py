"""Which graph output may be spoken, token usage, speech-segment flushing, and what GraphLLM
says for a pending interrupt and resumes it with.

Speech discipline: a message from LangGraph's `messages` stream is spoken only when it is
an AIMessage(Chunk) produced inside a speaking node. A node is named by its path through
nested graphs (`"agent/model"`); a speaking entry matches that path or any prefix of it,
so `"agent"` speaks everything its subgraph says and `"agent/model"` only its model node.

Interrupts: plain `interrupt("question?")` / `interrupt({"question": ...})` values and
LangChain v1 `HumanInTheLoopMiddleware` requests (batched `HITLRequest` and per-call
`tool_approval`) are understood; a spoken yes/no becomes an approve/reject decision in the
middleware's format, anything else is asked again; a `{"type": "confirm"}` interrupt
(workflows.confirm) is resumed with True/False. The words themselves are
`workflows.confirm.spoken_yes_no`, the project's single yes/no vocabulary; lifting this
package alone means copying that one function (it imports only the standard library).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from livekit.agents import llm
from livekit.agents.types import FlushSentinel
from livekit.agents.voice import Agent, ModelSettings

# the project's one yes/no vocabulary (see the module docstring for why it is imported)
from workflows.confirm import spoken_yes_no

__all__ = [
    "FLUSH_MARKER",
    "UNCLEAR",
    "GraphFlush",
    "SpeechFilter",
    "UsageTally",
    "flush_chunk",
    "graph_llm_node",
    "interrupt_question",
    "is_handoff",
    "resume_value",
    "speech_segments",
    "spoken_yes_no",
]

_HANDOFF_BACK = "__is_handoff_back"  # langgraph-supervisor's marker on its handoff messages

FLUSH_MARKER = "graph_llm_flush"
"""`ChoiceDelta.extra` key of a content-less chunk marking a point where speech should be
flushed to TTS (before a pause, e.g. while a tool runs)."""


class SpeechFilter:
    """Decides whether a streamed message belongs to a speaking node (one per turn: it
    caches by checkpoint namespace, which is unique per task)."""

    def __init__(self, speaking_nodes: Sequence[str]) -> None:
        self._paths = tuple(tuple(p for p in node.split("/") if p) for node in speaking_nodes)
        self._cache: dict[str, bool] = {}

    @staticmethod
    def node_path(metadata: Mapping[str, Any]) -> tuple[str, ...]:
        """Node names from the root graph down to the node that produced the message."""
        namespace = str(metadata.get("langgraph_checkpoint_ns") or "")
        path = tuple(part.split(":", 1)[0] for part in namespace.split("|") if part)
        if path:
            return path
        node = metadata.get("langgraph_node")
        return (str(node),) if node else ()

    def is_speaking(self, metadata: Mapping[str, Any]) -> bool:
        key = str(metadata.get("langgraph_checkpoint_ns") or metadata.get("langgraph_node"))
        cached = self._cache.get(key)
        if cached is None:
            path = self.node_path(metadata)
            cached = any(path[: len(p)] == p for p in self._paths if p)
            self._cache[key] = cached
        return cached

    def speakable(self, message: BaseMessage, metadata: Mapping[str, Any]) -> str:
        """The text of `message` that may reach TTS ("" for anything else)."""
        if not isinstance(message, AIMessage) or not self.is_speaking(metadata):
            return ""
        if is_handoff(message):
            return ""
        # `.text` keeps only text blocks: tool-call argument chunks carry none
        return str(message.text)


def is_handoff(message: AIMessage) -> bool:
    """A multi-agent framework's own bookkeeping message ("Transferring back to ...")."""
    return bool((message.response_metadata or {}).get(_HANDOFF_BACK))


class GraphFlush(FlushSentinel):
    """A flush point that LiveKit's voice pipeline obeys as a `FlushSentinel` while every
    other reader of an LLM stream (collect, FallbackAdapter, metrics) sees an empty chunk."""

    delta: llm.ChoiceDelta | None = None
    usage: llm.CompletionUsage | None = None

    def __init__(self, chunk_id: str) -> None:
        self.id = chunk_id

    def has_response(self) -> bool:
        return False


class UsageTally:
    """Sums `usage_metadata` over every model call of a turn, speaking or not."""

    def __init__(self) -> None:
        self._usage: UsageMetadata | None = None

    def add(self, message: BaseMessage) -> None:
        if isinstance(message, AIMessage) and message.usage_metadata:
            self._usage = add_usage(self._usage, message.usage_metadata)

    def completion_usage(self) -> llm.CompletionUsage | None:
        if self._usage is None:
            return None
        usage = self._usage
        input_details = usage.get("input_token_details") or {}
        output_details = usage.get("output_token_details") or {}
        cache_read = int(input_details.get("cache_read") or 0)
        return llm.CompletionUsage(
            completion_tokens=usage["output_tokens"],
            prompt_tokens=usage["input_tokens"],
            prompt_cached_tokens=cache_read,
            cache_creation_tokens=int(input_details.get("cache_creation") or 0),
            cache_read_tokens=cache_read,
            reasoning_tokens=int(output_details.get("reasoning") or 0),
            total_tokens=usage["total_tokens"],
        )


def flush_chunk(chunk_id: str) -> llm.ChatChunk:
    return llm.ChatChunk(
        id=chunk_id, delta=llm.ChoiceDelta(role="assistant", extra={FLUSH_MARKER: True})
    )


async def speech_segments(
    chunks: AsyncIterable[llm.ChatChunk | str | FlushSentinel],
) -> AsyncIterator[llm.ChatChunk | str | FlushSentinel]:
    """Turn GraphLLM's flush markers into LiveKit `FlushSentinel`s.

    Sentence-splitting TTS holds the last sentence until more text arrives; a sentinel
    makes LiveKit synthesize it now, so "One moment." is heard while a slow tool runs.
    """
    async for chunk in chunks:
        if (
            isinstance(chunk, llm.ChatChunk)
            and chunk.delta is not None
            and chunk.delta.extra
            and FLUSH_MARKER in chunk.delta.extra
        ):
            yield FlushSentinel()
            continue
        yield chunk


def graph_llm_node(
    agent: Agent,
    chat_ctx: llm.ChatContext,
    tools: list[llm.Tool],
    model_settings: ModelSettings,
) -> AsyncIterator[llm.ChatChunk | str | FlushSentinel]:
    """An `Agent.llm_node` for GraphLLM: the default node with speech flushing.

    Use it from an Agent subclass::

        def llm_node(self, chat_ctx, tools, model_settings):
            return graph_llm_node(self, chat_ctx, tools, model_settings)
    """
    return speech_segments(Agent.default.llm_node(agent, chat_ctx, tools, model_settings))


_DEFAULT_QUESTION = "Could you confirm that for me?"
_HITL_DEFAULT_PREFIX = "Tool execution requires approval"
UNCLEAR: Any = object()
"""`resume_value` result for an answer the interrupt cannot take (ask again)."""


def _is_hitl_request(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list)


def _is_confirm(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "confirm"


def _is_tool_approval(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_approval"


def _action_phrase(action: Any) -> str:
    if not isinstance(action, dict):
        return "that"
    description = action.get("description")
    if (
        isinstance(description, str)
        and description.strip()
        and not description.startswith(_HITL_DEFAULT_PREFIX)
    ):
        return description.strip().rstrip("?.")
    return str(action.get("name") or "that").replace("_", " ")


def interrupt_question(value: Any) -> str:
    """The sentence to speak for an interrupt value."""
    if _is_tool_approval(value):
        return f"Shall I go ahead with {_action_phrase(value)}?"
    if _is_hitl_request(value):
        phrases = [_action_phrase(a) for a in value["action_requests"]]
        return f"Shall I go ahead with {' and '.join(dict.fromkeys(phrases)) or 'that'}?"
    if isinstance(value, dict):
        for key in ("question", "message", "text"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    if isinstance(value, str) and value.strip():
        return value
    return _DEFAULT_QUESTION


def _decision(answer: str, approved: bool) -> dict[str, Any]:
    if approved:
        return {"type": "approve"}
    return {"type": "reject", "message": f"The caller declined: {answer}"}


def resume_value(value: Any, answer: str, response_schema: Any = None) -> Any:
    """What to resume an interrupt with, given the caller's words; `UNCLEAR` to ask again."""
    if _is_confirm(value):
        # a confirmation that is not a clear yes is a no, as workflows.confirm has always read it
        return spoken_yes_no(answer) is True
    if _is_tool_approval(value) or _is_hitl_request(value) or _wants_boolean(response_schema):
        approved = spoken_yes_no(answer)
        if approved is None:
            return UNCLEAR
        if _is_tool_approval(value):
            return _decision(answer, approved)
        if _is_hitl_request(value):
            return {"decisions": [_decision(answer, approved) for _ in value["action_requests"]]}
        return approved
    return answer


def _wants_boolean(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "boolean"
