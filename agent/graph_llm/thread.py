"""What a graph thread lacks, given LiveKit's chat context — and what the caller really heard.

The checkpointed thread is the conversation's source of truth. Each turn GraphLLM sends
only the LiveKit items the thread has not seen (matched by LiveKit item id, which GraphLLM
uses as the LangChain message id), and, after a barge-in, a replacement for each assistant
message whose spoken text was cut short.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from livekit.agents import llm

__all__ = [
    "ChatDelta",
    "SpokenSegment",
    "conversation_delta",
    "heard_corrections",
    "instructions_text",
    "to_langchain",
    "turn_instructions",
]

# LiveKit's ids for the agent instructions messages ("lk.agent_task.instructions[.dynamic]")
_INSTRUCTIONS_ID_PREFIX = "lk.agent_task.instructions"
_ROLES = ("user", "assistant", "system", "developer")


@dataclass(frozen=True)
class SpokenSegment:
    """Text GraphLLM handed to TTS, in order; `message_id` is the thread AIMessage it came
    from, or None for lines GraphLLM added itself (filler, interrupt question, apology)."""

    message_id: str | None
    text: str


@dataclass(frozen=True)
class ChatDelta:
    anchor_id: str | None = None
    """Id of the newest LiveKit item the thread already has."""
    answer: list[llm.ChatMessage] = field(default_factory=list)
    """Assistant items answering the newest user message the thread already has."""
    new: list[llm.ChatMessage] = field(default_factory=list)
    """Items the thread lacks, oldest first."""


def _text(message: llm.ChatMessage) -> str:
    return (message.text_content or "").strip()


def _is_instructions(message: llm.ChatMessage) -> bool:
    return message.id.startswith(_INSTRUCTIONS_ID_PREFIX)


def instructions_text(chat_ctx: llm.ChatContext) -> str | None:
    """The agent's instructions: LiveKit's instructions items, else the leading system items."""
    messages = chat_ctx.messages()
    tagged = [_text(m) for m in messages if _is_instructions(m)]
    if tagged:
        return "\n\n".join(t for t in tagged if t)
    leading: list[str] = []
    for message in messages:
        if message.role not in ("system", "developer"):
            break
        leading.append(_text(message))
    return "\n\n".join(t for t in leading if t) or None


def _trailing_system(items: Sequence[llm.ChatMessage]) -> int:
    """Index where the system items after the last user/assistant item begin."""
    end = len(items)
    while end > 0 and items[end - 1].role in ("system", "developer"):
        end -= 1
    return end


def turn_instructions(chat_ctx: llm.ChatContext) -> str | None:
    """Instructions LiveKit appended for this reply only (``generate_reply(instructions=)``)."""
    items = chat_ctx.messages()
    if not any(m.role in ("user", "assistant") for m in items):
        return None
    trailing = [m for m in items[_trailing_system(items) :] if not _is_instructions(m)]
    return "\n\n".join(t for t in (_text(m) for m in trailing) if t) or None


def _conversation(chat_ctx: llm.ChatContext) -> list[llm.ChatMessage]:
    items = chat_ctx.messages()
    start = 0
    if not any(_is_instructions(m) for m in items):
        # untagged leading system items are the instructions, sent separately
        while start < len(items) and items[start].role in ("system", "developer"):
            start += 1
    if any(m.role in ("user", "assistant") for m in items):
        # trailing system items are one reply's instructions, never thread history
        items = items[: _trailing_system(items)]
    return [m for m in items[start:] if m.role in _ROLES and not _is_instructions(m) and _text(m)]


def conversation_delta(
    chat_ctx: llm.ChatContext,
    known_ids: Collection[str],
    *,
    history_floor: bool,
    answer_items: int = 1,
) -> ChatDelta:
    """Split LiveKit's history into the answer to the last known turn and what is new.

    One LiveKit reply is one assistant item, so at most `answer_items` assistant items
    after the last known user line are its answer; later ones (``session.say()`` lines)
    are new.

    With `history_floor` (a thread that just replaced another one mid-call) nothing before
    the last assistant item counts as new: the old thread's history stays with it.
    """
    items = _conversation(chat_ctx)
    last_known = next((i for i in range(len(items) - 1, -1, -1) if items[i].id in known_ids), None)
    if last_known is not None:
        cursor = last_known + 1
        answer: list[llm.ChatMessage] = []
        if items[last_known].role == "user":
            while (
                cursor < len(items)
                and items[cursor].role == "assistant"
                and len(answer) < answer_items
            ):
                answer.append(items[cursor])
                cursor += 1
        return ChatDelta(anchor_id=items[last_known].id, answer=answer, new=items[cursor:])
    if history_floor:
        last_assistant = next(
            (i for i in range(len(items) - 1, -1, -1) if items[i].role == "assistant"), None
        )
        return ChatDelta(new=items[last_assistant + 1 :] if last_assistant is not None else items)
    return ChatDelta(new=items)


def to_langchain(message: llm.ChatMessage) -> BaseMessage:
    """The LangChain message for a LiveKit chat item, keeping LiveKit's id."""
    text = _text(message)
    if message.role == "user":
        return HumanMessage(content=text, id=message.id)
    if message.role == "assistant":
        return AIMessage(content=text, id=message.id)
    return SystemMessage(content=text, id=message.id)


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _allocate_heard(spoken: Sequence[SpokenSegment], heard: str) -> dict[str, str]:
    """How much of each spoken AIMessage the caller heard, walking segments in order."""
    rest = _normalized(heard)
    result: dict[str, str] = {}
    for segment in spoken:
        said = _normalized(segment.text)
        if not said:
            continue
        rest = rest.lstrip()
        if rest.startswith(said):
            taken, rest = said, rest[len(said) :]
        elif said.startswith(rest):
            taken, rest = rest, ""
        else:
            # a TTS-aligned transcript can differ in form; fall back to position
            taken, rest = rest[: len(said)].strip(), rest[len(said) :]
        if segment.message_id is not None and taken:
            previous = result.get(segment.message_id)
            result[segment.message_id] = f"{previous} {taken}" if previous else taken
    return result


def heard_corrections(
    spoken: Sequence[SpokenSegment], heard: str, thread: Mapping[str, BaseMessage]
) -> list[BaseMessage]:
    """Replacements (same id) for thread AIMessages the caller heard only part of.

    A message heard not at all is removed, unless it carries tool calls (their results
    follow it in the thread), in which case only its text is emptied.
    """
    heard_by_id = _allocate_heard(spoken, heard)
    spoken_by_id: dict[str, str] = {}
    for segment in spoken:
        if segment.message_id is not None:
            previous = spoken_by_id.get(segment.message_id, "")
            spoken_by_id[segment.message_id] = f"{previous} {segment.text.strip()}".strip()
    corrections: list[BaseMessage] = []
    for message_id, said in spoken_by_id.items():
        original = thread.get(message_id)
        if not isinstance(original, AIMessage):
            continue
        heard_text = heard_by_id.get(message_id, "")
        if heard_text == _normalized(said):
            continue
        if not heard_text and not original.tool_calls:
            corrections.append(RemoveMessage(id=message_id))
        else:
            corrections.append(original.model_copy(update={"content": heard_text}))
    return corrections
