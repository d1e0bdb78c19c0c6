"""Small stand-ins for the brain and the room, for the worker-core tests.

The brain fake follows the `agent.brain.build_brain` contract: it registers a resource on the
exit stack (so tests can see state being flushed at hang-up) and answers with a real LiveKit
`llm.LLM` that streams one reply per turn. The room fake is an event emitter with the parts of
`rtc.Room` a text-only `RoomIO` touches, and records what the agent publishes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.voice.room_io import RoomOptions

from agent.metadata import DispatchMetadata

GREETINGS = {"en": "Hello, how can I help?", "de": "Hallo, wie kann ich helfen?"}


class _EchoStream(llm.LLMStream):
    async def _run(self) -> None:
        last_user = next(
            (m.text_content for m in reversed(self.chat_ctx.messages()) if m.role == "user"),
            "",
        )
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id="echo",
                delta=llm.ChoiceDelta(role="assistant", content=f"You said: {last_user}"),
            )
        )


class EchoLLM(llm.LLM):
    """Answers every turn with `You said: <the caller's last words>`."""

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _EchoStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


@dataclass
class FakeBrain:
    llm: llm.LLM
    instructions: str
    thread_id: str
    has_side_effecting_tools: bool
    greeting: str
    tools: list[Any] = field(default_factory=list)


@dataclass
class BrainRecorder:
    """A `build_brain` replacement that remembers what it was asked and what it opened."""

    side_effecting: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    open_resources: int = 0
    flushed: int = 0

    async def __call__(
        self,
        settings: Any,
        metadata: DispatchMetadata,
        *,
        room_name: str,
        caller_identity: str,
        stack: contextlib.AsyncExitStack,
        registry: Any = None,
    ) -> FakeBrain:
        self.calls.append(
            {
                "metadata": metadata,
                "room_name": room_name,
                "caller_identity": caller_identity,
                "registry": registry,
            }
        )
        self.open_resources += 1

        async def flush() -> None:
            self.open_resources -= 1
            self.flushed += 1

        stack.push_async_callback(flush)
        language = (metadata.language or "en").split("-")[0]
        return FakeBrain(
            llm=EchoLLM(),
            instructions="You are a test agent.",
            thread_id=f"thread-{metadata.conversation_id or room_name}",
            has_side_effecting_tools=self.side_effecting,
            greeting=GREETINGS.get(language, GREETINGS["en"]),
        )


def text_room_options(caller_identity: str) -> RoomOptions:
    """Room I/O without audio: the fake room cannot carry media."""
    return RoomOptions(
        participant_identity=caller_identity,
        audio_input=False,
        audio_output=False,
        text_input=False,
        close_on_disconnect=True,
    )


class _TextWriter:
    def __init__(self, sink: list[str], topic: str, attributes: Mapping[str, str]) -> None:
        self._sink = sink
        self._parts: list[str] = []
        self.topic = topic
        self.attributes = dict(attributes)
        self.info = self

    @property
    def stream_id(self) -> str:
        return f"stream-{id(self)}"

    async def write(self, text: str) -> None:
        self._parts.append(text)

    async def aclose(self, **_: Any) -> None:
        self._sink.append("".join(self._parts))


class FakeLocalParticipant:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sid = "PA_agent"
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.track_publications: dict[str, Any] = {}
        self.transcripts: list[str] = []
        self.published_tracks: list[rtc.LocalTrack] = []
        self._ids = itertools.count()

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        self.attributes.update(attributes)

    async def stream_text(
        self, *, topic: str = "", attributes: Mapping[str, str] | None = None, **_: Any
    ) -> _TextWriter:
        return _TextWriter(self.transcripts, topic, attributes or {})

    async def publish_transcription(self, transcription: Any) -> None:
        return None

    async def publish_track(self, track: rtc.LocalTrack, options: Any = None) -> _Publication:
        """The agent's audio: LiveKit's real track and source, heard by nobody (no SFU here)."""
        publication = _Publication(sid=f"TR_{next(self._ids)}", track=track)
        self.track_publications[publication.sid] = publication
        self.published_tracks.append(track)
        return publication

    async def unpublish_track(self, sid: str) -> None:
        self.track_publications.pop(sid, None)

    async def send_bytes(self, *_: Any, **__: Any) -> None:
        return None

    def register_rpc_method(self, *_: Any, **__: Any) -> Any:
        return lambda handler: handler

    def unregister_rpc_method(self, *_: Any) -> None:
        return None


@dataclass
class _Publication:
    sid: str
    track: rtc.LocalTrack

    async def wait_for_subscription(self) -> None:
        return None


@dataclass
class FakeRemoteParticipant:
    identity: str
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    sid: str = "PA_caller"
    name: str = ""
    metadata: str = ""
    disconnect_reason: int = rtc.DisconnectReason.UNKNOWN_REASON
    state: int = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    track_publications: dict[str, Any] = field(default_factory=dict)


class FakeRoom(rtc.EventEmitter[str]):
    """Enough of `rtc.Room` for a job context and a text-only `RoomIO`."""

    def __init__(self, name: str = "room-1", agent_identity: str = "agent-1") -> None:
        super().__init__()
        self.name = name
        self.metadata = ""
        self.local_participant = FakeLocalParticipant(agent_identity)
        self.remote_participants: dict[str, FakeRemoteParticipant] = {}
        self.connection_state = rtc.ConnectionState.CONN_CONNECTED

    def isconnected(self) -> bool:
        return self.connection_state == rtc.ConnectionState.CONN_CONNECTED

    def join(self, participant: FakeRemoteParticipant) -> None:
        self.remote_participants[participant.identity] = participant
        self.emit("participant_connected", participant)
        self.emit("participant_active", participant)

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(identity)
        participant.disconnect_reason = rtc.DisconnectReason.CLIENT_INITIATED
        self.emit("participant_disconnected", participant)

    def register_text_stream_handler(self, *_: Any) -> None:
        return None

    def unregister_text_stream_handler(self, *_: Any) -> None:
        return None

    def register_byte_stream_handler(self, *_: Any) -> None:
        return None

    def unregister_byte_stream_handler(self, *_: Any) -> None:
        return None

    async def disconnect(self) -> None:
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED


def clear_worker_env(monkeypatch: Any) -> None:
    """Remove every variable WorkerSettings reads, so a developer's shell cannot leak in."""
    from agent.settings import WorkerSettings

    for info in WorkerSettings.model_fields.values():
        if info.alias:
            monkeypatch.delenv(info.alias, raising=False)


