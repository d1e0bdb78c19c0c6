"""Message-thread helpers: turn boundaries and keeping tool calls paired with their results."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage

__all__ = [
    "current_turn",
    "last_user_text",
    "message_text",
    "pending_tool_call_ids",
    "repair_tool_pairs",
    "split_for_summary",
]

_NOT_RUN = "Not run: the conversation moved on before this tool call finished."


def message_text(message: BaseMessage) -> str:
    """The plain text of a message, whatever its content shape."""
    return message.text.strip()


def _last_human_index(messages: Sequence[BaseMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return None


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """Messages from the caller's latest message to the end."""
    index = _last_human_index(messages)
    return list(messages[index:]) if index is not None else list(messages)


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    index = _last_human_index(messages)
    return message_text(messages[index]) if index is not None else ""


def _call_ids(message: AIMessage) -> list[str]:
    ids = [call["id"] for call in message.tool_calls if call.get("id")]
    ids += [call["id"] for call in message.invalid_tool_calls if call.get("id")]
    return [i for i in ids if i]


def pending_tool_call_ids(messages: Sequence[BaseMessage]) -> list[str]:
    """Tool call ids of the last AI message that have no ToolMessage after it yet."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, AIMessage):
            answered = {m.tool_call_id for m in messages[index + 1 :] if isinstance(m, ToolMessage)}
            return [i for i in _call_ids(message) if i not in answered]
    return []


def repair_tool_pairs(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """A copy where every tool call has a result and every result follows its call.

    Chat APIs reject a thread with an unanswered tool call (a run that stopped at a
    confirmation the caller never answered) or an orphaned result (an assistant message
    replaced after a barge-in). The stored thread is left as it is.
    """
    repaired: list[AnyMessage] = []
    open_ids: dict[str, str] = {}

    def close_open() -> None:
        for call_id, name in open_ids.items():
            repaired.append(ToolMessage(content=_NOT_RUN, tool_call_id=call_id, name=name))
        open_ids.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            if open_ids.pop(message.tool_call_id, None) is not None:
                repaired.append(message)
            continue
        close_open()
        repaired.append(message)
        if isinstance(message, AIMessage):
            names = {c["id"]: c["name"] for c in message.tool_calls if c.get("id")}
            names.update(
                {c["id"]: c.get("name") or "tool" for c in message.invalid_tool_calls if c["id"]}
            )
            open_ids.update({k: v for k, v in names.items() if k})
    close_open()
    return repaired


def split_for_summary(
    messages: Sequence[AnyMessage], keep_last: int
) -> tuple[list[AnyMessage], list[AnyMessage]]:
    """(older, kept): kept starts at a caller message, so no tool call is cut from its result.

    Kept is the last `keep_last` messages moved forward to the next caller message, and
    always includes the current turn even when that turn alone is longer.
    """
    if not messages:
        return [], []
    start = max(len(messages) - max(keep_last, 1), 0)
    latest_human = _last_human_index(messages)
    cut = next(
        (i for i in range(start, len(messages)) if isinstance(messages[i], HumanMessage)),
        latest_human,
    )
    if cut is None:
        return [], list(messages)
    return list(messages[:cut]), list(messages[cut:])
