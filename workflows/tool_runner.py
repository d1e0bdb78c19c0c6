"""Run LangChain tool calls for the assistant graph: confirmation, timeouts, speakable errors.

Tool failures never raise out of here: each call yields a ToolMessage the model (or the
fallback responder) can turn into a sentence. Artifacts of successful calls may update the
conversation context (see `context_from_artifact`).
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError

from tools.artifacts import artifact_context
from workflows.state import ConversationContext

__all__ = [
    "ToolOutcome",
    "ToolRunner",
    "confirmation_question",
    "context_from_artifact",
    "declined_message",
    "is_side_effecting",
    "spoken_name",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One finished tool call: the message for the thread and what it taught the context."""

    message: ToolMessage
    context: ConversationContext


def spoken_name(name: str) -> str:
    return name.replace("_", " ").strip() or "tool"


def is_side_effecting(tool: BaseTool) -> bool:
    return bool((tool.metadata or {}).get("side_effecting"))


class _LenientArgs(dict[str, Any]):
    """Format mapping that renders missing or empty arguments as "that"."""

    def __missing__(self, key: str) -> str:
        return "that"


def confirmation_question(tool: BaseTool, args: Mapping[str, Any]) -> str:
    """The yes/no question for a side-effecting call, from metadata["confirm"] and its args."""
    template = (tool.metadata or {}).get("confirm")
    generic = f"Shall I go ahead and {spoken_name(tool.name)}?"
    if not isinstance(template, str) or not template.strip():
        return generic
    values = _LenientArgs(
        {k: v for k, v in args.items() if v is not None and not (isinstance(v, str) and not v)}
    )
    try:
        return string.Formatter().vformat(template, (), values)
    except (IndexError, KeyError, ValueError, AttributeError, TypeError):
        logger.warning("confirm template of tool %s does not format: %r", tool.name, template)
        return generic


def declined_message(call: ToolCall) -> ToolMessage:
    return ToolMessage(
        content=(
            f"Not done: the caller declined when asked to confirm {spoken_name(call['name'])}. "
            "Nothing was changed."
        ),
        tool_call_id=call["id"] or "",
        name=call["name"],
    )


def context_from_artifact(artifact: Any) -> ConversationContext:
    """What a tool's artifact tells the conversation context: its explicit `context` mapping
    (`tools.artifacts`), and nothing guessed from the rest of the artifact."""
    return cast(ConversationContext, artifact_context(artifact))


def _validation_summary(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        field = ".".join(str(part) for part in error.get("loc", ())) or "input"
        problems.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(problems)


class ToolRunner:
    """Runs tool calls against a fixed set of tools, each call bounded by a timeout."""

    def __init__(self, tools: Sequence[BaseTool], *, timeout_s: float) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._timeout_s = timeout_s

    def get(self, name: str) -> BaseTool | None:
        return self._tools.get(name)

    def has(self, name: str) -> bool:
        return name in self._tools

    @property
    def tools(self) -> tuple[BaseTool, ...]:
        return tuple(self._tools.values())

    def parameters(self, name: str) -> tuple[frozenset[str], frozenset[str]]:
        """(all, required) argument names the model would see for a tool."""
        tool = self._tools[name]
        schema = convert_to_openai_tool(tool)["function"].get("parameters", {})
        props = frozenset(schema.get("properties", {}))
        return props, frozenset(schema.get("required", ()))

    async def run(self, call: ToolCall, config: RunnableConfig) -> ToolOutcome:
        """Run one call; errors, timeouts and unknown tools become error ToolMessages."""
        call_id = call["id"] or ""
        tool = self._tools.get(call["name"])
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return self._error(
                call, f"There is no tool called {call['name']}. Available tools: {known}."
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await tool.ainvoke({**call, "type": "tool_call"}, config)
        except TimeoutError:
            logger.warning("tool %s timed out after %.1fs", tool.name, self._timeout_s)
            return self._error(
                call,
                f"The {spoken_name(tool.name)} tool took too long to answer, "
                "so that information is not available right now.",
            )
        except ValidationError as exc:
            return self._error(
                call,
                f"The {spoken_name(tool.name)} tool could not use those details "
                f"({_validation_summary(exc)}). Ask the caller for what is missing.",
            )
        except ToolException as exc:
            return self._error(
                call, str(exc) or f"The {spoken_name(tool.name)} tool could not help."
            )
        except Exception:
            logger.exception("tool %s failed", tool.name)
            return self._error(
                call,
                f"The {spoken_name(tool.name)} tool failed, "
                "so that information is not available right now.",
            )
        if isinstance(result, ToolMessage):
            message = result
            if not message.tool_call_id:
                message.tool_call_id = call_id
        else:
            message = ToolMessage(content=str(result), tool_call_id=call_id, name=tool.name)
        message.name = message.name or tool.name
        if message.status == "error":
            return ToolOutcome(message=message, context={})
        return ToolOutcome(message=message, context=context_from_artifact(message.artifact))

    async def run_many(
        self, calls: Sequence[ToolCall], config: RunnableConfig
    ) -> list[ToolOutcome]:
        """Read-only calls run concurrently; side-effecting ones one after another, in order."""
        outcomes: dict[int, ToolOutcome] = {}

        async def one(index: int, call: ToolCall) -> None:
            outcomes[index] = await self.run(call, config)

        async def in_order(indexed: list[tuple[int, ToolCall]]) -> None:
            for index, call in indexed:
                await one(index, call)

        serial = [
            (i, c)
            for i, c in enumerate(calls)
            if (tool := self._tools.get(c["name"])) is not None and is_side_effecting(tool)
        ]
        serial_ids = {i for i, _ in serial}
        parallel = [one(i, c) for i, c in enumerate(calls) if i not in serial_ids]
        await asyncio.gather(in_order(serial), *parallel)
        return [outcomes[i] for i in range(len(calls))]

    @staticmethod
    def _error(call: ToolCall, text: str) -> ToolOutcome:
        message = ToolMessage(
            content=text, tool_call_id=call["id"] or "", name=call["name"], status="error"
        )
        return ToolOutcome(message=message, context={})
