"""Assemble the voice `AgentSession`: STT, VAD, the graph's LLM, TTS and turn handling."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from livekit.agents import AgentSession, llm, stt, tts, vad
from livekit.agents.voice.turn import TurnHandlingOptions

from agent.providers import MediaConfig, build_stt, build_tts

if TYPE_CHECKING:
    from agent.settings import WorkerSettings

logger = logging.getLogger(__name__)


def turn_handling(config: MediaConfig, *, allow_preemptive: bool) -> TurnHandlingOptions:
    """Turn-taking options, all decided locally (no cloud turn detector or interruption model).

    Preemptive generation starts the reply from the final transcript before the turn is
    committed; a graph that can act on the world must not, so the caller decides.
    """
    return TurnHandlingOptions(
        turn_detection=config.turn_detection,
        endpointing={
            "mode": "fixed",
            "min_delay": config.min_endpointing_delay,
            "max_delay": config.max_endpointing_delay,
        },
        interruption={
            "enabled": True,
            "mode": "vad",
            "min_duration": config.min_interruption_duration,
            "min_words": config.min_interruption_words,
        },
        preemptive_generation={"enabled": allow_preemptive and config.preemptive_generation},
    )


def build_session(
    settings: MediaConfig | WorkerSettings,
    *,
    llm: llm.LLM,
    vad: vad.VAD,
    allow_preemptive: bool,
    stt: stt.STT | None = None,
    tts: tts.TTS | None = None,
) -> AgentSession[Any]:
    """The session for one call. STT and TTS come from settings unless given (tests, console).

    `allow_preemptive` must be False whenever the graph has side-effecting tools.
    """
    config = settings if isinstance(settings, MediaConfig) else MediaConfig.from_settings(settings)
    options = turn_handling(config, allow_preemptive=allow_preemptive)
    logger.info(
        "voice session: turn detection %s, endpointing %.2f-%.2f s, preemptive generation %s",
        config.turn_detection,
        config.min_endpointing_delay,
        config.max_endpointing_delay,
        "on" if options["preemptive_generation"]["enabled"] else "off",
    )
    extra: dict[str, Any] = {}
    if config.aec_warmup_duration is not None:
        extra["aec_warmup_duration"] = config.aec_warmup_duration
    return AgentSession(
        stt=stt if stt is not None else build_stt(config, vad=vad),
        vad=vad,
        llm=llm,
        tts=tts if tts is not None else build_tts(config),
        turn_handling=options,
        **extra,
    )
