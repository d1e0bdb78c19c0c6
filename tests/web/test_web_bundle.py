"""The committed page bundle (token_server/static) is exactly what `web/` builds from its lock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from token_server.static_files import STATIC_DIR

MAX_BUNDLE_BYTES = 1024 * 1024


def test_committed_bundle_is_rebuilt_byte_for_byte(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    web: Path = request.getfixturevalue("web_project")

    subprocess.run(
        ["node", "build.mjs", str(tmp_path)], cwd=web, check=True, timeout=300, capture_output=True
    )

    committed = sorted(p.name for p in STATIC_DIR.iterdir())
    assert committed == sorted(p.name for p in tmp_path.iterdir()) == ["app.js", "index.html"]
    for name in committed:
        assert (tmp_path / name).read_bytes() == (STATIC_DIR / name).read_bytes(), (
            f"token_server/static/{name} is stale: run `npm ci && npm run build` in web/ "
            "and commit the result"
        )
    assert (STATIC_DIR / "app.js").stat().st_size < MAX_BUNDLE_BYTES
