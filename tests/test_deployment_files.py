"""The files operators deploy with agree with each other and with the settings classes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from agent.settings import WorkerSettings
from token_server.settings import TokenServerSettings

ROOT = Path(__file__).resolve().parent.parent


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def aliases(settings_class: type) -> set[str]:
    return {
        str(field.alias)
        for field in settings_class.model_fields.values()  # type: ignore[attr-defined]
        if field.alias
    }


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(env_example())
    missing = (aliases(WorkerSettings) | aliases(TokenServerSettings)) - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_names_only_real_settings() -> None:
    known = aliases(WorkerSettings) | aliases(TokenServerSettings)
    # Read by the LiveKit plugins themselves, not by our settings classes.
    known |= {"PUBLIC_LIVEKIT_URL"}
    unknown = set(env_example()) - known
    assert not unknown, f".env.example names settings nothing reads: {sorted(unknown)}"


def test_livekit_yaml_keys_match_the_env_example_credentials() -> None:
    config = yaml.safe_load((ROOT / "livekit.yaml").read_text())
    env = env_example()
    assert config["keys"] == {env["LIVEKIT_API_KEY"]: env["LIVEKIT_API_SECRET"]}
    # livekit-server refuses secrets shorter than 32 characters.
    assert len(env["LIVEKIT_API_SECRET"]) >= 32
    assert env["LIVEKIT_URL"].endswith(f":{config['port']}")


def test_compose_brings_up_the_whole_stack_with_matching_credentials() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"livekit", "redis", "qdrant", "worker", "token-server"}
    livekit_keys = yaml.safe_load((ROOT / "livekit.yaml").read_text())["keys"]
    for name in ("worker", "token-server"):
        env = services[name]["environment"]
        key = re.sub(r"\$\{[A-Z_]+:-(.*)\}", r"\1", env["LIVEKIT_API_KEY"])
        secret = re.sub(r"\$\{[A-Z_]+:-(.*)\}", r"\1", env["LIVEKIT_API_SECRET"])
        assert livekit_keys == {key: secret}
    assert services["worker"]["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert services["worker"]["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert services["token-server"]["command"] == ["python", "-m", "token_server"]


def test_compose_config_is_valid_where_docker_compose_is_installed() -> None:
    docker = shutil.which("docker")
    has_compose = (
        docker is not None
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
        == 0
    )
    if has_compose:
        assert docker is not None
        result = subprocess.run(
            [docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    else:
        # Without the compose plugin, check what `config` would: every service builds or pulls.
        services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
        assert all("image" in s or "build" in s for s in services.values())


def test_dockerfile_runs_as_a_user_bakes_models_and_starts_the_worker() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2  # multi-stage
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "python -m agent download-files" in dockerfile
    assert 'CMD ["python", "-m", "agent", "start"]' in dockerfile


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").removeprefix("**/")))
    return patterns


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern decides (a `!` pattern re-includes)."""
    from fnmatch import fnmatch

    ignored = False
    for negated, pattern in _dockerignore_patterns():
        parts = path.split("/")
        if any(fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))) or any(
            fnmatch(part, pattern) for part in parts
        ):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    for path in (".venv/bin/python", ".git/HEAD", ".env", ".env.local", ".data/qdrant"):
        assert _ignored(path), path
    assert not _ignored(".env.example")
    # ... but nothing the Dockerfile copies
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    sources = [source for line in copied for source in line.split() if not source.startswith("--")]
    assert sources
    for source in sources:
        assert not _ignored(source), source


def test_every_compose_service_has_a_health_check_and_waits_for_healthy_ones() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
