"""Read the on-call roster from an iCalendar file: the format adapter of ``zsm-bot dienst-import``.

The roster's own rules and its storage are in ``services.rooster``; this module only turns bytes into shifts.
Each VEVENT is one shift: DTSTART and DTEND give the times; the first Matrix id in SUMMARY (or else DESCRIPTION)
is the person on duty, a Matrix id after the word 'backup' or 'achterwacht' is the backup. Re-importing the same
file replaces shifts by their UID instead of adding them twice.

A repeating shift (RRULE, RDATE, with EXDATE and moved occurrences by RECURRENCE-ID) is expanded by the maintained
``recurring-ical-events`` library, in local time of its TZID, so a weekly Monday 08:00 shift stays at 08:00
Amsterdam time across the change to winter time. Only occurrences from a week before ``now`` up to
``HORIZON_DAYS`` after it are imported (a rule without an end would be endless); each occurrence gets the UID
``<UID>#<original start, UTC>``, stable across re-imports. Importing the file again after the horizon moved on adds
the next occurrences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import recurring_ical_events
from icalendar import Calendar

from domain.clock import AMSTERDAM
from domain.errors import ConfigError

_MXID = re.compile(r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?")
_BACKUP = re.compile(r"(?:backup|achterwacht)\s*:?\s*(@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Shift:
    uid: str
    user_id: str
    backup_id: str | None
    starts_at: datetime
    ends_at: datetime


def _aware(value: object) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=AMSTERDAM)).astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=AMSTERDAM).astimezone(UTC)
    raise ValueError("no date")


HORIZON_DAYS = 366
LOOKBACK_DAYS = 7


def _repeats(ev: Any) -> bool:
    return any(key in ev for key in ("RRULE", "RDATE", "RECURRENCE-ID"))


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_roster(data: bytes, *, now: datetime | None = None, horizon_days: int = HORIZON_DAYS) -> list[Shift]:
    try:
        cal = Calendar.from_ical(data)
    except ValueError:
        raise ConfigError("dienst-import: het bestand is geen geldig iCalendar-bestand") from None
    now = now or datetime.now(UTC)
    events: list[tuple[Any, str]] = []
    repeating = {str(ev.get("UID", "")) for ev in cal.walk("VEVENT") if _repeats(ev)}
    for ev in cal.walk("VEVENT"):
        if not _repeats(ev) and str(ev.get("UID", "")) not in repeating:
            events.append((ev, ""))
    if repeating:
        window = (now - timedelta(days=LOOKBACK_DAYS), now + timedelta(days=horizon_days))
        try:
            occurrences = recurring_ical_events.of(cal).between(*window)
        except Exception:  # the library's own errors for a broken rule: one line instead of its exception
            raise ConfigError("dienst-import: een herhaalregel (RRULE/RDATE/EXDATE) in het bestand is ongeldig") \
                from None
        for occ in occurrences:
            if str(occ.get("UID", "")) not in repeating:
                continue
            original = occ.get("RECURRENCE-ID")
            start = original.dt if original is not None else occ.decoded("DTSTART")
            events.append((occ, "#" + _stamp(_aware(start))))
    shifts: list[Shift] = []
    for i, (ev, suffix) in enumerate(events):
        summary = str(ev.get("SUMMARY", ""))
        description = str(ev.get("DESCRIPTION", ""))
        text = summary + "\n" + description
        backup_m = _BACKUP.search(text)
        backup = backup_m.group(1) if backup_m else None
        people = [m for m in _MXID.findall(summary) + _MXID.findall(description) if m != backup]
        if not people:
            raise ConfigError(f"dienst-import: afspraak {i + 1} ({summary[:40]!r}) noemt geen Matrix-id "
                              "als @naam:server")
        try:
            start = _aware(ev.decoded("DTSTART"))
            end = _aware(ev.decoded("DTEND"))
        except (KeyError, ValueError):
            raise ConfigError(f"dienst-import: afspraak {i + 1} mist DTSTART of DTEND") from None
        if end <= start:
            raise ConfigError(f"dienst-import: afspraak {i + 1} eindigt voor het begint")
        uid = str(ev.get("UID", f"zonder-uid-{i}-{start.isoformat()}")) + suffix
        shifts.append(Shift(uid, people[0], backup, start, end))
    return sorted(shifts, key=lambda sh: (sh.starts_at, sh.uid))
