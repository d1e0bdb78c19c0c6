"""The voice path end to end: real speech PCM → Silero VAD → STT → LLM → TTS → audio out.

Speech is espeak-ng output (tests/fixtures/audio) played in real time at 16 and 48 kHz.
VAD is the real Silero model; STT, LLM and TTS are scripted but driven by the audio itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from audio_fakes import (
    ScriptedLLM,
    ScriptedSTT,
    ScriptedTTS,
    VoiceHarness,
    rms,
    speech_clip,
)
from livekit.agents.vad import VAD
from livekit.plugins import silero

from agent.providers import MediaConfig

QUESTION = "When is breakfast served?"
BARGE_IN = "Sorry, one more thing."
ANSWER = "Breakfast is served from seven until half past ten in the garden room."
LONG_ANSWER = (
    "Breakfast is served from seven until half past ten in the garden room, "
    "with a hot buffet, fresh pastries from the bakery next door, fruit, cereals, "
    "and eggs cooked to order at the little station by the window."
)
FOLLOW_UP = "Of course, what else can I do for you?"


@pytest.fixture(scope="module")
def vad() -> Iterator[VAD]:
    yield silero.VAD.load()


def config() -> MediaConfig:
    # no echo in these tests, so the agent may be interrupted from its first word
    return MediaConfig.build(min_endpointing_delay=0.3, aec_warmup_duration=0.0)


def front_desk(answer: str) -> ScriptedLLM:
    return ScriptedLLM(lambda text: answer if "breakfast" in text.lower() else FOLLOW_UP)


@pytest.fixture
async def harness(vad: VAD, request: pytest.FixtureRequest) -> AsyncIterator[VoiceHarness]:
    sample_rate, answer = request.param
    started = await VoiceHarness.start(
        config(),
        vad=vad,
        stt=ScriptedSTT([QUESTION, BARGE_IN]),
        llm=front_desk(answer),
        tts=ScriptedTTS(seconds_per_char=0.03),
        sample_rate=sample_rate,
    )
    yield started
    await started.aclose()


@pytest.mark.parametrize("harness", [(16000, ANSWER), (48000, ANSWER)], indirect=True)
async def test_spoken_question_gets_a_spoken_answer(harness: VoiceHarness) -> None:
    rate = harness.mic.sample_rate
    speech_ended = await harness.mic.play(speech_clip("question", rate))
    await harness.wait_for_messages("assistant", 1)
    await harness.wait_for_state("listening", after=1)

    user, assistant = harness.messages("user")[0], harness.messages("assistant")[0]
    assert user.text_content == QUESTION
    assert assistant.text_content == ANSWER
    assert not assistant.interrupted
    assert [r.user_text for r in harness.llm.requests] == [QUESTION]

    heard = harness.speaker.audio()
    sample_rate = harness.speaker.frames[0].frame.sample_rate
    assert harness.speaker.frames[0].at > speech_ended
    assert len(heard) / sample_rate == pytest.approx(harness.tts.duration_for(ANSWER), abs=0.05)
    assert rms(heard) > 1000, "the agent's reply is audible, not silence"
    assert [s.interrupted for s in harness.speaker.segments] == [False]


@pytest.mark.parametrize("harness", [(16000, LONG_ANSWER), (48000, LONG_ANSWER)], indirect=True)
async def test_caller_barging_in_interrupts_the_reply(harness: VoiceHarness) -> None:
    rate = harness.mic.sample_rate
    await harness.mic.play(speech_clip("question", rate))
    await harness.speaker.wait_for_audio()
    # speak over the agent, as a caller would, while most of the reply is still to come
    await harness.mic.play(speech_clip("barge_in", rate))
    await harness.wait_for_messages("assistant", 2)

    interrupted, follow_up = harness.messages("assistant")
    assert (interrupted.text_content or "").startswith("Breakfast is served")
    assert interrupted.interrupted
    assert follow_up.text_content == FOLLOW_UP
    assert [m.text_content for m in harness.messages("user")] == [QUESTION, BARGE_IN]

    first = harness.speaker.segments[0]
    assert first.interrupted
    assert first.played is not None and first.played < harness.tts.duration_for(LONG_ANSWER) / 2
    await harness.wait_for_state("listening", after=2)
    assert [s.interrupted for s in harness.speaker.segments] == [True, False]
