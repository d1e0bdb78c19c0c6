"""`/mode [voice|text|both]`: how the agent answers typed messages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from agent.chat.access import Access
from agent.chat.handlers.text_args import one_word
from agent.chat.protocol import EventType
from agent.chat.registry import CommandContext, CommandResult, CommandSpec
from agent.chat.reply_mode import ReplyMode

__all__ = ["mode_command"]

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


async def _mode(ctx: CommandContext, args: ModeArgs) -> CommandResult:
    conversation = ctx.services.conversation
    if args.mode is None:
        current = conversation.reply_mode
        return CommandResult(
            data={"mode": current.value, "changed": False},
            text=f"Typed messages are answered {_DESCRIPTIONS[current]} ({current.value}).",
        )
    changed = args.mode != conversation.reply_mode
    conversation.set_reply_mode(args.mode)
    if changed:
        ctx.services.events.emit(EventType.REPLY_MODE, {"mode": args.mode.value})
    return CommandResult(
        data={"mode": args.mode.value, "changed": changed},
        text=f"Typed messages will be answered {_DESCRIPTIONS[args.mode]} ({args.mode.value}).",
    )


def mode_command() -> CommandSpec[ModeArgs]:
    return CommandSpec(
        name="mode",
        summary="answer typed messages by voice, text or both",
        usage="/mode [voice|text|both]",
        access=Access.CALLER,
        args_model=ModeArgs,
        handler=_mode,
        from_text=one_word("mode"),
    )
