"""`/status`: agent state, conversation id, turns, providers and the last turn's latency."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agent.chat.pipeline import Access, CommandContext, CommandResult, CommandSpec, no_args
from agent.chat.protocol import ReplyMode, Wire

__all__ = ["StatusReply", "command", "status_text"]


class StatusArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyData(Wire):
    time_to_first_token: float | None
    state_time: float
    graph_time: float
    tool_time: float
    tool_calls: int
    total_time: float


class StatusReply(Wire):
    agent_state: str
    user_state: str
    conversation_id: str
    turns: int
    resets: int
    reply_mode: ReplyMode
    awaiting_confirmation: bool
    providers: dict[str, str]
    last_turn_latency: LatencyData | None
    uptime_s: float


def _ms(value: float | None) -> str:
    return f"{value * 1000:.0f} ms" if value is not None else "—"


def status_text(status: StatusReply) -> str:
    lines = [
        f"Agent: {status.agent_state}; caller: {status.user_state}",
        f"Conversation: {status.conversation_id} ({status.turns} turn(s))",
        f"Reply mode for typed messages: {status.reply_mode.value}",
    ]
    if status.providers:
        lines.append("Providers: " + ", ".join(f"{k} {v}" for k, v in status.providers.items()))
    latency = status.last_turn_latency
    if latency is not None:
        lines.append(
            f"Last turn: first words {_ms(latency.time_to_first_token)}, graph "
            f"{_ms(latency.graph_time)}, tools {_ms(latency.tool_time)} "
            f"({latency.tool_calls} call(s)), total {_ms(latency.total_time)}"
        )
    else:
        lines.append("Last turn: none yet")
    return "\n".join(lines)


async def _status(ctx: CommandContext, args: StatusArgs) -> CommandResult:
    status = StatusReply.model_validate(ctx.services.conversation.status())
    return CommandResult(status, status_text(status))


command = CommandSpec(
    name="status",
    summary="agent state, conversation id, turns, providers, last turn's latency",
    usage="/status",
    access=Access.STAFF,
    args_model=StatusArgs,
    reply_model=StatusReply,
    handler=_status,
    from_text=no_args,
)
