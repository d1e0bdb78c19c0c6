"""`/help [command]`: the commands this participant may use, with one-line usage each."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.chat.access import Access
from agent.chat.handlers.text_args import one_word
from agent.chat.protocol import ErrorCode
from agent.chat.registry import CommandContext, CommandError, CommandResult, CommandSpec

__all__ = ["help_command", "help_text"]


class HelpArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, min_length=1, max_length=64)


def help_text(specs: list[CommandSpec[Any]]) -> str:
    lines = ["Commands you can use:"]
    lines.extend(f"{spec.usage} — {spec.summary}" for spec in specs)
    return "\n".join(lines)


async def _help(ctx: CommandContext, args: HelpArgs) -> CommandResult:
    available = ctx.registry.available_to(ctx.sender)
    if args.command is None:
        return CommandResult(
            data={"commands": [spec.describe() for spec in available]},
            text=help_text(available),
        )
    name = args.command.strip().lstrip("/").lower()
    spec = ctx.registry.get(name)
    if spec is None:
        raise CommandError(
            ErrorCode.UNKNOWN_COMMAND, f"there is no command /{name[:32]}; type /help for the list"
        )
    if spec not in available:
        raise CommandError(ErrorCode.FORBIDDEN, f"/{spec.name} is for staff only")
    return CommandResult(
        data={"commands": [spec.describe()]}, text=f"{spec.usage} — {spec.summary}"
    )


def help_command() -> CommandSpec[HelpArgs]:
    return CommandSpec(
        name="help",
        summary="list the commands you can use, or explain one",
        usage="/help [command]",
        access=Access.CALLER,
        args_model=HelpArgs,
        handler=_help,
        from_text=one_word("command"),
    )
