"""``[privacy]`` and ``[privacy.bewaren]``: how long a released advice stays visible, and how long each kind of
record is kept (PRIVACY.md: the periods belong in each region's privacy protocol, so each is a setting)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.reader import ConfigReader
from domain.errors import ConfigError
from domain.retention import DEFAULT_DAYS, Retention
from domain.zichtbaarheid import DEFAULT_RELEASE_DAYS

KEYS = ("vrijgave_dagen", "bewaren")
TABLES = ("bewaren",)


@dataclass(frozen=True)
class PrivacySettings:
    # How long an advice released with !vrijgeven stays visible to the asking room, in days (1-90).
    vrijgave_dagen: int = DEFAULT_RELEASE_DAYS
    bewaren: Retention = field(default_factory=lambda: Retention(dict(DEFAULT_DAYS)))


def parse_retention(section: Mapping[str, Any]) -> Retention:
    """``[privacy.bewaren]`` with ``<soort> = <dagen>``; unknown kinds and non-positive periods are refused."""
    days = dict(DEFAULT_DAYS)
    for kind, value in section.items():
        if kind not in DEFAULT_DAYS:
            raise ConfigError(f"privacy.bewaren.{kind}: onbekende soort; kies uit {', '.join(DEFAULT_DAYS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"privacy.bewaren.{kind}: verwacht een aantal dagen (1 of meer), kreeg {value!r}")
        days[kind] = value
    return Retention(days)


def release_days(section: Mapping[str, Any]) -> int:
    """``vrijgave_dagen``: how long a released advice stays visible to the asking room (default 7)."""
    value = section.get("vrijgave_dagen", DEFAULT_RELEASE_DAYS)
    if isinstance(value, str) and value.isdigit():  # from the environment
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 90:
        raise ConfigError(f"privacy.vrijgave_dagen: verwacht een aantal dagen van 1 tot en met 90, kreeg {value!r}")
    return value


def parse_privacy(r: ConfigReader) -> PrivacySettings:
    r.only(KEYS)
    bewaren = r.data.get("bewaren", {})
    if not isinstance(bewaren, dict):
        raise ConfigError("privacy.bewaren: verwacht een sectie [privacy.bewaren] met <soort> = <dagen>")
    return PrivacySettings(vrijgave_dagen=release_days(r.data), bewaren=parse_retention(bewaren))
