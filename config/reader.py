"""Typed reading of one TOML section: every getter checks its value and every error names the full key.

Shared by the section parsers in ``config``; the one place that says how a key is spelled in an error line, how a
value from the environment is coerced, and how an unknown key is refused with the nearest known one.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from domain.errors import ConfigError
from domain.suggest import nearest

__all__ = ["ConfigReader", "EnvValue", "resolve_path", "unknown"]


def unknown(what: str, name: str, known: Iterable[str], *, prefix: str = "") -> ConfigError:
    """``<prefix.name>: onbekende <what>; bedoelde u <prefix.nearest>?`` (or the known ones when none is near)."""
    pool = list(known)
    full = f"{prefix}{name}"
    near = nearest(name, pool, limit=1)
    if near:
        return ConfigError(f"{full}: onbekende {what}; bedoelde u {prefix}{near[0]}?")
    return ConfigError(f"{full}: onbekende {what}; bekend zijn {', '.join(prefix + k for k in pool)}")


class EnvValue(str):
    """A string from the environment; typed readers may coerce it."""


class ConfigReader:
    """Reads one section with typed getters; each error names the full key."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix

    def only(self, known: Iterable[str]) -> ConfigReader:
        """Refuse the first key that is not in ``known``, naming the nearest known key."""
        pool = tuple(known)
        for key in self.data:
            if key not in pool:
                raise unknown("sleutel", key, pool, prefix=self._key(""))
        return self

    def _key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            if required:
                raise ConfigError(f"{self._key(key)} ontbreekt: verwacht een tekstwaarde")
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: verwacht tekst, kreeg {type(value).__name__}")
        if required and not value.strip():
            raise ConfigError(f"{self._key(key)} is leeg: verwacht een tekstwaarde")
        return str(value)

    def integer(self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, EnvValue):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{self._key(key)}: verwacht een geheel getal, kreeg {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)}: verwacht een geheel getal, kreeg {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._key(key)}: verwacht minstens {minimum}, kreeg {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self._key(key)}: verwacht hoogstens {maximum}, kreeg {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.data.get(key, default)
        if isinstance(value, EnvValue):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{self._key(key)}: verwacht een getal, kreeg {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._key(key)}: verwacht een getal, kreeg {value!r}")
        if value < minimum:
            raise ConfigError(f"{self._key(key)}: verwacht minstens {minimum}, kreeg {value}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, EnvValue):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "ja", "yes", "on"}:
                return True
            if lowered in {"0", "false", "nee", "no", "off"}:
                return False
            raise ConfigError(f"{self._key(key)}: verwacht true of false, kreeg {value!r}")
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: verwacht true of false, kreeg {value!r}")
        return value

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(key, default)
        assert value is not None
        if value not in options:
            raise ConfigError(f"{self._key(key)}: verwacht een van {', '.join(options)}, kreeg {value!r}")
        return value

    def texts(self, key: str, *, pattern: re.Pattern[str] | None = None, what: str = "tekst") -> list[str]:
        value = self.data.get(key, [])
        if isinstance(value, EnvValue):  # a list from the environment: comma-separated
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{self._key(key)}: verwacht een lijst van {what}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
                raise ConfigError(f"{self._key(key)}[{i}]: verwacht {what}, kreeg {item!r}")
            out.append(item)
        return out

    def section(self, key: str) -> ConfigReader:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self._key(key)}: verwacht een sectie [{self._key(key)}]")
        return ConfigReader(value, self._key(key))


def resolve_path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p




# tomllib's reasons, in Dutch with what usually causes them; an unknown one is shown as the parser says it.
_TOML_REASONS = (
    ("Invalid value", "ongeldige waarde (tekst hoort tussen aanhalingstekens: sleutel = \"waarde\")"),
    ("Invalid statement", "ongeldige regel (verwacht sleutel = waarde of een [sectie])"),
    ("Expected '=' after a key", "'=' verwacht na de sleutel (sleutel = waarde, niet sleutel: waarde)"),
    ("Expected ']' at the end of a table", "']' ontbreekt aan het eind van een [sectie]"),
    ("Cannot declare", "deze sectie staat er twee keer in"),
    ("Cannot overwrite a value", "een sleutel staat er twee keer in"),
    ("Unterminated string", "een tekst zonder sluitend aanhalingsteken"),
    ("Unclosed", "een lijst of {...} zonder sluitend haakje"),
    ("Expected newline or end of document", "na een waarde hoort een nieuwe regel"),
)
_TOML_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def toml_problem(exc: ValueError) -> str:
    """A TOML syntax error as an operator can act on it: the place and the cause in Dutch (tomllib says it in
    English with the position inside the sentence)."""
    message = str(exc)
    where = _TOML_WHERE.search(message)
    reason = message[:where.start()] if where else message
    place = "aan het eind van het bestand" if where and where.group(1) is None else (
        f"regel {where.group(1)}, kolom {where.group(2)}" if where else "")
    dutch = next((nl for en, nl in _TOML_REASONS if reason.startswith(en)), reason)
    return f"{place}: {dutch}" if place else dutch


def near_path(missing: Path) -> Path | None:
    """The file an operator probably meant when ``missing`` (a path from the configuration, made absolute against
    the configuration file's folder) does not exist: the same relative path from the current folder, the usual
    mistake of writing a path relative to where one typed the command."""
    cwd = Path.cwd()
    parts = missing.parts
    for n in range(len(parts) - 1, 0, -1):
        candidate = cwd.joinpath(*parts[-n:])
        if candidate != missing and candidate.exists():
            return candidate
    return None


_OS_REASONS = {
    errno.EACCES: "geen toegang", errno.EPERM: "geen toestemming", errno.ENOENT: "bestaat niet",
    errno.ENOTDIR: "een deel van het pad is geen map", errno.EISDIR: "is een map", errno.EEXIST: "bestaat al",
    errno.EROFS: "alleen-lezen bestandssysteem", errno.ENOSPC: "schijf vol", errno.EDQUOT: "schijfquotum op",
    errno.ENAMETOOLONG: "pad te lang", errno.ELOOP: "te veel symbolische links",
    errno.ECONNREFUSED: "verbinding geweigerd", errno.EHOSTUNREACH: "host onbereikbaar",
    errno.ENETUNREACH: "netwerk onbereikbaar", errno.ETIMEDOUT: "geen antwoord binnen de tijd",
}


def os_reason(exc: OSError) -> str:
    """The operating system's reason in Dutch ("Permission denied" is English in every message it lands in)."""
    if exc.errno in _OS_REASONS:
        return _OS_REASONS[exc.errno]
    return exc.strerror or type(exc).__name__
