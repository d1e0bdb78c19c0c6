"""Commands as data: name, usage, who may use it, an argument model and an async handler.

A handler receives validated arguments and a `CommandContext` (the sender and the services
the command may use) and returns a `CommandResult`: JSON-able data for the structured reply
and a short text for the chat reply. It signals expected failures with `CommandError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from agent.chat.access import Access, Sender
from agent.chat.protocol import ErrorCode

if TYPE_CHECKING:
    from agent.chat.services import CommandServices

__all__ = [
    "ArgumentError",
    "CommandContext",
    "CommandError",
    "CommandRegistry",
    "CommandResult",
    "CommandSpec",
]

A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True)
class CommandResult:
    data: dict[str, Any]
    text: str


class CommandError(Exception):
    """An expected failure of a command, reported to the sender with a stable code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ArgumentError(ValueError):
    """The arguments of a chat command could not be read; the message says why."""


@dataclass(frozen=True)
class CommandContext:
    sender: Sender
    request_id: str
    source: Literal["json", "chat"]
    services: CommandServices
    registry: CommandRegistry


@dataclass(frozen=True)
class CommandSpec(Generic[A]):
    name: str
    summary: str
    """One line: what the command does."""
    usage: str
    """Chat usage, e.g. `/search <query>`."""
    access: Access
    args_model: type[A]
    handler: Callable[[CommandContext, A], Awaitable[CommandResult]]
    from_text: Callable[[str], dict[str, Any]]
    """Reads the text after the command word into `args_model` input; raises ArgumentError."""
    timeout_s: float | None = None
    """Overrides the default command timeout (e.g. for workflows)."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "usage": self.usage,
            "summary": self.summary,
            "access": self.access.value,
        }


@dataclass
class CommandRegistry:
    _specs: dict[str, CommandSpec[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[CommandSpec[Any]]) -> CommandRegistry:
        registry = cls()
        for spec in specs:
            registry.add(spec)
        return registry

    def add(self, spec: CommandSpec[Any]) -> None:
        if spec.name in self._specs:
            raise ValueError(f"command {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> CommandSpec[Any] | None:
        return self._specs.get(name)

    def __iter__(self) -> Iterator[CommandSpec[Any]]:
        return iter(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def available_to(self, sender: Sender) -> list[CommandSpec[Any]]:
        return [spec for spec in self._specs.values() if sender.may_use(spec.access)]
