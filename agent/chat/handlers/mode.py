"""`/mode [voice|text|both]`: how the agent answers typed messages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from agent.chat.pipeline import Access, CommandContext, CommandResult, CommandSpec, one_word
from agent.chat.protocol import EventType, ReplyMode, ReplyModeData, Wire

__all__ = ["ModeReply", "command"]

_DESCRIPTIONS = {
    ReplyMode.VOICE: "spoken only",
    ReplyMode.TEXT: "as text only",
    ReplyMode.BOTH: "spoken and as text",
}


class ModeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ReplyMode | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ModeReply(Wire):
    mode: ReplyMode
    changed: bool


async def _mode(ctx: CommandContext, args: ModeArgs) -> CommandResult:
    conversation = ctx.services.conversation
    if args.mode is None:
        current = conversation.reply_mode
        return CommandResult(
            ModeReply(mode=current, changed=False),
            f"Typed messages are answered {_DESCRIPTIONS[current]} ({current.value}).",
        )
    changed = args.mode != conversation.reply_mode
    conversation.reply_mode = args.mode
    if changed:
        ctx.services.events.emit(EventType.REPLY_MODE, ReplyModeData(mode=args.mode))
    return CommandResult(
        ModeReply(mode=args.mode, changed=changed),
        f"Typed messages will be answered {_DESCRIPTIONS[args.mode]} ({args.mode.value}).",
    )


command = CommandSpec(
    name="mode",
    summary="answer typed messages by voice, text or both",
    usage="/mode [voice|text|both]",
    access=Access.CALLER,
    args_model=ModeArgs,
    reply_model=ModeReply,
    handler=_mode,
    from_text=one_word("mode"),
)
