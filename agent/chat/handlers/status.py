"""`/status`: agent state, conversation id, turns, providers and the last turn's latency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.chat.access import Access
from agent.chat.handlers.text_args import no_args
from agent.chat.registry import CommandContext, CommandResult, CommandSpec

__all__ = ["status_command", "status_text"]


class StatusArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _seconds(value: Any) -> str:
    return f"{value * 1000:.0f} ms" if isinstance(value, int | float) else "—"


def status_text(status: Mapping[str, Any]) -> str:
    providers = status.get("providers") or {}
    lines = [
        f"Agent: {status.get('agent_state', 'unknown')}; caller: "
        f"{status.get('user_state', 'unknown')}",
        f"Conversation: {status.get('conversation_id', '—')} ({status.get('turns', 0)} turn(s))",
        f"Reply mode for typed messages: {status.get('reply_mode', '—')}",
    ]
    if providers:
        lines.append("Providers: " + ", ".join(f"{k} {v}" for k, v in providers.items()))
    latency = status.get("last_turn_latency")
    if isinstance(latency, Mapping):
        first = _seconds(latency.get("time_to_first_token"))
        graph = _seconds(latency.get("graph_time"))
        tools = _seconds(latency.get("tool_time"))
        total = _seconds(latency.get("total_time"))
        calls = latency.get("tool_calls", 0)
        lines.append(
            f"Last turn: first words {first}, graph {graph}, tools {tools} "
            f"({calls} call(s)), total {total}"
        )
    else:
        lines.append("Last turn: none yet")
    return "\n".join(lines)


async def _status(ctx: CommandContext, args: StatusArgs) -> CommandResult:
    status = ctx.services.conversation.status()
    return CommandResult(data=status, text=status_text(status))


def status_command() -> CommandSpec[StatusArgs]:
    return CommandSpec(
        name="status",
        summary="agent state, conversation id, turns, providers, last turn's latency",
        usage="/status",
        access=Access.STAFF,
        args_model=StatusArgs,
        handler=_status,
        from_text=no_args,
    )
