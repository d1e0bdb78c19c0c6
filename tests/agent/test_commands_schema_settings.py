"""The committed JSON Schemas match the code, and the data channel's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import ValidationError
from pydantic import ValidationError as SettingsValidationError
from room_fakes import REPLY_SCHEMA, REQUEST_SCHEMA, SCHEMA_DIR

from agent.chat.channel import DataChannelConfig
from agent.chat.handlers import COMMANDS
from agent.chat.protocol import SCHEMA_FILES, ReplyMode, schema_text, schemas, write_schemas
from agent.settings import WorkerSettings, parse_rate


def test_committed_schemas_are_what_the_code_generates() -> None:
    for name, schema in schemas(COMMANDS).items():
        committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == schema_text(schema), (
            f"schemas/{name} differs from the models: run python -m agent.chat.protocol"
        )


def test_write_schemas_writes_all_three(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)


@pytest.mark.parametrize(
    "request_",
    [
        {"v": 1, "id": "1", "command": "search", "args": {"query": "wifi"}},
        {"v": 1, "id": "2", "command": "help"},
        {"v": 1, "id": "3", "command": "mode", "args": {"mode": "text"}},
        {
            "v": 1,
            "id": "4",
            "command": "workflow",
            "args": {"name": "upsell", "params": {"code": "X"}},
        },
        {"v": 1, "id": "5", "command": "reset", "args": {"confirm": True}},
    ],
)
def test_the_request_schema_accepts_documented_requests(request_: dict[str, object]) -> None:
    REQUEST_SCHEMA.validate(request_)


@pytest.mark.parametrize(
    "request_",
    [
        {"v": 2, "id": "1", "command": "help"},
        {"v": 1, "command": "help"},
        {"v": 1, "id": "1", "command": "search", "args": {"query": ""}},
        {"v": 1, "id": "1", "command": "search", "args": {"q": "wifi"}},
        {"v": 1, "id": "1", "command": "mode", "args": {"mode": "loud"}},
        {"v": 1, "id": "1", "command": "help", "extra": True},
    ],
)
def test_the_request_schema_rejects_malformed_requests(request_: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        REQUEST_SCHEMA.validate(request_)


def test_the_reply_schema_rejects_data_that_does_not_fit_the_command() -> None:
    with pytest.raises(ValidationError):
        REPLY_SCHEMA.validate(
            {
                "v": 1,
                "id": "1",
                "ok": True,
                "command": "mode",
                "data": {"mode": "loud", "changed": True},
            }
        )
    with pytest.raises(ValidationError):
        REPLY_SCHEMA.validate(
            {
                "v": 1,
                "id": "1",
                "ok": False,
                "command": None,
                "error": {"code": "oops", "message": "x"},
            }
        )


def test_rates_are_count_per_seconds() -> None:
    assert parse_rate("10/10s") == (10, 10.0)
    assert parse_rate(" 3 / 1.5 ") == (3, 1.5)
    for bad in ("10", "0/10s", "10/0s", "ten/10s", "-1/5s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEXT_REPLY_MODE", "COMMAND_RATE_LIMIT", "STAFF_ROLES", "COMMAND_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    assert WorkerSettings(_env_file=None).data_channel_config() == DataChannelConfig()
    monkeypatch.setenv("TEXT_REPLY_MODE", "Voice")
    monkeypatch.setenv("COMMAND_RATE_LIMIT", "5/30s")
    monkeypatch.setenv("STAFF_ROLES", "staff, manager ,")
    config = WorkerSettings(_env_file=None).data_channel_config()
    assert config.reply_mode is ReplyMode.VOICE
    assert (config.rate_limit, config.rate_window_s) == (5, 30.0)
    assert config.staff_roles == ("staff", "manager")


@pytest.mark.parametrize(
    ("name", "value"),
    [("TEXT_REPLY_MODE", "loud"), ("COMMAND_RATE_LIMIT", "fast"), ("COMMAND_MAX_BYTES", "10")],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsValidationError) as raised:
        WorkerSettings(_env_file=None)
    assert name in str(raised.value)
