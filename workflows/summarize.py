"""Keep long calls fast: fold older turns into a running summary once the thread is too long."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.constants import TAG_NOSTREAM

from workflows.history import message_text
from workflows.prompts import SUMMARY_INSTRUCTIONS
from workflows.speech import first_sentences

__all__ = ["extractive_summary", "summarize_turns", "thread_tokens"]

logger = logging.getLogger(__name__)

_LINE_CHARS = 200


def thread_tokens(messages: Sequence[AnyMessage], summary: str) -> int:
    """Approximate prompt tokens of the thread plus its summary (about four chars per token)."""
    return count_tokens_approximately(messages) + len(summary) // 4


def _transcript_lines(messages: Sequence[AnyMessage]) -> list[str]:
    lines: list[str] = []
    for message in messages:
        text = message_text(message)
        if isinstance(message, HumanMessage) and text:
            lines.append(f"Caller: {first_sentences(text, _LINE_CHARS)}")
        elif isinstance(message, AIMessage):
            if text:
                lines.append(f"Assistant: {first_sentences(text, _LINE_CHARS)}")
            for call in message.tool_calls:
                lines.append(f"Assistant used {call['name'].replace('_', ' ')}.")
        elif isinstance(message, ToolMessage) and text and message.status != "error":
            lines.append(f"Result: {first_sentences(text, _LINE_CHARS)}")
    return lines


def _keep_tail(text: str, max_chars: int) -> str:
    """The most recent part of `text` within `max_chars`, starting at a line boundary."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail


def extractive_summary(previous: str, older: Sequence[AnyMessage], max_chars: int) -> str:
    """A deterministic summary: the previous one plus compact transcript lines, newest kept."""
    lines = [previous.strip()] if previous.strip() else []
    lines += _transcript_lines(older)
    return _keep_tail("\n".join(lines), max_chars)


async def summarize_turns(
    *,
    model: BaseChatModel | None,
    previous: str,
    older: Sequence[AnyMessage],
    max_chars: int,
    timeout_s: float,
    config: RunnableConfig,
) -> str:
    """Summarise with the model when there is one; otherwise, or when it fails, extractively."""
    if model is None:
        return extractive_summary(previous, older, max_chars)
    transcript = "\n".join(_transcript_lines(older))
    prompt = [
        SystemMessage(SUMMARY_INSTRUCTIONS.format(max_words=max(max_chars // 6, 20))),
        HumanMessage(
            f"Previous notes:\n{previous.strip() or '(none)'}\n\nTranscript:\n{transcript}"
        ),
    ]
    quiet = merge_configs(config, {"tags": [TAG_NOSTREAM], "run_name": "summarize_turns"})
    try:
        async with asyncio.timeout(timeout_s):
            reply = await model.ainvoke(prompt, quiet)
    except Exception:
        logger.warning("summary model call failed; using the extractive summary", exc_info=True)
        return extractive_summary(previous, older, max_chars)
    text = " ".join(message_text(reply).split())
    if not text:
        return extractive_summary(previous, older, max_chars)
    return first_sentences(text, max_chars)
