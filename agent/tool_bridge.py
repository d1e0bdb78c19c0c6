"""Expose LangChain tools as LiveKit function tools, unchanged.

The same tool objects then serve both modes: inside the LangGraph graph (GraphLLM), or
directly with a plain LiveKit LLM, e.g. `AgentSession(llm=openai.LLM(...))` with
`Agent(tools=langchain_to_livekit_tools(tools, thread_id=...))`. The LiveKit tool has the
tool's own name, description and JSON schema (exactly what `bind_tools` sends the model);
injected arguments such as `config` stay out of the schema, and each call gets a
`RunnableConfig` whose `configurable.thread_id` names the conversation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from livekit.agents.llm import RawFunctionTool, ToolError, function_tool

__all__ = [
    "ConfirmHook",
    "ThreadIdSource",
    "langchain_to_livekit",
    "langchain_to_livekit_tools",
    "livekit_schema",
]

logger = logging.getLogger(__name__)

ThreadIdSource = str | Callable[[], str | None] | None
# Asked before a side-effecting tool runs; False means the caller declined.
ConfirmHook = Callable[[str], Awaitable[bool]]


def livekit_schema(tool: BaseTool) -> dict[str, Any]:
    """{"name", "description", "parameters"}: the OpenAI function schema of the tool."""
    function = convert_to_openai_tool(tool)["function"]
    return {
        "name": function["name"],
        "description": function.get("description", ""),
        "parameters": function.get("parameters", {"type": "object", "properties": {}}),
    }


def _thread(source: ThreadIdSource) -> str | None:
    return source() if callable(source) else source


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c if isinstance(c, str) else str(c.get("text", "")) for c in content]
        return " ".join(p for p in parts if p)
    return str(content)


def _confirm_question(tool: BaseTool, args: dict[str, Any]) -> str | None:
    metadata = tool.metadata or {}
    if not metadata.get("side_effecting"):
        return None
    template = str(metadata.get("confirm") or f"Shall I go ahead with {tool.name}?")
    try:
        return template.format(**args)
    except (KeyError, IndexError, ValueError):
        return template


def langchain_to_livekit(
    tool: BaseTool,
    *,
    thread_id: ThreadIdSource = None,
    confirm: ConfirmHook | None = None,
    timeout_s: float | None = 30.0,
) -> RawFunctionTool:
    """One LangChain tool as a LiveKit raw function tool.

    `thread_id` (a string or a callable read at each call) becomes
    `config["configurable"]["thread_id"]`. `confirm`, when given, is awaited with the tool's
    confirmation question before a side-effecting tool runs.
    """
    schema = livekit_schema(tool)

    async def call(raw_arguments: dict[str, Any]) -> str:
        args = dict(raw_arguments)
        question = _confirm_question(tool, args)
        if question is not None and confirm is not None and not await confirm(question):
            return "The caller declined, so nothing was done."
        config: RunnableConfig = {"run_name": tool.name}
        thread = _thread(thread_id)
        if thread:
            config["configurable"] = {"thread_id": thread}
        tool_call = {
            "type": "tool_call",
            "id": f"lk_{uuid.uuid4().hex[:12]}",
            "name": tool.name,
            "args": args,
        }
        try:
            async with asyncio.timeout(timeout_s):
                result = await tool.ainvoke(tool_call, config=config)
        except TimeoutError as exc:
            raise ToolError(f"{tool.name} took too long; please try again.") from exc
        except Exception as exc:
            logger.exception("tool %s failed", tool.name)
            raise ToolError(f"{tool.name} failed: {type(exc).__name__}") from exc
        return _text(result.content if isinstance(result, ToolMessage) else result)

    return function_tool(call, raw_schema=schema)


def langchain_to_livekit_tools(
    tools: Sequence[BaseTool],
    *,
    thread_id: ThreadIdSource = None,
    confirm: ConfirmHook | None = None,
    timeout_s: float | None = 30.0,
) -> list[RawFunctionTool]:
    return [
        langchain_to_livekit(t, thread_id=thread_id, confirm=confirm, timeout_s=timeout_s)
        for t in tools
    ]
