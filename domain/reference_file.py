"""Reading a reference-data file (veiligheidshuizen, afdoeningen): TOML with a list of ``[[block]]`` tables.
One place for the file-level errors, so every reference file fails with the same one-line Dutch message."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from domain.errors import ConfigError


def load_blocks(path: Path, what: str, block: str) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what}: bestand {path} bestaat niet") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {path} is geen geldige TOML ({exc})") from None
    entries = data.get(block)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{what}: {path} bevat geen [[{block}]]-blokken")
    return entries
