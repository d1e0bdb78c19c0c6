"""The project's model files as a LiveKit `Plugin`, so LiveKit's `download-files` fetches them.

`python agent/worker.py download-files` runs the download step of every registered plugin;
registering this one adds the local embedding model (FastEmbed weights, when local embeddings
are in use) to the Silero/Deepgram/OpenAI plugins' files.
"""

from __future__ import annotations

import logging

from livekit.agents import Plugin

from tools.settings import ToolsSettings

__all__ = ["ModelFiles"]

logger = logging.getLogger(__name__)


class ModelFiles(Plugin):
    """Downloads what `tools.embeddings` would load at run time."""

    def __init__(self, settings: ToolsSettings) -> None:
        super().__init__("voice-agent model files", "1", "agent.model_files", logger)
        self._settings = settings

    def download_files(self) -> None:
        from tools.embeddings import download_models

        fetched = download_models(self._settings.embedding_config())
        logger.info("embedding models ready: %s", ", ".join(fetched) if fetched else "none needed")
