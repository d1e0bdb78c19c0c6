"""The built-in commands."""

from __future__ import annotations

from typing import Any

from agent.chat.handlers.analyze import analyze_command
from agent.chat.handlers.help import help_command
from agent.chat.handlers.knowledge import embed_command, search_command
from agent.chat.handlers.mode import mode_command
from agent.chat.handlers.reset import reset_command
from agent.chat.handlers.status import status_command
from agent.chat.handlers.workflow import workflow_command
from agent.chat.registry import CommandSpec

__all__ = ["builtin_commands"]


def builtin_commands(*, workflow_timeout_s: float = 120.0) -> list[CommandSpec[Any]]:
    """/help, /search, /embed, /analyze, /workflow, /status, /reset, /mode."""
    return [
        help_command(),
        search_command(),
        embed_command(),
        analyze_command(),
        workflow_command(timeout_s=workflow_timeout_s),
        status_command(),
        reset_command(),
        mode_command(),
    ]
