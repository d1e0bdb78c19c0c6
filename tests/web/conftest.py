"""Fixtures for the web page: the `web/` npm project (installed once with `npm ci`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
# The agent tests' fakes (small brain, document store, schema checks) build real payloads here.
sys.path.insert(0, str(ROOT / "tests" / "agent"))
# ...and the token server tests' helper starts the real server subprocess.
sys.path.insert(0, str(ROOT / "tests" / "token_server"))

_MODULES = ("esbuild", "livekit-client", "playwright-core")


@pytest.fixture(scope="session")
def web_project() -> Path:
    """`web/` with its locked dependencies installed; fails plainly without Node and npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the web page tests need Node 20+ and npm on PATH (apt-get install nodejs npm)")
    lock = WEB / "package-lock.json"
    installed = WEB / "node_modules" / ".package-lock.json"
    stale = not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime
    if stale or not all((WEB / "node_modules" / name).is_dir() for name in _MODULES):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, timeout=600)
    return WEB
