"""Helpers around the worker: a clean environment, LiveKit's job runner, logging restored.

The room the worker joins is `room_fakes.FakeRoom`; scripted plugins are in `audio_fakes`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.brain import Brain

WorkerBrain = Callable[..., AbstractAsyncContextManager["Brain"]]
"""The `worker_brain` fixture (tests/agent/conftest.py): `async with worker_brain(**settings)`."""


def worker_process_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything WorkerSettings reads, plus `extra`: what
    a worker subprocess starts from, so a developer's shell cannot leak in."""
    import os

    from agent.settings import WorkerSettings

    names = {info.alias for info in WorkerSettings.model_fields.values()}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def run_agent_cli(
    *args: str, cwd: Path, env: Mapping[str, str], input: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python -m agent ARGS` run to its end, typed `input` on stdin, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(env),
        timeout=timeout,
        check=False,
    )


def clear_worker_env(monkeypatch: Any) -> None:
    """Remove every variable WorkerSettings reads, so a developer's shell cannot leak in."""
    from agent.settings import WorkerSettings

    for info in WorkerSettings.model_fields.values():
        if info.alias:
            monkeypatch.delenv(info.alias, raising=False)


class JobRunner:
    """Plays LiveKit's job runner around a `fake_job_context`: records shutdown requests and
    runs the shutdown callbacks the way the runner does (session first, then callbacks)."""

    def __init__(self, ctx: Any, monkeypatch: Any) -> None:
        self.ctx = ctx
        self.shutdown_reasons: list[str] = []
        self._callbacks: list[Any] = []
        monkeypatch.setattr(ctx, "shutdown", self._shutdown)
        monkeypatch.setattr(ctx, "add_shutdown_callback", self._callbacks.append)

    def _shutdown(self, reason: str = "") -> None:
        self.shutdown_reasons.append(reason)

    async def finish(self, reason: str) -> None:
        import inspect

        try:
            session = self.ctx.primary_session
        except RuntimeError:
            session = None
        if session is not None:
            await session.aclose()
        for callback in self._callbacks:
            takes_reason = len(inspect.signature(callback).parameters) > 0
            await (callback(reason) if takes_reason else callback())


@contextlib.contextmanager
def preserved_logging() -> Any:
    """Undo what `configure_logging` does to the root logger once the test is over."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
