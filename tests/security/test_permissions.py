"""The permission matrix: check-config refuses rights the privacy frame forbids."""

from __future__ import annotations

from pathlib import Path

from tests.harness.config import write_config


def test_check_config_reports_rights_the_privacy_frame_forbids(tmp_path: Path) -> None:
    from cli.config_check import check
    from config.settings import load_settings

    base = {"matrix": {"password": "x", "rooms": ["!r:localhost"]}}
    ok = load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections=base), environ={})
    assert not [p for p in check(ok)[0] if p.startswith("permissions.")]
    (tmp_path / "zsm-bot.toml").write_text((tmp_path / "zsm-bot.toml").read_text()
                                           + '\n[permissions]\ncheck = ["ovj", "politie"]\nbesluit = ["ovj", "shn"]\n')
    bad = load_settings(tmp_path / "zsm-bot.toml", environ={})
    problems = [p for p in check(bad)[0] if p.startswith("permissions.")]
    assert any(p.startswith("permissions.check: geeft politie") for p in problems), problems
    assert any(p.startswith("permissions.besluit: geeft SHN") for p in problems), problems
