"""The one stand-in for the LiveKit room (no SFU on this machine), shared by every agent test.

It follows `livekit.rtc.Room`: an event emitter with remote participants (permissions as the
real proto), a local participant that publishes tracks and sends or streams text, one text
and one byte stream handler per topic. It keeps what the agent sent, and validates every
command reply and agent event against `schemas/` as it is sent, so any test that produces
one checks the schemas too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from jsonschema import Draft202012Validator
from livekit import rtc
from livekit.rtc._proto.participant_pb2 import ParticipantPermission

from agent.chat.protocol import TOPIC_CHAT, TOPIC_COMMAND, TOPIC_EVENT, TOPIC_REPLY

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


REQUEST_SCHEMA = _validator("command-request.v1.json")
REPLY_SCHEMA = _validator("command-reply.v1.json")
EVENT_SCHEMA = _validator("agent-event.v1.json")


def check_reply(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    REPLY_SCHEMA.validate(envelope)
    return envelope


def check_event(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    EVENT_SCHEMA.validate(envelope)
    return envelope


async def eventually(predicate: Any, *, attempts: int = 500) -> None:
    """Yield to the loop until `predicate()` holds (bounded by attempts, not by time)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


def _text_info(stream_id: str, topic: str, attributes: Mapping[str, str]) -> rtc.TextStreamInfo:
    return rtc.TextStreamInfo(
        stream_id=stream_id,
        mime_type="text/plain",
        topic=topic,
        timestamp=int(time.time() * 1000),
        size=None,
        attributes=dict(attributes),
        attachments=[],
    )


@dataclass(frozen=True)
class Sent:
    topic: str
    text: str
    to: tuple[str, ...]

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class _TextWriter:
    """What `stream_text` returns: the text arrives as one transcript when the stream closes."""

    def __init__(self, sink: list[str], topic: str, attributes: Mapping[str, str]) -> None:
        self._sink = sink
        self._parts: list[str] = []
        self.info = _text_info(f"tr-{id(self)}", topic, attributes)

    async def write(self, text: str) -> None:
        self._parts.append(text)

    async def aclose(self, **_: Any) -> None:
        self._sink.append("".join(self._parts))


@dataclass
class Publication:
    sid: str
    track: rtc.LocalTrack

    async def wait_for_subscription(self) -> None:
        return None


class FakeLocalParticipant:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sid = "PA_agent"
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.track_publications: dict[str, Publication] = {}
        self.published_tracks: list[rtc.LocalTrack] = []
        self.sent: list[Sent] = []
        self.transcripts: list[str] = []
        self.fail_sends = False
        self._ids = itertools.count()

    async def send_text(
        self,
        text: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        **_: Any,
    ) -> rtc.TextStreamInfo:
        if self.fail_sends:
            raise ConnectionError("the data channel is down")
        if topic == TOPIC_REPLY:
            check_reply(json.loads(text))
        elif topic == TOPIC_EVENT:
            check_event(json.loads(text))
        self.sent.append(Sent(topic, text, tuple(destination_identities or ())))
        return _text_info(f"out-{len(self.sent)}", topic, {})

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        self.attributes.update(attributes)

    async def stream_text(
        self, *, topic: str = "", attributes: Mapping[str, str] | None = None, **_: Any
    ) -> _TextWriter:
        return _TextWriter(self.transcripts, topic, attributes or {})

    async def publish_transcription(self, transcription: Any) -> None:
        return None

    async def publish_track(self, track: rtc.LocalTrack, options: Any = None) -> Publication:
        """The agent's audio: LiveKit's real track and source, heard by nobody."""
        publication = Publication(sid=f"TR_{next(self._ids)}", track=track)
        self.track_publications[publication.sid] = publication
        self.published_tracks.append(track)
        return publication

    async def unpublish_track(self, track_sid: str) -> None:
        self.track_publications.pop(track_sid, None)

    async def send_bytes(self, *_: Any, **__: Any) -> None:
        return None

    def register_rpc_method(self, *_: Any, **__: Any) -> Any:
        return lambda handler: handler

    def unregister_rpc_method(self, *_: Any) -> None:
        return None


@dataclass
class FakeParticipant:
    identity: str
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    can_update_own_metadata: bool = False
    sid: str = "PA_remote"
    name: str = ""
    metadata: str = ""
    disconnect_reason: int = rtc.DisconnectReason.UNKNOWN_REASON
    state: int = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    track_publications: dict[str, Any] = field(default_factory=dict)

    @property
    def permissions(self) -> ParticipantPermission:
        return ParticipantPermission(can_update_metadata=self.can_update_own_metadata)


