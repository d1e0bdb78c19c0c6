"""`/help [command]`: the commands this participant may use, with one-line usage each."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.chat.pipeline import (
    Access,
    CommandContext,
    CommandError,
    CommandResult,
    CommandSpec,
    one_word,
)
from agent.chat.protocol import CommandInfo, ErrorCode, Wire

__all__ = ["HelpReply", "command"]


class HelpArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, min_length=1, max_length=64)


class HelpReply(Wire):
    commands: list[CommandInfo]


async def _help(ctx: CommandContext, args: HelpArgs) -> CommandResult:
    available = ctx.available()
    if args.command is None:
        lines = ["Commands you can use:", *(f"{s.usage} — {s.summary}" for s in available)]
        return CommandResult(
            HelpReply(commands=[s.describe() for s in available]), "\n".join(lines)
        )
    name = args.command.strip().lstrip("/").lower()
    spec = ctx.commands.get(name)
    if spec is None:
        raise CommandError(
            ErrorCode.UNKNOWN_COMMAND, f"there is no command /{name[:32]}; type /help for the list"
        )
    if spec not in available:
        raise CommandError(ErrorCode.FORBIDDEN, f"/{spec.name} is for staff only")
    return CommandResult(HelpReply(commands=[spec.describe()]), f"{spec.usage} — {spec.summary}")


command = CommandSpec(
    name="help",
    summary="list the commands you can use, or explain one",
    usage="/help [command]",
    access=Access.CALLER,
    args_model=HelpArgs,
    reply_model=HelpReply,
    handler=_help,
    from_text=one_word("command"),
)
