"""`/reset`: start a new conversation thread, after a confirmation (`/reset confirm`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

from agent.chat.pipeline import (
    Access,
    ArgumentError,
    CommandContext,
    CommandError,
    CommandResult,
    CommandSpec,
)
from agent.chat.protocol import Absent, ErrorCode, EventType, ThreadResetData, Wire

__all__ = ["ResetReply", "command"]

_ACTION = "reset"
_CONFIRM_WORDS = frozenset({"confirm", "yes"})


class ResetArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: bool = False


class ResetReply(Wire):
    status: Literal["confirmation_required", "reset"]
    expires_in_s: float | SkipJsonSchema[None] = Absent
    conversation_id: str | SkipJsonSchema[None] = Absent
    previous_conversation_id: str | SkipJsonSchema[None] = Absent


def _from_text(text: str) -> dict[str, Any]:
    word = text.strip().lower()
    if not word:
        return {}
    if word in _CONFIRM_WORDS:
        return {"confirm": True}
    raise ArgumentError("the only argument is 'confirm'")


async def _reset(ctx: CommandContext, args: ResetArgs) -> CommandResult:
    confirmations = ctx.services.confirmations
    if not args.confirm:
        confirmations.ask(ctx.sender.identity, _ACTION)
        return CommandResult(
            ResetReply(status="confirmation_required", expires_in_s=confirmations.window_s),
            "This starts a new conversation: the agent forgets this one. "
            f"Send /reset confirm within {confirmations.window_s:.0f} seconds to go ahead.",
        )
    if not confirmations.take(ctx.sender.identity, _ACTION):
        raise CommandError(
            ErrorCode.NOTHING_TO_CONFIRM,
            "there is no reset waiting for confirmation; send /reset first",
        )
    previous = ctx.services.conversation.thread_id
    new_id = ctx.services.conversation.start_new_thread()
    ctx.services.events.emit(
        EventType.THREAD_RESET,
        ThreadResetData(conversation_id=new_id, previous_conversation_id=previous),
    )
    return CommandResult(
        ResetReply(status="reset", conversation_id=new_id, previous_conversation_id=previous),
        "Done: a new conversation has started.",
    )


command = CommandSpec(
    name="reset",
    summary="start a new conversation thread (asks to confirm first)",
    usage="/reset [confirm]",
    access=Access.STAFF,
    args_model=ResetArgs,
    reply_model=ResetReply,
    handler=_reset,
    from_text=_from_text,
)
