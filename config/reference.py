"""The reference data and mail templates that ship inside the package, and the operator's own copies.

The catalogue of afdoeningen, the veiligheidshuizen and the templates are read through ``importlib.resources``, so
an installed wheel finds them wherever it lives; a path in the configuration replaces a packaged file. Every
reference file fails with the same one-line Dutch message, naming the file.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from config.reader import near_path, os_reason, toml_problem
from domain.afdoeningen import Catalogus, parse_afdoeningen
from domain.errors import ConfigError
from domain.veiligheidshuizen import Veiligheidshuizen, parse_veiligheidshuizen

PACKAGE = "config"
AFDOENINGEN = "afdoeningen.toml"
VEILIGHEIDSHUIZEN = "veiligheidshuizen.toml"
EXAMPLE_CONFIG = "zsm-bot.example.toml"
# A documented example of the `zsm-bot import` format (docs/import.md); `zsm-bot init` copies it beside the config.
EXAMPLE_IMPORT = "voorbeeld-markeringen.csv"
TEMPLATES = "templates"


def packaged(name: str) -> Traversable:
    """A file shipped in the ``config`` package (reference data, templates, the example configuration)."""
    return files(PACKAGE) / name


def describe(source: Path | None, default: str) -> str:
    """How a reference source is named in messages: the operator's path, or the packaged default."""
    return str(source) if source is not None else f"(meegeleverd) {default}"


def load_blocks(source: Path | None, default: str, what: str, block: str) -> list[dict[str, Any]]:
    """The ``[[block]]`` tables of a reference file; ``source`` None means the packaged copy."""
    where = describe(source, default)
    try:
        text = source.read_text(encoding="utf-8") if source is not None else packaged(default).read_text("utf-8")
    except FileNotFoundError:
        meant = near_path(source) if source is not None else None
        hint = (f"; bedoelde u {meant}? Een relatief pad in de configuratie geldt vanaf de map van het "
                "configuratiebestand; schrijf het pad voluit") if meant else ""
        raise ConfigError(f"{what}: bestand {where} bestaat niet{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{what}: bestand {where} is niet leesbaar ({os_reason(exc)})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {where} is geen geldige TOML ({toml_problem(exc)})") from None
    entries = data.get(block)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{what}: {where} bevat geen [[{block}]]-blokken")
    return entries


def load_afdoeningen(path: Path | None = None) -> Catalogus:
    return parse_afdoeningen(load_blocks(path, AFDOENINGEN, "afdoeningen", "afdoening"))


def load_veiligheidshuizen(path: Path | None = None) -> Veiligheidshuizen:
    return parse_veiligheidshuizen(load_blocks(path, VEILIGHEIDSHUIZEN, "veiligheidshuizen", "veiligheidshuis"))
