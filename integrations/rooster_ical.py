"""Read the on-call roster from an iCalendar file: the format adapter of ``zsm-bot dienst-import``.

The roster's own rules and its storage are in ``services.rooster``; this module only turns bytes into shifts.
Each VEVENT is one shift: DTSTART and DTEND give the times; the first Matrix id in SUMMARY (or else DESCRIPTION)
is the person on duty, a Matrix id after the word 'backup' or 'achterwacht' is the backup. Re-importing the same
file replaces shifts by their UID instead of adding them twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

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


def parse_roster(data: bytes) -> list[Shift]:
    try:
        cal = Calendar.from_ical(data)
    except ValueError:
        raise ConfigError("dienst-import: het bestand is geen geldig iCalendar-bestand") from None
    shifts: list[Shift] = []
    for i, ev in enumerate(cal.walk("VEVENT")):
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
        uid = str(ev.get("UID", f"zonder-uid-{i}-{start.isoformat()}"))
        shifts.append(Shift(uid, people[0], backup, start, end))
    return shifts
