"""Speech that never leaves the machine: faster-whisper STT and the espeak-ng TTS binary.

This module finds, fetches and loads the engines without importing LiveKit, so the settings
edge can resolve `auto` providers and name what is missing; nothing here touches the network
except `download_whisper_model` (`download-files`). `whisper_stt` and `espeak_tts` are the
LiveKit `stt.STT` and `tts.TTS` built on them.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "DEFAULT_ESPEAK_BINARY",
    "DEFAULT_ESPEAK_RATE",
    "DEFAULT_ESPEAK_VOICE",
    "DEFAULT_WHISPER_MODEL",
    "MODEL_FILES",
    "WhisperModelMissing",
    "WhisperOptions",
    "cached_model_path",
    "download_whisper_model",
    "espeak_path",
    "faster_whisper_installed",
    "load_whisper_model",
    "local_speech_available",
    "missing_model_message",
    "whisper_language",
]

logger = logging.getLogger(__name__)

DEFAULT_ESPEAK_BINARY = "espeak-ng"
DEFAULT_ESPEAK_VOICE = "en-us"
DEFAULT_ESPEAK_RATE = 170  # words per minute; espeak's own 175 sounds rushed on the phone

DEFAULT_WHISPER_MODEL = "base"
# what a CTranslate2 Whisper model directory must hold to load
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


class WhisperModelMissing(RuntimeError):
    """The configured Whisper model is neither a model directory nor in the download cache."""


def faster_whisper_installed() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


@dataclass(frozen=True)
class WhisperOptions:
    """How to load and run the model. `model` is a size name, a hub repo id or a directory."""

    model: str = DEFAULT_WHISPER_MODEL
    cache_dir: Path | None = None
    device: str = "cpu"
    compute_type: str = "int8"
    # None detects the language of each utterance
    language: str | None = "en"
    beam_size: int = 5
    cpu_threads: int = 0
    # seconds one utterance may take to transcribe before the call is told STT timed out
    timeout_s: float = 30.0

    @property
    def is_path(self) -> bool:
        # a hub repo id also has a slash ("Systran/faster-whisper-small"), a path is explicit
        return self.model.startswith(("/", "./", "../", "~")) or Path(self.model).is_dir()


def whisper_language(stt_language: str) -> str | None:
    """STT_LANGUAGE to Whisper's code: `en-US` → `en`; `multi` → None (detect)."""
    if stt_language == "multi":
        return None
    return stt_language.split("-")[0].lower()


def missing_model_message(options: WhisperOptions) -> str:
    if options.is_path:
        return (
            f"LOCAL_STT_MODEL: {options.model} is not a Whisper model directory "
            f"(expected {', '.join(MODEL_FILES)})"
        )
    return (
        f"the Whisper model {options.model!r} is not downloaded: run "
        "`python -m agent download-files` (or set LOCAL_STT_MODEL to a model directory)"
    )


def _is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in MODEL_FILES)


def cached_model_path(options: WhisperOptions) -> Path | None:
    """Where the model's files are on disk, without touching the network; None if absent."""
    if options.is_path:
        path = Path(options.model).expanduser()
        return path if _is_model_dir(path) else None
    if not faster_whisper_installed():
        return None
    from faster_whisper.utils import download_model

    try:
        found = Path(
            download_model(
                options.model,
                local_files_only=True,
                cache_dir=str(options.cache_dir) if options.cache_dir else None,
            )
        )
    except Exception:  # huggingface_hub raises several types for "not in the cache"
        return None
    return found if _is_model_dir(found) else None


def download_whisper_model(options: WhisperOptions) -> Path:
    """Fetch the model from the Hugging Face hub into the cache (`download-files`). Blocking."""
    if options.is_path:
        path = cached_model_path(options)
        if path is None:
            raise WhisperModelMissing(missing_model_message(options))
        return path
    from faster_whisper.utils import download_model

    try:
        fetched = download_model(
            options.model, cache_dir=str(options.cache_dir) if options.cache_dir else None
        )
    except ValueError:
        raise  # faster-whisper's own "invalid model size" message names the sizes
    except Exception as exc:  # huggingface_hub's errors are many and multi-line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WhisperModelMissing(
            f"cannot download the Whisper model {options.model!r} from the Hugging Face hub "
            f"({reason}); on an offline machine copy a model directory and set "
            "LOCAL_STT_MODEL to it"
        ) from None
    return Path(fetched)


def load_whisper_model(options: WhisperOptions) -> WhisperModel:
    """Load the model from disk (never the network). Blocking: call it in a thread."""
    from faster_whisper import WhisperModel

    path = cached_model_path(options)
    if path is None:
        raise WhisperModelMissing(missing_model_message(options))
    logger.info("loading Whisper model %s from %s", options.model, path)
    return WhisperModel(
        str(path),
        device=options.device,
        compute_type=options.compute_type,
        cpu_threads=options.cpu_threads,
        local_files_only=True,
    )


def espeak_path(binary: str = DEFAULT_ESPEAK_BINARY) -> str | None:
    """The binary's full path, or None when it is not installed."""
    return shutil.which(binary)


def local_speech_available(
    whisper: WhisperOptions, *, espeak_binary: str = DEFAULT_ESPEAK_BINARY
) -> bool:
    """True when a call can run on local speech alone: faster-whisper with its model on
    disk, and the espeak-ng binary. Reads the disk, never the network."""
    return cached_model_path(whisper) is not None and espeak_path(espeak_binary) is not None
