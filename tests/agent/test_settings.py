"""WorkerSettings and load_settings: defaults, per-mode requirements, one-line errors, secrets."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from _worker_fakes import clear_worker_env

from agent.providers import MediaConfig
from agent.settings import SettingsError, WorkerSettings, load_settings

LIVEKIT = {
    "LIVEKIT_URL": "ws://localhost:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "livekit-secret-value-123",
}
VOICE_KEYS = {"DEEPGRAM_API_KEY": "deepgram-secret-456", "OPENAI_API_KEY": "openai-secret-789"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_worker_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def _error(mode: str = "start") -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(mode, env_file=None)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_need_nothing_for_the_text_console_and_downloads() -> None:
    settings = load_settings("console-text", env_file=None)
    assert settings.agent_name == "voice-agent"
    # no key: "auto" resolves to a local engine or names the missing key (test_local_speech)
    assert (settings.stt_provider, settings.tts_provider) == ("auto", "auto")
    assert settings.stt_model is None
    assert settings.resolved_checkpoint_sqlite_path == Path(".data/checkpoints.sqlite3")
    assert load_settings("download-files", env_file=None).pms_backend == "demo"


@pytest.mark.parametrize("missing", sorted(LIVEKIT))
@pytest.mark.parametrize("mode", ["start", "dev"])
def test_each_livekit_variable_is_required_to_run_the_worker(
    monkeypatch: pytest.MonkeyPatch, missing: str, mode: str
) -> None:
    _env(monkeypatch, {**VOICE_KEYS, **{k: v for k, v in LIVEKIT.items() if k != missing}})
    message = _error(mode)
    assert missing in message
    assert f"`{mode}`" in message
    others = set(LIVEKIT) - {missing}
    assert not any(f"{other} is not set" in message for other in others)


def test_a_livekit_url_without_a_scheme_is_rejected_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _env(monkeypatch, {**LIVEKIT, **VOICE_KEYS, "LIVEKIT_URL": "localhost:7880"})
    message = _error()
    assert "LIVEKIT_URL" in message
    assert "wss://" in message


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"OPENAI_API_KEY": "k", "STT_PROVIDER": "deepgram"}, "DEEPGRAM_API_KEY"),
        ({"DEEPGRAM_API_KEY": "k", "TTS_PROVIDER": "openai"}, "OPENAI_API_KEY"),
        ({"DEEPGRAM_API_KEY": "k", "STT_PROVIDER": "openai"}, "OPENAI_API_KEY"),
        ({"OPENAI_API_KEY": "k", "TTS_PROVIDER": "openai,deepgram"}, "DEEPGRAM_API_KEY"),
    ],
)
@pytest.mark.parametrize("mode", ["start", "dev", "console"])
def test_voice_modes_need_the_key_of_every_configured_provider(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str, mode: str
) -> None:
    _env(monkeypatch, {**LIVEKIT, **env})
    message = _error(mode)
    assert f"{missing} is not set" in message
    assert "console --text" in message


def test_one_provider_key_serves_stt_and_tts(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {**LIVEKIT, "DEEPGRAM_API_KEY": "k", "TTS_PROVIDER": "deepgram"})
    assert load_settings("start", env_file=None).tts_providers == ("deepgram",)


def test_the_voice_console_does_not_need_livekit(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, VOICE_KEYS)
    assert load_settings("console", env_file=None).livekit_url is None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PROMETHEUS_PORT", "abc", "integer"),
        ("PROMETHEUS_PORT", "70000", "65535"),
        ("TTS_PROVIDER", "polly", "openai, deepgram"),
        ("STT_PROVIDER", "deepgram,deepgram", "twice"),
        ("STT_PROVIDER", " , ", "deepgram, openai"),
        ("LOG_FORMAT", "xml", "'auto', 'text' or 'json'"),
        ("LOG_LEVEL", "loud", "'DEBUG'"),
        ("TURN_DETECTION", "magic", "'vad' or 'stt'"),
        ("MIN_ENDPOINTING_DELAY", "-1", "greater than or equal to 0"),
        ("VAD_ACTIVATION_THRESHOLD", "1.5", "less than 1"),
        ("AGENT_NAME", "", "at least 1 character"),
        ("CALLER_WAIT_TIMEOUT_S", "0", "greater than 0"),
    ],
)
def test_an_invalid_value_names_the_variable_and_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    _env(monkeypatch, {variable: value})
    message = _error("console-text")
    assert message.startswith("invalid configuration: ")
    assert variable in message
    assert expected in message


def test_several_invalid_values_are_reported_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"PROMETHEUS_PORT": "x", "TTS_PROVIDER": "y"})
    message = _error("console-text")
    assert "PROMETHEUS_PORT" in message
    assert "TTS_PROVIDER" in message


def test_endpointing_delays_must_be_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"MIN_ENDPOINTING_DELAY": "2", "MAX_ENDPOINTING_DELAY": "1"})
    message = _error("console-text")
    assert "MAX_ENDPOINTING_DELAY must be at least MIN_ENDPOINTING_DELAY" in message


def test_inherited_tools_settings_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"PMS_BACKEND": "apaleo"})
    assert "APALEO_CLIENT_ID" in _error("console-text")


def test_provider_lists_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"STT_PROVIDER": " Deepgram , openai ", "LOG_LEVEL": "warn"})
    settings = load_settings("console-text", env_file=None)
    assert settings.stt_provider == "deepgram,openai"
    assert settings.stt_providers == ("deepgram", "openai")
    assert settings.log_level == "WARNING"


def test_secrets_never_appear_in_errors_or_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {**LIVEKIT, **VOICE_KEYS, "LLM_API_KEY": "llm-secret-000"}
    secrets.pop("LIVEKIT_URL")
    _env(monkeypatch, {**secrets, "PROMETHEUS_PORT": "not-a-port"})
    message = _error()
    monkeypatch.delenv("PROMETHEUS_PORT")
    monkeypatch.setenv("LIVEKIT_URL", LIVEKIT["LIVEKIT_URL"])
    settings = load_settings("start", env_file=None)
    shown = f"{message} {settings!r} {settings} {settings.model_dump()}"
    for name in ("LIVEKIT_API_SECRET", "DEEPGRAM_API_KEY", "OPENAI_API_KEY", "LLM_API_KEY"):
        assert secrets[name] not in shown
    assert set(settings.secret_values()) >= {
        secrets[name]
        for name in ("LIVEKIT_API_SECRET", "DEEPGRAM_API_KEY", "OPENAI_API_KEY", "LLM_API_KEY")
    }


def test_a_bad_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_PORT", "hunter2-secret-port")
    assert "hunter2" not in _error("console-text")


def test_the_llm_key_falls_back_to_the_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"OPENAI_API_KEY": "shared-key"})
    settings = load_settings("console-text", env_file=None)
    assert settings.resolved_llm_api_key is not None
    assert settings.resolved_llm_api_key.get_secret_value() == "shared-key"
    monkeypatch.setenv("LLM_API_KEY", "own-key")
    own = load_settings("console-text", env_file=None).resolved_llm_api_key
    assert own is not None
    assert own.get_secret_value() == "own-key"


def test_values_are_read_from_a_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / "worker.env"
    env_file.write_text("AGENT_NAME=front-desk\nLIVEKIT_URL=wss://example.livekit.cloud\n")
    settings = load_settings("console-text", env_file=env_file)
    assert settings.agent_name == "front-desk"
    assert settings.livekit_url == "wss://example.livekit.cloud"


@pytest.mark.parametrize(
    ("mode", "tty", "configured", "expected"),
    [
        ("start", True, "auto", "json"),
        ("dev", True, "auto", "text"),
        ("dev", False, "auto", "json"),
        ("console-text", True, "auto", "text"),
        ("start", True, "text", "text"),
        ("dev", True, "json", "json"),
    ],
)
def test_log_format_is_json_in_production_and_when_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, mode: str, tty: bool, configured: str, expected: str
) -> None:
    monkeypatch.setenv("LOG_FORMAT", configured)
    settings = load_settings("console-text", env_file=None)
    assert settings.resolved_log_format(mode, stream_is_tty=tty) == expected  # type: ignore[arg-type]


def test_log_level_defaults_follow_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings("console-text", env_file=None)
    assert settings.resolved_log_level("start") == "INFO"
    assert settings.resolved_log_level("dev") == "DEBUG"
    assert settings.resolved_log_level("console-text") == "WARNING"
    monkeypatch.setenv("LOG_LEVEL", "error")
    assert load_settings("console-text", env_file=None).resolved_log_level("dev") == "ERROR"


def test_settings_survive_the_trip_to_a_job_process(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {**LIVEKIT, **VOICE_KEYS, "AGENT_NAME": "concierge"})
    settings = load_settings("start", env_file=None)
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert copy.livekit_api_secret is not None
    assert copy.livekit_api_secret.get_secret_value() == LIVEKIT["LIVEKIT_API_SECRET"]


def test_the_session_assembly_reads_its_knobs_from_these_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _env(
        monkeypatch,
        {
            "STT_PROVIDER": "deepgram,openai",
            "TTS_PROVIDER": "deepgram",
            "MIN_ENDPOINTING_DELAY": "0.3",
            "MAX_ENDPOINTING_DELAY": "2",
            "PREEMPTIVE_GENERATION": "false",
            "TURN_DETECTION": "stt",
            "VAD_MIN_SILENCE_DURATION": "0.4",
        },
    )
    config = MediaConfig.from_settings(load_settings("console-text", env_file=None))
    assert config.stt_providers == ("deepgram", "openai")
    assert config.tts_providers == ("deepgram",)
    assert (config.min_endpointing_delay, config.max_endpointing_delay) == (0.3, 2.0)
    assert config.preemptive_generation is False
    assert config.turn_detection == "stt"
    assert config.vad_min_silence_duration == 0.4


def test_every_variable_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "worker.md").read_text()
    aliases = [info.alias for info in WorkerSettings.model_fields.values() if info.alias]
    undocumented = [alias for alias in aliases if f"| `{alias}` |" not in doc]
    assert undocumented == []


def test_env_local_from_lk_app_env_wins_over_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AGENT_NAME=from-env\nLLM_MODEL=gpt-from-env\n")
    # what `lk app env -w` writes: the project's LiveKit credentials
    (tmp_path / ".env.local").write_text(
        "LIVEKIT_URL=wss://demo.livekit.cloud\nLIVEKIT_API_KEY=APIkey\n"
        "LIVEKIT_API_SECRET=local-secret\nAGENT_NAME=from-env-local\n"
    )
    settings = load_settings("console-text")
    assert settings.livekit_url == "wss://demo.livekit.cloud"
    assert settings.agent_name == "from-env-local"
    assert settings.llm_model == "gpt-from-env"
    assert "local-secret" in settings.secret_values()


def test_the_environment_wins_over_both_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("AGENT_NAME=from-env\n")
    (tmp_path / ".env.local").write_text("AGENT_NAME=from-env-local\n")
    monkeypatch.setenv("AGENT_NAME", "from-environment")
    assert load_settings("console-text").agent_name == "from-environment"


def test_tracing_endpoints_must_be_http_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"})
    message = _error("console-text")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL" in message
