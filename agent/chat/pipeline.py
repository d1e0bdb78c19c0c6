"""The command pipeline, in one place: parse → admit → rate-limit → dispatch.

A payload and its sender go in (a JSON request from `agent.command`, or a chat line starting
with `/`); a `Reply` (a serialised, schema-valid reply envelope) or a `Drop` with a
documented reason comes out. Order of checks: ignored sender (own identity, other agents) →
rate limit → size and syntax → may this sender command at all → known command → access →
arguments → run with a timeout. No exception escapes except cancellation.

Trust comes only from what the token server put in the participant's token: a participant is
**staff** when its `role` attribute (configurable) holds a staff role *and* it cannot change
its own attributes (LiveKit's `canUpdateOwnMetadata` grant, which the project's token server
never gives). The **linked caller** is the participant the session serves.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import orjson
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from livekit import rtc
from pydantic import BaseModel, ValidationError

from agent.chat.protocol import (
    MAX_ID_CHARS,
    PROTOCOL_VERSION,
    CommandInfo,
    ErrorCode,
    ErrorDetail,
    ErrorReply,
    OkReply,
)
from workflows.registry import WorkflowRegistry

if TYPE_CHECKING:
    from agent.chat.channel import EventPublisher
    from agent.chat.conversation import Conversation

__all__ = [
    "Access",
    "AccessPolicy",
    "ArgumentError",
    "CommandContext",
    "CommandError",
    "CommandPipeline",
    "CommandResult",
    "CommandServices",
    "CommandSpec",
    "Drop",
    "DropReason",
    "Outcome",
    "ParsedCommand",
    "PendingConfirmations",
    "ProtocolError",
    "RateLimiter",
    "Reply",
    "Sender",
    "Verdict",
    "decode_envelope",
    "error_outcome",
    "is_command_text",
    "parse_slash",
    "unescape_chat",
]

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseModel)
ENVELOPE_KEYS = frozenset({"v", "id", "command", "args"})
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_HEAD = re.compile(r"(\S*)(.*)\Z", re.DOTALL)
_SHOWN_NAME_CHARS = 40
_MAX_VALIDATION_ERRORS = 3


# -- who is talking ----------------------------------------------------------------------------


class Access(StrEnum):
    CALLER = "caller"
    """The linked caller, and staff."""
    STAFF = "staff"
    """Staff only (reveals staff data or changes the conversation's state)."""


@dataclass(frozen=True)
class Sender:
    identity: str
    is_linked: bool
    is_staff: bool
    is_self: bool = False
    is_agent: bool = False

    @property
    def ignored(self) -> bool:
        """Messages from this sender are dropped without a reply."""
        return self.is_self or self.is_agent

    @property
    def may_command(self) -> bool:
        return self.is_staff or self.is_linked

    def may_use(self, access: Access) -> bool:
        return self.is_staff if access is Access.STAFF else self.may_command


class AccessPolicy:
    """Classifies senders; see the module docstring for the rules."""

    def __init__(self, *, role_attribute: str = "role", staff_roles: Iterable[str] = ("staff",)):
        self.role_attribute = role_attribute
        self.staff_roles = frozenset(r.strip() for r in staff_roles if r.strip())

    def is_staff(self, participant: rtc.RemoteParticipant | None) -> bool:
        if participant is None or _is_agent(participant):
            return False
        if participant.permissions.can_update_metadata:
            return False
        role = participant.attributes.get(self.role_attribute, "")
        return bool({part.strip() for part in role.split(",")} & self.staff_roles)

    def classify(
        self,
        identity: str,
        participant: rtc.RemoteParticipant | None,
        *,
        local_identity: str,
        linked_identity: str | None,
    ) -> Sender:
        """The sender of a message from `identity` (`participant` None when unknown)."""
        return Sender(
            identity=identity,
            is_linked=linked_identity is not None and identity == linked_identity,
            is_staff=self.is_staff(participant),
            is_self=identity == local_identity,
            is_agent=participant is not None and _is_agent(participant),
        )


def _is_agent(participant: rtc.RemoteParticipant) -> bool:
    return bool(participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT)


# -- rate limit ----------------------------------------------------------------------------------


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    DROP = "drop"


class RateLimiter:
    """`limit` messages per `window_s` per participant, for commands and typed chat alike.

    Over the limit a message gets a polite refusal; refusals are limited the same way, and
    beyond that a flood is dropped without a reply (so a flood cannot make the agent flood back).
    """

    def __init__(
        self,
        *,
        limit: int = 10,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[str, tuple[deque[float], deque[float]]] = {}

    def check(self, key: str) -> tuple[Verdict, float]:
        """Count one message from `key`: what to do with it, and seconds until it may retry."""
        now = self._clock()
        horizon = now - self.window_s
        if key not in self._windows and len(self._windows) >= self._max_keys:
            for idle in [k for k, w in self._windows.items() if all(s[-1] <= horizon for s in w)]:
                del self._windows[idle]
        accepted, refused = self._windows.setdefault(key, (deque(), deque()))
        for stamps in (accepted, refused):
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
        if len(accepted) < self.limit:
            accepted.append(now)
            return Verdict.ALLOW, 0.0
        retry_after = max(accepted[0] + self.window_s - now, 0.0)
        if len(refused) < self.limit:
            refused.append(now)
            return Verdict.REFUSE, retry_after
        return Verdict.DROP, retry_after


# -- outcomes ------------------------------------------------------------------------------------


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


def ignored_drop(sender: Sender) -> Drop:
    return Drop(DropReason.OWN_IDENTITY if sender.is_self else DropReason.AGENT_PARTICIPANT)


def error_outcome(
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
    reply = ErrorReply(
        id=request_id,
        command=command,
        error=ErrorDetail(
            code=code,
            message=message,
            usage=usage,
            retry_after_s=round(retry_after_s, 2) if retry_after_s is not None else None,
        ),
    )
    envelope = reply.model_dump(mode="json")
    text = message[0].upper() + message[1:] if message else code.value
    if usage:
        text += f"\nUsage: {usage}"
    return Reply(envelope, orjson.dumps(envelope).decode(), text if chat else None)


def rate_limited(
    limiter: RateLimiter,
    request_id: str | None,
    command: str | None,
    retry_after_s: float,
    *,
    chat: bool,
) -> Reply:
    wait = max(1, round(retry_after_s + 0.5))
    return error_outcome(
        request_id,
        command,
        ErrorCode.RATE_LIMITED,
        f"Sorry, that's more than {limiter.limit} messages in {limiter.window_s:g} seconds. "
        f"Please wait {wait} second(s) and try again.",
        chat=chat,
        retry_after_s=retry_after_s,
    )


# -- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCommand:
    """One command to run: from a JSON envelope (`args`) or a chat line (`text`)."""

    command: str
    id: str | None
    source: Literal["json", "chat"]
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    """For chat commands: everything after the command word, stripped."""


class ProtocolError(Exception):
    """The payload is not a usable request; becomes an error reply with `code`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        request_id: str | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.command = command


def payload_size(payload: bytes | str) -> int:
    """Size in bytes as sent (UTF-8); lone surrogates count as the bytes they would take."""
    return (
        len(payload)
        if isinstance(payload, bytes)
        else len(payload.encode("utf-8", "surrogatepass"))
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _shown(name: str) -> str:
    flat = "".join(ch if ch.isprintable() else "?" for ch in name)
    return flat if len(flat) <= _SHOWN_NAME_CHARS else flat[: _SHOWN_NAME_CHARS - 1] + "…"


def decode_envelope(payload: bytes | str, *, max_bytes: int) -> ParsedCommand:
    """Validate a JSON request envelope of protocol version 1."""
    size = payload_size(payload)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"the request is {size} bytes; the limit is {max_bytes} bytes",
        )
    try:
        data = orjson.loads(payload)
    except (orjson.JSONDecodeError, UnicodeError, TypeError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_JSON, f"the request is not valid UTF-8 JSON ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            ErrorCode.INVALID_ENVELOPE, f"the request must be a JSON object, not {_type_name(data)}"
        )
    raw_id = data.get("id")
    request_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_ID_CHARS else None
    raw_command = data.get("command")
    command = raw_command if isinstance(raw_command, str) and _NAME.fullmatch(raw_command) else None

    def fail(code: ErrorCode, message: str) -> ProtocolError:
        return ProtocolError(code, message, request_id=request_id, command=command)

    version = data.get("v")
    if "v" not in data:
        raise fail(ErrorCode.INVALID_ENVELOPE, 'the request needs "v": 1 (the protocol version)')
    if isinstance(version, bool) or not isinstance(version, int):
        raise fail(ErrorCode.INVALID_ENVELOPE, f'"v" must be an integer, not {_type_name(version)}')
    if version != PROTOCOL_VERSION:
        raise fail(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported; this agent speaks version "
            f"{PROTOCOL_VERSION}",
        )
    unknown = sorted(str(key) for key in data if key not in ENVELOPE_KEYS)
    if unknown:
        shown = ", ".join(repr(k[:_SHOWN_NAME_CHARS]) for k in unknown[:5])
        raise fail(
            ErrorCode.INVALID_ENVELOPE, f"unknown field(s) {shown}; allowed: v, id, command, args"
        )
    if request_id is None:
        raise fail(
            ErrorCode.INVALID_ENVELOPE, f'"id" must be a string of 1 to {MAX_ID_CHARS} characters'
        )
    if not isinstance(raw_command, str):
        raise fail(
            ErrorCode.INVALID_ENVELOPE, f'"command" must be a string, not {_type_name(raw_command)}'
        )
    if command is None:
        raise fail(
            ErrorCode.UNKNOWN_COMMAND,
            f'unknown command {_shown(raw_command)!r}; send "help" for the list',
        )
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise fail(ErrorCode.INVALID_ENVELOPE, f'"args" must be an object, not {_type_name(args)}')
    return ParsedCommand(command=command, id=request_id, source="json", args=args)


def is_command_text(text: str) -> bool:
    """Chat text is a command when it starts with `/` (but `//` escapes a literal slash)."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def unescape_chat(text: str) -> str:
    """`//text` is sent to the conversation as `/text`."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def parse_slash(text: str, *, max_bytes: int, request_id: str) -> ParsedCommand:
    """Split `/name rest of line` into a request; the command decides how to read `rest`."""
    size = payload_size(text)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"the command is {size} bytes; the limit is {max_bytes} bytes",
            request_id=request_id,
        )
    head = _HEAD.match(text.strip()[1:])
    name = head.group(1).lower() if head else ""
    rest = head.group(2).strip() if head else ""
    if not name:
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            "a command name must follow the slash; type /help for the list",
            request_id=request_id,
        )
    if not _NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command /{_shown(name)}; type /help for the list",
            request_id=request_id,
        )
    return ParsedCommand(command=name, id=request_id, source="chat", text=rest)


# -- commands as data ----------------------------------------------------------------------------


class CommandError(Exception):
    """An expected failure of a command, reported to the sender with a stable code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ArgumentError(ValueError):
    """The arguments of a command could not be read; the message says why."""


@dataclass(frozen=True)
class CommandResult:
    data: BaseModel
    """The command's reply model (its `CommandSpec.reply_model`)."""
    text: str
    """The same answer for a person (sent on `lk.chat` to commands typed in the chat)."""


class PendingConfirmations:
    """Actions a sender asked for and must confirm within `window_s` (e.g. `/reset`)."""

    def __init__(self, *, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._pending: dict[tuple[str, str], float] = {}

    def ask(self, identity: str, action: str) -> None:
        self._pending[(identity, action)] = self._clock() + self.window_s

    def take(self, identity: str, action: str) -> bool:
        """True (and forgotten) when `identity` has an unexpired request for `action`."""
        deadline = self._pending.pop((identity, action), None)
        return deadline is not None and self._clock() <= deadline


@dataclass
class CommandServices:
    """What commands may use, passed in so the pipeline runs without a room."""

    conversation: Conversation
    events: EventPublisher
    tools: list[BaseTool] = field(default_factory=list)
    """The brain's LangChain tools; commands find theirs by `ToolRole`."""
    chat_model: BaseChatModel | None = None
    """The graph's chat model (backs /analyze); None when no LLM is configured."""
    workflows: WorkflowRegistry | None = None
    confirmations: PendingConfirmations = field(default_factory=PendingConfirmations)
    workflow_running: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a workflow runs: one at a time per call."""


@dataclass(frozen=True)
class CommandContext:
    sender: Sender
    request_id: str
    source: Literal["json", "chat"]
    services: CommandServices
    commands: Mapping[str, CommandSpec[Any]]

    def available(self) -> list[CommandSpec[Any]]:
        return [spec for spec in self.commands.values() if self.sender.may_use(spec.access)]


TextReader = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class CommandSpec(Generic[A]):
    name: str
    summary: str
    """One line: what the command does."""
    usage: str
    """Chat usage, e.g. `/search <query>`."""
    access: Access
    args_model: type[A]
    reply_model: Any
    """The type of `CommandResult.data` (a model, or a union of models); the reply schema's."""
    handler: Callable[[CommandContext, A], Awaitable[CommandResult]]
    from_text: TextReader
    """Reads the text after the command word into `args_model` input; raises ArgumentError."""
    timeout_s: float | None = None
    """Overrides the default command timeout (e.g. for workflows)."""

    def describe(self) -> CommandInfo:
        return CommandInfo(
            name=self.name, usage=self.usage, summary=self.summary, access=self.access.value
        )


def free_text(name: str) -> TextReader:
    """The whole rest of the line is one argument (empty means not given)."""
    return lambda text: {name: text} if text else {}


def one_word(name: str) -> TextReader:
    """At most one word, e.g. `/mode text`."""

    def read(text: str) -> dict[str, Any]:
        words = text.split()
        if len(words) > 1:
            raise ArgumentError(f"expected one word, got {len(words)}")
        return {name: words[0]} if words else {}

    return read


def no_args(text: str) -> dict[str, Any]:
    if text:
        raise ArgumentError("this command takes no arguments")
    return {}


def key_values(text: str) -> tuple[list[str], dict[str, str]]:
    """Shell-like words: bare words in order, and `key=value` pairs (quotes allowed)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ArgumentError(f"could not read the arguments ({exc})") from None
    bare: list[str] = []
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            bare.append(word)
        elif not key:
            raise ArgumentError(f"{word!r} needs a name before '='")
        elif key in pairs:
            raise ArgumentError(f"{key} is given twice")
        else:
            pairs[key] = value
    return bare, pairs


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


# -- the pipeline --------------------------------------------------------------------------------


class CommandPipeline:
    """Runs commands for senders the channel has already classified."""

    def __init__(
        self,
        commands: Iterable[CommandSpec[Any]],
        services: CommandServices,
        *,
        limiter: RateLimiter,
        max_bytes: int = 16 * 1024,
        timeout_s: float = 30.0,
    ) -> None:
        self.commands: dict[str, CommandSpec[Any]] = {}
        for spec in commands:
            if spec.name in self.commands:
                raise ValueError(f"command {spec.name!r} is registered twice")
            self.commands[spec.name] = spec
        self.services = services
        self.limiter = limiter
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def available_to(self, sender: Sender) -> list[CommandSpec[Any]]:
        return [spec for spec in self.commands.values() if sender.may_use(spec.access)]

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

    async def _handle(
        self,
        sender: Sender,
        parse: Callable[[], ParsedCommand],
        *,
        chat: bool,
        fallback_id: str | None = None,
    ) -> Outcome:
        if sender.ignored:
            return ignored_drop(sender)
        verdict, retry_after = self.limiter.check(sender.identity)
        if verdict is Verdict.DROP:
            return Drop(DropReason.RATE_FLOOD)
        try:
            request = parse()
        except ProtocolError as exc:
            request_id = exc.request_id or fallback_id
            if verdict is Verdict.REFUSE:
                return rate_limited(self.limiter, request_id, exc.command, retry_after, chat=chat)
            return error_outcome(request_id, exc.command, exc.code, exc.message, chat=chat)
        if verdict is Verdict.REFUSE:
            return rate_limited(self.limiter, request.id, request.command, retry_after, chat=chat)
        started = time.perf_counter()
        outcome = await self._admit_and_run(request, sender, chat=chat)
        logger.info(
            "command %s from %s: %s",
            request.command,
            sender.identity,
            "ok" if outcome.ok else outcome.envelope["error"]["code"],
            extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
        )
        return outcome

    async def _admit_and_run(self, request: ParsedCommand, sender: Sender, *, chat: bool) -> Reply:
        request_id, name = request.id, request.command

        def fail(code: ErrorCode, message: str, *, command: str | None = name, **kw: Any) -> Reply:
            return error_outcome(request_id, command, code, message, chat=chat, **kw)

        if not sender.may_command:
            return fail(
                ErrorCode.NOT_ALLOWED,
                "this agent takes commands only from the caller it is serving and from staff",
            )
        spec = self.commands.get(name)
        if spec is None:
            usable = ", ".join(s.name for s in self.available_to(sender))
            return fail(
                ErrorCode.UNKNOWN_COMMAND,
                f"unknown command {name!r}; commands you can use: {usable}",
                command=None,
                usage="/help",
            )
        if not sender.may_use(spec.access):
            return fail(
                ErrorCode.FORBIDDEN,
                f"/{name} is for staff only; your token does not carry a staff role",
            )

        def invalid(problem: str) -> Reply:
            return fail(ErrorCode.INVALID_ARGUMENTS, f"/{name}: {problem}", usage=spec.usage)

        try:
            raw = spec.from_text(request.text) if request.source == "chat" else request.args
            args = spec.args_model.model_validate(raw)
        except ArgumentError as exc:
            return invalid(str(exc))
        except ValidationError as exc:
            return invalid(_describe_validation(exc))
        except (RecursionError, ValueError, TypeError) as exc:
            return invalid(f"the arguments could not be read ({type(exc).__name__})")
        context = CommandContext(
            sender, request_id or "", request.source, self.services, self.commands
        )
        timeout_s = spec.timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await spec.handler(context, args)
            envelope = OkReply(
                id=request_id, command=name, data=result.data.model_dump(mode="json")
            ).model_dump(mode="json")
            payload = orjson.dumps(envelope).decode()
        except ArgumentError as exc:
            return invalid(str(exc))
        except CommandError as exc:
            return fail(exc.code, exc.message)
        except TimeoutError:
            return fail(
                ErrorCode.TIMEOUT, f"/{name} took longer than {timeout_s:g} seconds and was stopped"
            )
        except Exception:
            logger.exception("command %s failed", name)
            return fail(
                ErrorCode.INTERNAL_ERROR, f"/{name} failed unexpectedly; the problem was logged"
            )
        return Reply(envelope, payload, result.text if chat else None)
