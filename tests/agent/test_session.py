"""Session assembly: settings reach turn handling and providers; the preemptive guard holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audio_fakes import ScriptedLLM, ScriptedSTT, ScriptedTTS, VoiceHarness, speech_clip
from livekit.agents.vad import VAD
from livekit.plugins import deepgram, openai, silero

from agent.providers import MediaConfig, MediaConfigError, build_session
from agent.settings import WorkerSettings

QUESTION = "When is breakfast served?"


@pytest.fixture(scope="module")
def vad() -> Iterator[VAD]:
    yield silero.VAD.load()


def worker_settings(**env: str) -> WorkerSettings:
    return WorkerSettings(_env_file=None, **env)  # type: ignore[call-arg]


async def test_worker_settings_shape_turn_taking_and_providers(vad: VAD) -> None:
    settings = worker_settings(
        DEEPGRAM_API_KEY="dg-key",
        OPENAI_API_KEY="sk-key",
        STT_LANGUAGE="de",
        MIN_ENDPOINTING_DELAY="0.4",
        MAX_ENDPOINTING_DELAY="2.5",
        MIN_INTERRUPTION_DURATION="0.7",
        MIN_INTERRUPTION_WORDS="2",
        AEC_WARMUP_DURATION="1.5",
    )
    session = build_session(settings, llm=ScriptedLLM("ok"), vad=vad, allow_preemptive=True)

    assert session.turn_detection == "vad"
    assert session.options.endpointing["min_delay"] == 0.4
    assert session.options.endpointing["max_delay"] == 2.5
    assert session.options.interruption["enabled"] is True
    assert session.options.interruption["min_duration"] == 0.7
    assert session.options.interruption["min_words"] == 2
    assert session.options.aec_warmup_duration == 1.5
    assert session.vad is vad
    assert isinstance(session.stt, deepgram.STT)
    assert session.stt.model == "nova-3"
    assert session.stt._opts.language == "de"
    assert isinstance(session.tts, openai.TTS)


@pytest.mark.parametrize(
    ("allow_preemptive", "setting", "expected"),
    [(True, "true", True), (False, "true", False), (True, "false", False)],
)
async def test_preemptive_generation_needs_both_the_graph_and_the_setting(
    vad: VAD, allow_preemptive: bool, setting: str, expected: bool
) -> None:
    config = MediaConfig.build(preemptive_generation=setting)
    session = build_session(
        config,
        llm=ScriptedLLM("ok"),
        vad=vad,
        allow_preemptive=allow_preemptive,
        stt=ScriptedSTT([]),
        tts=ScriptedTTS(),
    )
    assert session.options.preemptive_generation["enabled"] is expected


async def test_missing_stt_key_fails_with_the_variable_name(vad: VAD) -> None:
    settings = worker_settings(OPENAI_API_KEY="sk-very-secret", STT_PROVIDER="deepgram")
    with pytest.raises(MediaConfigError, match="DEEPGRAM_API_KEY") as caught:
        build_session(settings, llm=ScriptedLLM("ok"), vad=vad, allow_preemptive=False)
    assert "sk-very-secret" not in str(caught.value)


async def test_given_stt_and_tts_are_used_without_provider_keys(vad: VAD) -> None:
    stt, tts = ScriptedSTT([]), ScriptedTTS()
    session = build_session(
        worker_settings(), llm=ScriptedLLM("ok"), vad=vad, allow_preemptive=False, stt=stt, tts=tts
    )
    assert session.stt is stt
    assert session.tts is tts


async def reply_started_before_turn_committed(vad: VAD, *, allow_preemptive: bool) -> bool:
    # a long endpointing delay separates "final transcript" from "turn committed"
    config = MediaConfig.build(min_endpointing_delay=1.0, aec_warmup_duration=0.0)
    harness = await VoiceHarness.start(
        config,
        vad=vad,
        stt=ScriptedSTT([QUESTION]),
        llm=ScriptedLLM("From seven."),
        tts=ScriptedTTS(seconds_per_char=0.02),
        sample_rate=16000,
        allow_preemptive=allow_preemptive,
    )
    try:
        await harness.mic.play(speech_clip("question", 16000))
        await harness.wait_for_messages("assistant", 1)
        turn = harness.messages("user")[0].metrics
        # the framework's own record of when it decided the caller had finished
        committed = turn["stopped_speaking_at"] + turn["end_of_turn_delay"]
        assert [r.user_text for r in harness.llm.requests] == [QUESTION]
        return harness.llm.requests[0].wall < committed
    finally:
        await harness.aclose()


async def test_side_effecting_graph_runs_only_after_the_turn_is_committed(vad: VAD) -> None:
    assert not await reply_started_before_turn_committed(vad, allow_preemptive=False)


async def test_preemptive_generation_starts_the_reply_before_the_turn_is_committed(
    vad: VAD,
) -> None:
    assert await reply_started_before_turn_committed(vad, allow_preemptive=True)