class FakeStreamReader:
    """A text or byte stream as the SDK hands it to a stream handler."""

    _ids = itertools.count(1)

    def __init__(self, chunks: Sequence[str | bytes], *, topic: str) -> None:
        self._chunks = list(chunks)
        self.closed = False
        self.read_chunks = 0
        size = sum(len(c.encode() if isinstance(c, str) else c) for c in chunks)
        self.info = SimpleNamespace(
            stream_id=f"stream-{next(self._ids)}", topic=topic, size=size, attributes={}
        )

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        for chunk in self._chunks:
            if self.closed:
                return
            self.read_chunks += 1
            await asyncio.sleep(0)
            yield chunk
        self.closed = True

    async def read_all(self) -> str:
        return "".join([str(c) async for c in self])

    def close(self) -> None:
        self.closed = True


class FakeRoom(rtc.EventEmitter[str]):
    """Enough of `rtc.Room` for a job context, RoomIO and the data channel."""

    def __init__(self, name: str = "room-1", agent_identity: str = "agent-1") -> None:
        super().__init__()
        self.name = name
        self.metadata = ""
        self.local_participant = FakeLocalParticipant(agent_identity)
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.connection_state = rtc.ConnectionState.CONN_CONNECTED
        self.text_handlers: dict[str, Any] = {}
        self.byte_handlers: dict[str, Any] = {}

    def isconnected(self) -> bool:
        return self.connection_state == rtc.ConnectionState.CONN_CONNECTED

    def join(self, participant: FakeParticipant) -> FakeParticipant:
        self.remote_participants[participant.identity] = participant
        self.emit("participant_connected", participant)
        self.emit("participant_active", participant)
        return participant

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(identity)
        participant.disconnect_reason = rtc.DisconnectReason.CLIENT_INITIATED
        self.emit("participant_disconnected", participant)

    def register_text_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.text_handlers:
            raise ValueError(f"text stream handler for topic '{topic}' already set")
        self.text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self.text_handlers.pop(topic, None)

    def register_byte_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.byte_handlers:
            raise ValueError(f"byte stream handler for topic '{topic}' already set")
        self.byte_handlers[topic] = handler

    def unregister_byte_stream_handler(self, topic: str) -> None:
        self.byte_handlers.pop(topic, None)

    async def disconnect(self) -> None:
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED

    # -- what remote participants send ------------------------------------------------------

    def type_chat(self, identity: str, text: str) -> FakeStreamReader:
        reader = FakeStreamReader([text], topic=TOPIC_CHAT)
        self.text_handlers[TOPIC_CHAT](reader, identity)
        return reader

    def stream_command(
        self, identity: str, payload: str | Mapping[str, Any], *, chunk: int = 1024
    ) -> FakeStreamReader:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        if isinstance(payload, Mapping):
            REQUEST_SCHEMA.validate(payload)
        chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)] or [""]
        reader = FakeStreamReader(chunks, topic=TOPIC_COMMAND)
        self.text_handlers[TOPIC_COMMAND](reader, identity)
        return reader

    def stream_command_bytes(self, identity: str, payload: bytes) -> FakeStreamReader:
        reader = FakeStreamReader(
            [payload[i : i + 512] for i in range(0, len(payload), 512)], topic=TOPIC_COMMAND
        )
        self.byte_handlers[TOPIC_COMMAND](reader, identity)
        return reader

    def publish_command(
        self, identity: str | None, payload: bytes, *, topic: str = TOPIC_COMMAND
    ) -> None:
        participant = self.remote_participants.get(identity) if identity else None
        packet = rtc.DataPacket(
            data=payload,
            kind=rtc.DataPacketKind.KIND_RELIABLE,
            participant=participant,  # type: ignore[arg-type]
            topic=topic,
        )
        self.emit("data_received", packet)

    # -- what the agent sent ---------------------------------------------------------------

    def sent(self, topic: str, to: str | None = None) -> list[Sent]:
        return [
            s
            for s in self.local_participant.sent
            if s.topic == topic and (to is None or to in s.to)
        ]

    def replies(self, to: str) -> list[dict[str, Any]]:
        return [s.json for s in self.sent(TOPIC_REPLY, to)]

    def chats(self, to: str) -> list[str]:
        return [s.text for s in self.sent(TOPIC_CHAT, to)]

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = [s.json for s in self.sent(TOPIC_EVENT)]
        return [e for e in found if kind is None or e["type"] == kind]

    def addressees(self, kind: str) -> list[tuple[str, ...]]:
        """Who each agent event of `kind` was sent to, in sending order."""
        return [s.to for s in self.sent(TOPIC_EVENT) if s.json["type"] == kind]
