"""Settings of the data channel: a pydantic-settings mixin for the worker's settings class,
and the plain `DataChannelConfig` the code below the edge receives.

`WorkerSettings` includes the mixin (`class WorkerSettings(ToolsSettings, DataChannelSettings)`)
so these variables are read once with everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.chat.reply_mode import ReplyMode

__all__ = ["DataChannelConfig", "DataChannelSettings", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def parse_rate(value: str) -> tuple[int, float]:
    """`"10/10s"` → (10, 10.0): that many messages per that many seconds."""
    match = _RATE.match(value)
    if match is None:
        raise ValueError("expected COUNT/SECONDS, e.g. 10/10s")
    count, seconds = int(match.group(1)), float(match.group(2))
    if count < 1 or seconds <= 0:
        raise ValueError("expected a count of at least 1 per a positive number of seconds")
    return count, seconds


class DataChannelSettings(BaseSettings):
    """Environment variables of the data channel (typed chat, commands, events)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    text_reply_mode: ReplyMode = Field(default=ReplyMode.BOTH, alias="TEXT_REPLY_MODE")
    command_rate_limit: str = Field(default="10/10s", alias="COMMAND_RATE_LIMIT")
    command_max_bytes: int = Field(
        default=16 * 1024, ge=256, le=1024 * 1024, alias="COMMAND_MAX_BYTES"
    )
    chat_max_chars: int = Field(default=4000, ge=1, le=100_000, alias="CHAT_MAX_CHARS")
    command_timeout_s: float = Field(default=30.0, gt=0, le=600, alias="COMMAND_TIMEOUT_S")
    workflow_timeout_s: float = Field(default=120.0, gt=0, le=3600, alias="WORKFLOW_TIMEOUT_S")
    staff_role_attribute: str = Field(default="role", min_length=1, alias="STAFF_ROLE_ATTRIBUTE")
    staff_roles: str = Field(default="staff", min_length=1, alias="STAFF_ROLES")

    @field_validator("text_reply_mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("command_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value.strip()


@dataclass(frozen=True)
class DataChannelConfig:
    reply_mode: ReplyMode = ReplyMode.BOTH
    rate_limit: int = 10
    rate_window_s: float = 10.0
    max_command_bytes: int = 16 * 1024
    max_chat_chars: int = 4000
    command_timeout_s: float = 30.0
    workflow_timeout_s: float = 120.0
    staff_role_attribute: str = "role"
    staff_roles: tuple[str, ...] = ("staff",)
    reset_confirm_window_s: float = 60.0
    send_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: DataChannelSettings) -> DataChannelConfig:
        limit, window = parse_rate(settings.command_rate_limit)
        return cls(
            reply_mode=settings.text_reply_mode,
            rate_limit=limit,
            rate_window_s=window,
            max_command_bytes=settings.command_max_bytes,
            max_chat_chars=settings.chat_max_chars,
            command_timeout_s=settings.command_timeout_s,
            workflow_timeout_s=settings.workflow_timeout_s,
            staff_role_attribute=settings.staff_role_attribute,
            staff_roles=tuple(r.strip() for r in settings.staff_roles.split(",") if r.strip()),
        )
