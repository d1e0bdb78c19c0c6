"""The command layer's one entry point: a payload and its sender in, a reply or a drop out.

Order of checks for every message: ignored sender (own identity, other agents) → rate limit →
size and syntax → may this sender command at all → known command → access → arguments →
run with a timeout. Whatever the payload, `handle_*` returns a `Reply` (a serialised, valid
reply envelope) or a `Drop` with a documented reason; no exception escapes except
cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from agent.chat.access import Sender
from agent.chat.parsing import (
    CommandRequest,
    ProtocolError,
    decode_envelope,
    parse_slash,
)
from agent.chat.protocol import ErrorCode, error_reply, ok_reply
from agent.chat.rate_limit import RateLimiter, Verdict
from agent.chat.registry import (
    ArgumentError,
    CommandContext,
    CommandError,
    CommandRegistry,
    CommandSpec,
)
from agent.chat.services import CommandServices

__all__ = ["CommandDispatcher", "Drop", "DropReason", "Outcome", "Reply"]

logger = logging.getLogger(__name__)

_MAX_VALIDATION_ERRORS = 3


class DropReason(StrEnum):
    """Why a message got no reply (documented in docs/data-channel.md)."""

    OWN_IDENTITY = "own_identity"
    AGENT_PARTICIPANT = "agent_participant"
    RATE_FLOOD = "rate_flood"
    EMPTY = "empty"


@dataclass(frozen=True)
class Reply:
    envelope: dict[str, Any]
    payload: str
    """The envelope as JSON, ready to send on `agent.reply`."""
    chat_text: str | None = None
    """The same answer for a person, for commands typed in the chat."""

    @property
    def ok(self) -> bool:
        return bool(self.envelope["ok"])


@dataclass(frozen=True)
class Drop:
    reason: DropReason


Outcome = Reply | Drop


def _describe_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_input=False, include_url=False)[:_MAX_VALIDATION_ERRORS]:
        where = ".".join(str(part) for part in item.get("loc", ())) or "arguments"
        message = str(item.get("msg", "is invalid"))
        if item.get("type") == "missing":
            message = "is required"
        elif item.get("type") == "extra_forbidden":
            message = "is not an argument of this command"
        parts.append(f"{where} {message}")
    return "; ".join(parts)


class CommandDispatcher:
    """Runs commands for senders the transport has already classified."""

    def __init__(
        self,
        registry: CommandRegistry,
        services: CommandServices,
        *,
        limiter: RateLimiter,
        max_bytes: int = 16 * 1024,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.registry = registry
        self.services = services
        self.limiter = limiter
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._clock = clock

    # -- entry points ----------------------------------------------------------------------

    async def handle_envelope(self, payload: bytes | str, sender: Sender) -> Outcome:
        """A JSON request from `agent.command`."""
        return await self._handle(
            sender, lambda: decode_envelope(payload, max_bytes=self.max_bytes), chat=False
        )

    async def handle_chat_command(self, text: str, sender: Sender, *, request_id: str) -> Outcome:
        """A chat line starting with `/` (from `lk.chat`)."""
        return await self._handle(
            sender,
            lambda: parse_slash(text, max_bytes=self.max_bytes, request_id=request_id),
            chat=True,
            fallback_id=request_id,
        )

    def screen_chat_message(
        self, text: str, sender: Sender, *, request_id: str, max_chars: int
    ) -> Outcome | None:
        """Checks for a plain typed message: None when it may go to the conversation,
        else the refusal to send (or a drop)."""
        if sender.ignored:
            return Drop(DropReason.OWN_IDENTITY if sender.is_self else DropReason.AGENT_PARTICIPANT)
        if not text.strip():
            return Drop(DropReason.EMPTY)
        decision = self.limiter.check(sender.identity)
        if decision.verdict is Verdict.DROP:
            return Drop(DropReason.RATE_FLOOD)
        if decision.verdict is Verdict.REFUSE:
            return self._rate_limited(request_id, None, decision.retry_after_s, True)
        if len(text) > max_chars:
            return self._error(
                request_id,
                None,
                ErrorCode.MESSAGE_TOO_LARGE,
                f"your message is {len(text)} characters long; the limit is {max_chars}",
                chat=True,
            )
        return None

    # -- the pipeline ----------------------------------------------------------------------

    async def _handle(
        self,
        sender: Sender,
        parse: Callable[[], CommandRequest],
        *,
        chat: bool,
        fallback_id: str | None = None,
    ) -> Outcome:
        if sender.ignored:
            return Drop(DropReason.OWN_IDENTITY if sender.is_self else DropReason.AGENT_PARTICIPANT)
        decision = self.limiter.check(sender.identity)
        if decision.verdict is Verdict.DROP:
            return Drop(DropReason.RATE_FLOOD)
        try:
            request = parse()
        except ProtocolError as exc:
            if decision.verdict is Verdict.REFUSE:
                return self._rate_limited(
                    exc.request_id or fallback_id, exc.command, decision.retry_after_s, chat
                )
            return self._error(
                exc.request_id or fallback_id, exc.command, exc.code, exc.message, chat=chat
            )
        if decision.verdict is Verdict.REFUSE:
            return self._rate_limited(request.id, request.command, decision.retry_after_s, chat)
        return await self._run(request, sender, chat=chat)

    async def _run(self, request: CommandRequest, sender: Sender, *, chat: bool) -> Outcome:
        request_id, name = request.id, request.command
        if not sender.may_command:
            return self._error(
                request_id,
                name,
                ErrorCode.NOT_ALLOWED,
                "this agent takes commands only from the caller it is serving and from staff",
                chat=chat,
            )
        spec = self.registry.get(name)
        if spec is None:
            usable = ", ".join(s.name for s in self.registry.available_to(sender))
            return self._error(
                request_id,
                None,
                ErrorCode.UNKNOWN_COMMAND,
                f"unknown command {name!r}; commands you can use: {usable}",
                chat=chat,
                usage="/help",
            )
        if not sender.may_use(spec.access):
            return self._error(
                request_id,
                name,
                ErrorCode.FORBIDDEN,
                f"/{name} is for staff only; your token does not carry a staff role",
                chat=chat,
            )
        try:
            args = self._arguments(spec, request)
        except ArgumentError as exc:
            return self._invalid(request_id, spec, str(exc), chat)
        context = CommandContext(
            sender=sender,
            request_id=request_id or "",
            source=request.source,
            services=self.services,
            registry=self.registry,
        )
        started = self._clock()
        outcome = await self._execute(spec, context, args, chat=chat)
        logger.info(
            "command %s from %s: %s",
            name,
            sender.identity,
            "ok" if outcome.ok else outcome.envelope["error"]["code"],
            extra={"duration_ms": round((self._clock() - started) * 1000, 1)},
        )
        return outcome

    def _arguments(self, spec: CommandSpec[Any], request: CommandRequest) -> BaseModel:
        raw = spec.from_text(request.text) if request.source == "chat" else request.args
        try:
            return spec.args_model.model_validate(raw)
        except ValidationError as exc:
            raise ArgumentError(_describe_validation(exc)) from None
        except (RecursionError, ValueError, TypeError) as exc:
            raise ArgumentError(f"the arguments could not be read ({type(exc).__name__})") from None

    async def _execute(
        self, spec: CommandSpec[Any], context: CommandContext, args: BaseModel, *, chat: bool
    ) -> Reply:
        request_id, name = context.request_id, spec.name
        timeout_s = spec.timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await spec.handler(context, args)
        except ArgumentError as exc:
            return self._invalid(request_id, spec, str(exc), chat)
        except CommandError as exc:
            return self._error(request_id, name, exc.code, exc.message, chat=chat)
        except TimeoutError:
            return self._error(
                request_id,
                name,
                ErrorCode.TIMEOUT,
                f"/{name} took longer than {timeout_s:g} seconds and was stopped",
                chat=chat,
            )
        except Exception:
            logger.exception("command %s failed", name)
            return self._error(
                request_id,
                name,
                ErrorCode.INTERNAL_ERROR,
                f"/{name} failed unexpectedly; the problem was logged",
                chat=chat,
            )
        envelope = ok_reply(request_id, name, result.data)
        try:
            payload = orjson.dumps(envelope).decode()
        except TypeError:
            logger.exception("command %s returned data that is not JSON", name)
            return self._error(
                request_id,
                name,
                ErrorCode.INTERNAL_ERROR,
                f"/{name} produced an unreadable result",
                chat=chat,
            )
        return Reply(envelope, payload, result.text if chat else None)

    # -- replies ---------------------------------------------------------------------------

    def _invalid(
        self, request_id: str | None, spec: CommandSpec[Any], problem: str, chat: bool
    ) -> Reply:
        return self._error(
            request_id,
            spec.name,
            ErrorCode.INVALID_ARGUMENTS,
            f"/{spec.name}: {problem}",
            chat=chat,
            usage=spec.usage,
        )

    def _rate_limited(
        self, request_id: str | None, command: str | None, retry_after_s: float, chat: bool
    ) -> Reply:
        wait = max(1, round(retry_after_s + 0.5))
        return self._error(
            request_id,
            command,
            ErrorCode.RATE_LIMITED,
            f"Sorry, that's more than {self.limiter.limit} messages in "
            f"{self.limiter.window_s:g} seconds. Please wait {wait} second(s) and try again.",
            chat=chat,
            retry_after_s=retry_after_s,
        )

    def _error(
        self,
        request_id: str | None,
        command: str | None,
        code: ErrorCode,
        message: str,
        *,
        chat: bool,
        usage: str | None = None,
        retry_after_s: float | None = None,
    ) -> Reply:
        # echoed user text may hold lone surrogates, which JSON cannot carry
        message = message.encode("utf-8", "replace").decode("utf-8")
        envelope = error_reply(
            request_id, command, code, message, usage=usage, retry_after_s=retry_after_s
        )
        text = message[0].upper() + message[1:] if message else code.value
        if usage:
            text += f"\nUsage: {usage}"
        return Reply(envelope, orjson.dumps(envelope).decode(), text if chat else None)
