"""The worker in LiveKit Agents' own entry-point shape: a module-level `server`, its
`rtc_session` entrypoint and `cli.run_app(server)`.

So LiveKit's CLI flows run this file as they run any LiveKit agent:

    python agent/worker.py start | dev | console | download-files
    python -m livekit.agents start agent/worker.py      # discovers the `server` global
    lk agent dev                                        # hot reload, built on that discovery

`python -m agent ...` runs this same `server` and adds the text console and the mode
auto-pick. Settings are read once, when this module is imported (in the main process and
again in each job process LiveKit starts), from the environment, `.env` and `.env.local`.

The project's own model files are a LiveKit `Plugin` (`ModelFiles`), so LiveKit's
`download-files` fetches the local embedding model (FastEmbed weights, when local embeddings
are in use) next to the Silero/Deepgram/OpenAI plugins' files.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

if __name__ in ("__main__", "__mp_main__") and not __package__:
    # `python agent/worker.py` puts agent/ itself first on sys.path, where its modules would
    # shadow top-level ones; the project root is what the imports below expect.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from livekit.agents import JobContext, Plugin, cli

from agent.observability import redact_livekit_logs
from agent.server import JobEntrypoint, new_server
from agent.settings import SettingsError, WorkerSettings, load_settings
from tools.settings import ToolsSettings

__all__ = ["ModelFiles", "entrypoint", "server", "settings"]

# named, not `__name__`: run as a file this module is `__main__`
logger = logging.getLogger("agent.worker")


class ModelFiles(Plugin):
    """Downloads what `tools.embeddings` would load at run time."""

    def __init__(self, settings: ToolsSettings) -> None:
        super().__init__("voice-agent model files", "1", "agent.worker", logger)
        self._settings = settings

    def download_files(self) -> None:
        from tools.embeddings import download_models

        fetched = download_models(self._settings.embedding_config())
        logger.info("embedding models ready: %s", ", ".join(fetched) if fetched else "none needed")


def _settings() -> WorkerSettings:
    try:
        # What a mode needs beyond valid values (LiveKit credentials, which LiveKit's own CLI
        # may pass as flags) is checked by the command that runs the mode.
        return load_settings("console-text")
    except SettingsError as exc:
        sys.stderr.write(f"voice-agent: {exc}\n")
        raise SystemExit(2) from None


settings = _settings()
server = new_server(settings)
if threading.current_thread() is threading.main_thread():
    # LiveKit's `download-files` then fetches the local embedding model too (plugins may only
    # register on the main thread; a job process importing this file elsewhere needs none).
    Plugin.register_plugin(ModelFiles(settings))
server.on("worker_started", lambda: redact_livekit_logs(settings.secret_values()))


@server.rtc_session(agent_name=settings.agent_name)
async def entrypoint(ctx: JobContext) -> None:
    """One call per job: join, find the caller, build brain and voice session, greet."""
    await JobEntrypoint(settings)(ctx)


if __name__ == "__main__":
    cli.run_app(server)
