"""Shared helpers for the PMS tests: a fixed clock, tool invocation, a recording sleep."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from tools.pms.clock import fixed_clock

__all__ = ["NOW", "TODAY", "SleepRecorder", "call_tool", "clock", "tools_by_name"]

# Monday, March 10, 2025, afternoon in Europe and morning in Maine.
NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)
clock = fixed_clock(NOW)


def tools_by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


async def call_tool(
    tool: BaseTool, args: Mapping[str, Any], *, thread_id: str | None = "t1"
) -> ToolMessage:
    """Invoke a tool the way LangGraph's ToolNode does: a tool call plus a thread config."""
    config: dict[str, Any] = {}
    if thread_id is not None:
        config["configurable"] = {"thread_id": thread_id}
    result = await tool.ainvoke(
        {"type": "tool_call", "id": "call-1", "name": tool.name, "args": dict(args)},
        config=config,  # type: ignore[arg-type]
    )
    assert isinstance(result, ToolMessage)
    return result


class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
