"""How the agent answers a *typed* message: by voice, by text, or both.

`voice`: the answer is spoken, and no transcript of it is sent.
`text`: the answer arrives as text only (LiveKit's `lk.transcription` stream, unsynchronised)
and is not spoken: the session's audio output is switched off for that reply.
`both` (default): spoken, with the usual transcript.

Spoken turns are always answered with voice and transcript; the outputs are restored as
soon as the typed reply is over.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

__all__ = ["OutputSwitch", "ReplyMode", "SessionOutputLike", "parse_reply_mode"]


class ReplyMode(StrEnum):
    VOICE = "voice"
    TEXT = "text"
    BOTH = "both"

    @property
    def speaks(self) -> bool:
        return self is not ReplyMode.TEXT

    @property
    def writes(self) -> bool:
        return self is not ReplyMode.VOICE


def parse_reply_mode(value: str) -> ReplyMode:
    try:
        return ReplyMode(value.strip().lower())
    except ValueError:
        raise ValueError(f"expected voice, text or both, not {value!r}") from None


class SessionOutputLike(Protocol):
    """The part of `AgentSession.output` used here."""

    @property
    def audio(self) -> object | None: ...
    @property
    def transcription(self) -> object | None: ...
    @property
    def audio_enabled(self) -> bool: ...
    @property
    def transcription_enabled(self) -> bool: ...
    def set_audio_enabled(self, enabled: bool) -> None: ...
    def set_transcription_enabled(self, enabled: bool) -> None: ...


class OutputSwitch:
    """Switches the session's outputs for typed replies and back for everything else.

    Overlapping typed replies are counted, so the outputs come back only after the last one.
    """

    def __init__(self, output: SessionOutputLike) -> None:
        self._output = output
        self._active = 0

    @property
    def active(self) -> bool:
        return self._active > 0

    def begin(self, mode: ReplyMode) -> None:
        self._active += 1
        self._apply(audio=mode.speaks, transcript=mode.writes)

    def end(self) -> None:
        self._active = max(self._active - 1, 0)
        if self._active == 0:
            self._apply(audio=True, transcript=True)

    def _apply(self, *, audio: bool, transcript: bool) -> None:
        # toggling an output the session does not have only logs a warning in LiveKit
        if self._output.audio is not None and self._output.audio_enabled != audio:
            self._output.set_audio_enabled(audio)
        if (
            self._output.transcription is not None
            and self._output.transcription_enabled != transcript
        ):
            self._output.set_transcription_enabled(transcript)
