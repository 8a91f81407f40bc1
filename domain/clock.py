"""Time as a dependency: rules and deadlines take ``now`` from a clock that tests can set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def local(when: datetime) -> datetime:
    """Shown to users in Europe/Amsterdam time; stored in UTC."""
    return when.astimezone(AMSTERDAM)


def format_local(when: datetime) -> str:
    return local(when).strftime("%d-%m-%Y %H:%M")
