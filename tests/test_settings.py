"""Configuration: every wrong value stops the bot with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings, resolve_config_path
from tests.harness.config import write_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "zsm-bot.example.toml"


def test_example_config_loads() -> None:
    s = load_settings(EXAMPLE, environ={})
    assert s.matrix.require_encryption and s.users["@ovj.jansen:example.nl"] == "ovj"


def test_env_overrides_secrets(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    s = load_settings(path, environ={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "tok", "ZSM_BOT_MATRIX_SYNC_TIMEOUT_MS": "500",
                                     "ZSM_BOT_MATRIX_REQUIRE_ENCRYPTION": "ja"})
    assert s.matrix.access_token == "tok" and s.matrix.sync_timeout_ms == 500 and s.matrix.require_encryption


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("matrix", {"homeserver": "matrix.example.nl"}, "matrix.homeserver: verwacht een URL"),
        ("matrix", {"user_id": "zsm-bot"}, "matrix.user_id: verwacht een Matrix-id"),
        ("matrix", {"rooms": ["#alias:x"]}, "matrix.rooms[0]: verwacht een room-id"),
        ("matrix", {"sync_timeout_ms": "lang"}, "matrix.sync_timeout_ms: verwacht een geheel getal"),
        ("matrix", {"require_encryption": "yes"}, "matrix.require_encryption: verwacht true of false"),
        ("database", {"url": "mysql://x"}, "database.url: verwacht sqlite+aiosqlite"),
        ("logging", {"level": "LOUD"}, "logging.level: verwacht een van DEBUG"),
        ("http", {"port": 70000}, "http.port: verwacht hoogstens 65535"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, section: str, values: dict[str, object], expected: str) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={section: values})
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_unknown_role_and_bad_user(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", users={"@a:localhost": "koning"})
    with pytest.raises(ConfigError, match="onbekende rol 'koning'"):
        load_settings(path, environ={})
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", users={"alice": "ovj"})
    with pytest.raises(ConfigError, match="geen Matrix-id"):
        load_settings(path, environ={})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bestaat niet"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[matrix\n")
    with pytest.raises(ConfigError, match="geen geldige TOML"):
        load_settings(bad)


def test_config_path_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZSM_BOT_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("zsm-bot.toml")
    monkeypatch.setenv("ZSM_BOT_CONFIG", "/etc/x.toml")
    assert resolve_config_path(None) == Path("/etc/x.toml")
    assert resolve_config_path("a.toml") == Path("a.toml")


def test_cli_reports_config_error_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={"matrix": {"homeserver": "nope"}})
    for args in (["check-config"], ["db", "upgrade"], ["console", "--as", "@ovj:localhost"], ["run"]):
        proc = subprocess.run([sys.executable, "-m", "cli", *args, "--config", str(path)],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.strip().startswith("configuratiefout: matrix.homeserver"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_console_cli_end_to_end(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    proc = subprocess.run([sys.executable, "-m", "cli", "console", "--as", "@kpc:localhost", "--config", str(path)],
                          input="!ping\n!onzin\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "pong" and lines[1].startswith("Onbekend commando '!onzin'")
    proc = subprocess.run([sys.executable, "-m", "cli", "db", "upgrade", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "database bijgewerkt tot revisie" in proc.stdout
