"""Writes a complete bot configuration for a test, with one user per role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.roles import ROLES

DOMAIN = "localhost"
REPO = Path(__file__).resolve().parents[2]
VEILIGHEIDSHUIZEN = REPO / "config" / "veiligheidshuizen.toml"


VERANTWOORDELIJKE = f"@verantwoordelijke-strikt:{DOMAIN}"
VRIJGAVE_RUIMTE = f"!vrijgave-strikt:{DOMAIN}"


def strict_vh_block(key: str = "strikt", regio: str = "Test", **extra: str) -> str:
    """A hit-no-hit veiligheidshuis for tests, appended to the shipped reference file (which is all generiek)."""
    lines = [f'key = "{key}"', f'naam = "Veiligheidshuis {key.title()}"', f'regio = "{regio}"',
             f'mailbox = "vh@{key}.example"', f'gemeenten = ["{key.title()}stad"]', 'profiel = "hit-no-hit"',
             'contact = "T. de Contact, 010-7654321"', f'verantwoordelijken = ["{VERANTWOORDELIJKE}"]',
             f'vrijgave_ruimte = "{VRIJGAVE_RUIMTE}"', *(f"{k} = {v}" for k, v in extra.items())]
    return "\n[[veiligheidshuis]]\n" + "\n".join(lines) + "\n"


def user_for(role: str) -> str:
    return f"@{role}:{DOMAIN}"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(directory: Path, database_url: str, *, sections: dict[str, dict[str, Any]] | None = None,
                 users: dict[str, str] | None = None) -> Path:
    """``sections`` merges into the defaults, e.g. ``{"matrix": {"rooms": [...]}}``."""
    base: dict[str, dict[str, Any]] = {
        "matrix": {
            "homeserver": "http://127.0.0.1:9", "user_id": f"@zsm-bot:{DOMAIN}", "device_id": "ZSMTEST",
            "store_path": str(directory / "store"), "rooms": [], "sync_timeout_ms": 1000,
        },
        "database": {"url": database_url},
        "http": {"enabled": False, "port": 0},
        "logging": {"level": "DEBUG", "format": "json"},
        "audit": {"key": "test-audit-key"},
        "referentie": {"veiligheidshuizen": str(VEILIGHEIDSHUIZEN)},
    }
    for name, values in (sections or {}).items():
        base.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    lines.append("[users]")
    for uid, role in (users if users is not None else {user_for(r): r for r in sorted(ROLES)}).items():
        lines.append(f'"{uid}" = "{role}"')
    path = directory / "zsm-bot.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
