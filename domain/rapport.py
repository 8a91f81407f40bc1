"""Management information rules in ONE place: period parsing and the small-count rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.clock import AMSTERDAM

SMALL_COUNT_TEXT = "< 5"
PERIOD_HELP = "Typ een periode als 2026-W43, 2026-10, 2026-Q4 of 2026-10-01..2026-10-31."


class PeriodError(ValueError):
    """Bad period text; the message is one Dutch line saying what to type."""


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive


def small_count(n: int) -> str:
    """Counts 1..4 are shown as '< 5' so no figure can point to a person."""
    if 1 <= n <= 4:
        return SMALL_COUNT_TEXT
    return str(n)


def _local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=AMSTERDAM).astimezone(UTC)


def _span(label: str, first: date, after_last: date) -> Period:
    return Period(label, _local_midnight(first), _local_midnight(after_last))


def parse_period(text: str) -> Period:
    """Parse week (2026-W43), month (2026-10), quarter (2026-Q4) or range (2026-10-01..2026-10-31)."""
    t = text.strip().upper()
    try:
        if m := re.fullmatch(r"(\d{4})-W(\d{1,2})", t):
            first = date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return _span(f"{m[1]}-W{int(m[2]):02d}", first, first + timedelta(days=7))
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", t):
            y, q = int(m[1]), int(m[2])
            first = date(y, 3 * q - 2, 1)
            nxt = date(y + 1, 1, 1) if q == 4 else date(y, 3 * q + 1, 1)
            return _span(f"{y}-Q{q}", first, nxt)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", t):
            y, mo = int(m[1]), int(m[2])
            first = date(y, mo, 1)
            nxt = date(y + 1, 1, 1) if mo == 12 else date(y, mo + 1, 1)
            return _span(f"{y}-{mo:02d}", first, nxt)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", t):
            a, b = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if b < a:
                raise PeriodError(f"De einddatum ligt voor de begindatum. {PERIOD_HELP}")
            return _span(f"{a.isoformat()}..{b.isoformat()}", a, b + timedelta(days=1))
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"Onbekende periode '{text.strip()}'. {PERIOD_HELP}") from None
    raise PeriodError(f"Onbekende periode '{text.strip()}'. {PERIOD_HELP}")
