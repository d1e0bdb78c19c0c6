"""Stand-ins at the worker's provider boundaries: the LiveKit room and a chat-model LLM.

The room fake is an event emitter with the parts of `rtc.Room` that LiveKit's job context,
`RoomIO` and the data channel touch; it keeps what the agent publishes (transcripts, its
audio track, data-channel sends). `EchoLLM` is a real LiveKit `llm.LLM` that streams one
reply per turn.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from data_channel_fakes import Publication
from livekit import rtc
from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


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
        self.sent: list[tuple[str, str, tuple[str, ...]]] = []
        self._ids = itertools.count()

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        self.attributes.update(attributes)

    async def send_text(
        self, text: str, *, topic: str = "", destination_identities: Any = None, **_: Any
    ) -> Any:
        self.sent.append((topic, text, tuple(destination_identities or ())))
        return SimpleNamespace(stream_id=f"out-{len(self.sent)}")

    async def stream_text(
        self, *, topic: str = "", attributes: Mapping[str, str] | None = None, **_: Any
    ) -> _TextWriter:
        return _TextWriter(self.transcripts, topic, attributes or {})

    async def publish_transcription(self, transcription: Any) -> None:
        return None

    async def publish_track(self, track: rtc.LocalTrack, options: Any = None) -> Publication:
        """The agent's audio: LiveKit's real track and source, heard by nobody (no SFU here)."""
        publication = Publication(sid=f"TR_{next(self._ids)}", track=track)
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

    @property
    def permissions(self) -> Any:
        return SimpleNamespace(can_update_metadata=False)


class FakeRoom(rtc.EventEmitter[str]):
    """Enough of `rtc.Room` for a job context and a text-only `RoomIO`."""

    def __init__(self, name: str = "room-1", agent_identity: str = "agent-1") -> None:
        super().__init__()
        self.name = name
        self.metadata = ""
        self.local_participant = FakeLocalParticipant(agent_identity)
        self.remote_participants: dict[str, FakeRemoteParticipant] = {}
        self.connection_state = rtc.ConnectionState.CONN_CONNECTED
        self.text_handlers: dict[str, Any] = {}

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

    def register_text_stream_handler(self, topic: str, handler: Any) -> None:
        self.text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self.text_handlers.pop(topic, None)

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The agent events of `kind` the agent sent, with their addressees."""
        found = []
        for topic, text, to in self.local_participant.sent:
            payload = json.loads(text)
            if topic == "agent.event" and payload.get("type") == kind:
                found.append({**payload, "to": list(to)})
        return found

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