class JobRunner:
    """Plays LiveKit's job runner around a `fake_job_context`: records shutdown requests and
    runs the shutdown callbacks the way the runner does (session first, then callbacks)."""

    def __init__(self, ctx: Any, monkeypatch: Any) -> None:
        self.ctx = ctx
        self.shutdown_reasons: list[str] = []
        self._callbacks: list[Any] = []
        monkeypatch.setattr(ctx, "shutdown", self._shutdown)
        monkeypatch.setattr(ctx, "add_shutdown_callback", self._callbacks.append)

    def _shutdown(self, reason: str = "") -> None:
        self.shutdown_reasons.append(reason)

    async def finish(self, reason: str) -> None:
        import inspect

        try:
            session = self.ctx.primary_session
        except RuntimeError:
            session = None
        if session is not None:
            await session.aclose()
        for callback in self._callbacks:
            takes_reason = len(inspect.signature(callback).parameters) > 0
            await (callback(reason) if takes_reason else callback())


async def eventually(predicate: Any, *, attempts: int = 400) -> None:
    """Yield to the loop until `predicate()` holds (bounded by attempts, not by time)."""
    import asyncio

    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@contextlib.contextmanager
def preserved_logging() -> Any:
    """Undo what `configure_logging` does to the root logger once the test is over."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@dataclass
class ChannelRecorder:
    """An `open_channel` replacement that remembers the calls it served and their life."""

    opened: list[str] = field(default_factory=list)
    announced: int = 0
    closed: int = 0

    def __call__(
        self, session: Any, room: Any, *, brain: Any, caller_identity: str, settings: Any
    ) -> ChannelRecorder:
        self.opened.append(caller_identity)
        return self

    def room_options(self, base: RoomOptions) -> RoomOptions:
        return base

    async def announce(self) -> None:
        self.announced += 1

    async def aclose(self) -> None:
        self.closed += 1
