"""Speech that never leaves the machine: faster-whisper STT and the espeak-ng TTS binary.

`engines` finds and loads them (no LiveKit import, so the settings edge can use it);
`whisper_stt` and `espeak_tts` are the LiveKit `stt.STT` and `tts.TTS` built on them.
"""

from agent.local_speech.engines import local_speech_available

__all__ = ["local_speech_available"]
