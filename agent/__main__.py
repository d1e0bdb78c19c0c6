"""The worker CLI: `python -m agent [start | dev | console [--text] | download-files]`.

With no command it picks one: `start` when a LiveKit server is configured, else the voice
console when STT/TTS keys or the local speech engines (Whisper model on disk, espeak-ng)
are there, else the text console.
`python agent/worker.py ...`, `python -m livekit.agents ...` and `lk agent ...` run directly):
the same module-level `server` runs here, plus the text console and a mode auto-pick. With no
command it picks one: `start` when a LiveKit server is configured, else the voice console when
speech is available, else the text console.

Settings are read and checked here, once; a bad or missing setting ends the program with one
line on stderr naming the variable, and exit code 2. Heavy modules are imported only by the
mode that needs them, so `--help` answers at once and the text console starts quickly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.settings import RunMode, WorkerSettings

logger = logging.getLogger("agent.cli")

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="The LiveKit voice worker whose brain is a LangGraph graph.",
    )
    commands = parser.add_subparsers(dest="command", required=False, metavar="COMMAND")
    commands.add_parser("start", help="run the worker for production (JSON logs, draining)")
    commands.add_parser("dev", help="run the worker for development (readable debug logs)")
    console = commands.add_parser(
        "console", help="talk to the agent locally, without a LiveKit server"
    )
    console.add_argument(
        "--text",
        action="store_true",
        help="type instead of speaking; needs no STT/TTS keys and no audio device",
    )
    console.add_argument(
        "--metadata",
        metavar="JSON",
        help='dispatch metadata for the text console, e.g. \'{"language": "de"}\'',
    )
    commands.add_parser(
        "download-files", help="fetch model files (plugins, local embeddings) ahead of time"
    )
    return parser


def auto_mode(settings: WorkerSettings) -> RunMode:
    """The mode `python -m agent` runs in when no command is given (the one place it is chosen)."""
    if settings.livekit_url is not None:
        return "start"
    return "console" if not settings.problems_for("console") else "console-text"


def _mode(args: argparse.Namespace) -> RunMode:
    if args.command == "console":
        return "console-text" if args.text else "console"
    mode: RunMode = args.command
    return mode


def _configure_logs(settings: WorkerSettings, mode: RunMode) -> None:
    from agent.observability import configure_logging

    configure_logging(
        level=settings.resolved_log_level(mode),
        fmt=settings.resolved_log_format(mode, stream_is_tty=sys.stderr.isatty()),
        secrets=settings.secret_values(),
    )


def download_files(settings: WorkerSettings) -> int:
    """Run every LiveKit plugin's download step, then fetch the local speech and embedding
    models the settings use."""
    import importlib

    from livekit.agents import Plugin

    from agent.local_speech import download_whisper_model
    from tools.embeddings import download_models

    importlib.import_module("agent.providers")  # registers the silero/deepgram/openai plugins
    try:
        for plugin in Plugin.registered_plugins:
            logger.info("downloading files for %s", plugin.package)
            plugin.download_files()
        if "whisper" in settings.stt_providers:
            path = download_whisper_model(settings.whisper_options)
            logger.info("Whisper model %s is in %s", settings.local_stt_model, path)
        fetched = download_models(settings.embedding_config())
    except Exception as exc:
        logger.error("download failed: %s", exc)
        return 1
    logger.info("embedding models ready: %s", ", ".join(fetched) if fetched else "none needed")
    return 0


def run_livekit_cli(*args: str) -> int:
    """Run LiveKit's own CLI (`cli.run_app`) on the worker file's `server` with `args`."""
    from livekit.agents import cli

    from agent.worker import server

    saved = sys.argv
    sys.argv = ["python -m agent", *args]
    try:
        cli.run_app(server)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0


def _run_voice_console(settings: WorkerSettings) -> int:
    level = settings.resolved_log_level("console")
    return run_livekit_cli("console", "--log-level", "WARN" if level == "WARNING" else level)


def _run_text_console(settings: WorkerSettings, metadata_json: str | None) -> int:
    import asyncio

    from agent.console import run_text_console

    try:
        return asyncio.run(
            run_text_console(
                settings, stdin=sys.stdin, stdout=sys.stdout, metadata_json=metadata_json
            )
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _export_prometheus_dir(settings: WorkerSettings) -> None:
    """Put the worker in Prometheus multiprocess mode before prometheus_client is imported.

    prometheus_client picks its value storage at import time; set now, LiveKit's main-process
    series and the job processes' series all land in the directory LiveKit's endpoint reads.
    """
    if settings.prometheus_port is None:
        return
    directory = settings.resolved_prometheus_multiproc_dir
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _run_worker(settings: WorkerSettings, *, devmode: bool) -> int:
    import asyncio

    _export_prometheus_dir(settings)
    from agent.server import serve
    from agent.worker import server

    return asyncio.run(serve(server, devmode=devmode, drain_timeout_s=settings.drain_timeout_s))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m agent` and the `voice-agent` script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    from agent.settings import SettingsError, load_settings

    if args.command == "console" and args.metadata is not None and not args.text:
        parser.error("--metadata works with the text console only (add --text)")
    if args.command is None:
        args.metadata = None
        try:
            mode = auto_mode(load_settings("console-text"))
        except SettingsError as exc:
            sys.stderr.write(f"voice-agent: {exc}\n")
            return EXIT_CONFIG
        described = {
            "start": "a LiveKit server is configured: running the worker",
            "console": "no LiveKit server configured: voice console",
            "console-text": "no LiveKit server, no speech keys or local models: text console",
        }
        sys.stderr.write(f"voice-agent: {described.get(mode, mode)} (see --help)\n")
    else:
        mode = _mode(args)
    try:
        settings = load_settings(mode)
    except SettingsError as exc:
        sys.stderr.write(f"voice-agent: {exc}\n")
        return EXIT_CONFIG
    if mode != "console":
        # LiveKit's voice console draws its own terminal UI and log view.
        _configure_logs(settings, mode)
    if mode == "download-files":
        return download_files(settings)
    import asyncio

    from agent.settings import preflight

    try:
        asyncio.run(preflight(settings))
    except SettingsError as exc:
        sys.stderr.write(f"voice-agent: {exc}\n")
        return EXIT_CONFIG
    if mode == "console":
        return _run_voice_console(settings)
    if mode == "console-text":
        return _run_text_console(settings, args.metadata)
    return _run_worker(settings, devmode=mode == "dev")


if __name__ == "__main__":
    sys.exit(main())
