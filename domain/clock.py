"""Time as a dependency: rules and deadlines take ``now`` from a clock that tests can set."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
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


DAY_FORMS = "dd-mm-jjjj (of jjjj-mm-dd)"
_DAY = re.compile(r"^(?:(\d{1,2})-(\d{1,2})-(\d{4})|(\d{4})-(\d{1,2})-(\d{1,2}))$")


class DayError(ValueError):
    """Carries the Dutch explanation; ``exists`` False: the text has a date's form but names no day (31-02)."""

    def __init__(self, message: str, *, exists: bool = True) -> None:
        super().__init__(message)
        self.exists = exists


def parse_day(text: str) -> date:
    """A day as typed in chat: 22-11-2026 (the Dutch way) or 2026-11-22."""
    m = _DAY.match(text.strip())
    if m is None:
        raise DayError(f"'{text[:30]}' is geen datum. Schrijf {DAY_FORMS}.")
    d, mo, y = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(5), m.group(4))
    try:
        return date(int(y), int(mo), int(d))
    except ValueError:
        raise DayError(f"'{text[:30]}' is geen bestaande datum.", exists=False) from None
