"""Local speech synthesis with the espeak-ng binary, run as a subprocess.

espeak-ng is GPL-3.0: it is never imported or bundled, only executed when the user has
installed it (Debian/Ubuntu `espeak-ng`, Homebrew `espeak-ng`), so the project's own
install stays Apache-2.0-compatible. The text goes in on stdin and the WAV it writes to
stdout is streamed to the session as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from agent.local_speech import (
    DEFAULT_ESPEAK_BINARY,
    DEFAULT_ESPEAK_RATE,
    DEFAULT_ESPEAK_VOICE,
)

ESPEAK_SAMPLE_RATE = 22050
_WAV_HEADER = 44
_READ_BYTES = 4096


def _header_rate(header: bytes) -> int:
    if len(header) < _WAV_HEADER or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise APIStatusError("espeak-ng did not write a WAV stream", retryable=False)
    channels, rate = struct.unpack_from("<HI", header, 22)
    bits = struct.unpack_from("<H", header, 34)[0]
    if channels != 1 or bits != 16:
        raise APIStatusError(
            f"espeak-ng wrote {channels}-channel {bits}-bit audio", retryable=False
        )
    return int(rate)


class EspeakTTS(tts.TTS):
    """espeak-ng as a LiveKit TTS; the session's `tts.StreamAdapter` feeds it sentences."""

    def __init__(
        self,
        *,
        voice: str = DEFAULT_ESPEAK_VOICE,
        words_per_minute: int = DEFAULT_ESPEAK_RATE,
        binary: str = DEFAULT_ESPEAK_BINARY,
        sample_rate: int = ESPEAK_SAMPLE_RATE,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.binary = binary

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--stdout",
            "-v",
            self.voice,
            "-s",
            str(self.words_per_minute),
            # the text arrives on stdin, so nothing in it can be read as an option
        ]

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        espeak = self._espeak
        try:
            process = await asyncio.create_subprocess_exec(
                *espeak.command(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise APIConnectionError(
                f"cannot run {espeak.binary!r} ({exc.strerror}); install espeak-ng "
                "or choose another TTS_PROVIDER",
                retryable=False,
            ) from exc
        assert process.stdin and process.stdout and process.stderr  # all three are pipes
        try:
            process.stdin.write(self.input_text.encode("utf-8"))
            await process.stdin.drain()
            process.stdin.close()
            async with asyncio.timeout(self._conn_options.timeout):
                header = await process.stdout.readexactly(_WAV_HEADER)
            rate = _header_rate(header)
            if rate != espeak.sample_rate:
                raise APIStatusError(
                    f"espeak-ng voice {espeak.voice!r} speaks at {rate} Hz, "
                    f"expected {espeak.sample_rate} Hz",
                    retryable=False,
                )
            output_emitter.initialize(
                request_id=utils.shortuuid("espeak_"),
                sample_rate=rate,
                num_channels=1,
                mime_type="audio/pcm",
            )
            odd = b""
            while True:
                # a stall this long means espeak-ng hung; a sentence takes milliseconds
                async with asyncio.timeout(self._conn_options.timeout):
                    chunk = await process.stdout.read(_READ_BYTES)
                if not chunk:
                    break
                # keep 16-bit samples whole across reads
                chunk, odd = odd + chunk, b""
                if len(chunk) % 2:
                    chunk, odd = chunk[:-1], chunk[-1:]
                output_emitter.push(chunk)
            returncode = await process.wait()
            if returncode != 0:
                error = (await process.stderr.read()).decode(errors="replace").strip()
                raise APIStatusError(
                    f"espeak-ng exited with {returncode}: {error[:200]}", retryable=False
                )
            output_emitter.flush()
        except asyncio.IncompleteReadError as exc:
            error = (await process.stderr.read()).decode(errors="replace").strip()
            raise APIStatusError(
                f"espeak-ng wrote no audio: {error[:200] or 'no output'}", retryable=False
            ) from exc
        except TimeoutError as exc:
            raise APITimeoutError("espeak-ng stopped producing audio") from exc
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
