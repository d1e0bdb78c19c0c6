"""The built-in commands: one module per command, each with its argument and reply models.

Adding a command: write `handlers/<name>.py` defining `command = CommandSpec(...)`, and add it
to `COMMANDS` below; the published schemas pick its models up (`python -m agent.chat.protocol`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.chat.handlers import analyze, embed, help, mode, reset, search, status, workflow
from agent.chat.pipeline import CommandSpec

__all__ = ["COMMANDS", "builtin_commands"]

COMMANDS: tuple[CommandSpec[Any], ...] = (
    help.command,
    search.command,
    embed.command,
    analyze.command,
    workflow.command,
    status.command,
    reset.command,
    mode.command,
)


def builtin_commands(*, workflow_timeout_s: float = 120.0) -> list[CommandSpec[Any]]:
    """`COMMANDS`, with /workflow's own (longer) timeout."""
    return [
        dataclasses.replace(spec, timeout_s=workflow_timeout_s)
        if spec is workflow.command
        else spec
        for spec in COMMANDS
    ]
