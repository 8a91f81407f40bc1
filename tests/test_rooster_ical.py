"""Repeating shifts in an iCalendar roster: expanded in Amsterdam local time, across the change to winter time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import ConfigError
from integrations.rooster_ical import parse_roster

# A weekly 24-hour shift from Monday 08:00 Amsterdam time, three times: 19 October (summer time, UTC+2), 26 October
# and 2 November 2026 (winter time, UTC+1; the clocks went back in the night of 24 to 25 October). A weekly night
# shift on Saturday 20:00 to Sunday 08:00 covers that very night. The second Monday is moved to Tuesday by an
# override (RECURRENCE-ID), and a third series has one week removed (EXDATE).
WEEKLY = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//roster//NL
BEGIN:VTIMEZONE
TZID:Europe/Amsterdam
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:week@test
DTSTART;TZID=Europe/Amsterdam:20261019T080000
DTEND;TZID=Europe/Amsterdam:20261020T080000
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Dienst @ical.jan:localhost backup @ical.piet:localhost
END:VEVENT
BEGIN:VEVENT
UID:nacht@test
DTSTART;TZID=Europe/Amsterdam:20261017T200000
DTEND;TZID=Europe/Amsterdam:20261018T080000
RRULE:FREQ=WEEKLY;UNTIL=20261101T000000Z
EXDATE;TZID=Europe/Amsterdam:20261031T200000
SUMMARY:Nachtdienst @ical.kees:localhost
END:VEVENT
BEGIN:VEVENT
UID:week@test
RECURRENCE-ID;TZID=Europe/Amsterdam:20261026T080000
DTSTART;TZID=Europe/Amsterdam:20261027T080000
DTEND;TZID=Europe/Amsterdam:20261028T080000
SUMMARY:Dienst @ical.marie:localhost
END:VEVENT
BEGIN:VEVENT
UID:los@test
DTSTART:20261030T070000Z
DTEND:20261030T150000Z
SUMMARY:Extra @ical.anna:localhost
END:VEVENT
END:VCALENDAR
"""
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_shift_keeps_local_time_across_the_dst_change() -> None:
    shifts = parse_roster(WEEKLY, now=NOW)
    week = [s for s in shifts if s.uid.startswith("week@test")]
    assert [(s.user_id, s.starts_at, s.ends_at) for s in week] == [
        ("@ical.jan:localhost", utc(2026, 10, 19, 6), utc(2026, 10, 20, 6)),  # 08:00 CEST
        ("@ical.marie:localhost", utc(2026, 10, 27, 7), utc(2026, 10, 28, 7)),  # moved to Tuesday, 08:00 CET
        ("@ical.jan:localhost", utc(2026, 11, 2, 7), utc(2026, 11, 3, 7)),  # 08:00 CET
    ]
    assert week[0].backup_id == "@ical.piet:localhost" and week[1].backup_id is None
    # each occurrence has its own stable UID: the original start, so a moved one keeps its identity
    assert [s.uid for s in week] == ["week@test#20261019T060000Z", "week@test#20261026T070000Z",
                                     "week@test#20261102T070000Z"]


def test_the_night_of_the_change_lasts_an_hour_longer_and_exdate_removes_a_week() -> None:
    nights = [s for s in parse_roster(WEEKLY, now=NOW) if s.uid.startswith("nacht@test")]
    assert [(s.starts_at, s.ends_at) for s in nights] == [
        (utc(2026, 10, 17, 18), utc(2026, 10, 18, 6)),  # 12 hours in summer time
        (utc(2026, 10, 24, 18), utc(2026, 10, 25, 7)),  # 20:00 CEST to 08:00 CET: 13 hours
    ]  # 31 October is excluded by EXDATE


def test_single_events_stay_as_they_were_and_a_reimport_gives_the_same_uids() -> None:
    first = parse_roster(WEEKLY, now=NOW)
    assert [s.uid for s in first if s.uid.startswith("los@")] == ["los@test"]
    assert [s.uid for s in parse_roster(WEEKLY, now=NOW)] == [s.uid for s in first]


def test_the_horizon_bounds_an_endless_rule() -> None:
    endless = WEEKLY.replace(b"RRULE:FREQ=WEEKLY;COUNT=3", b"RRULE:FREQ=WEEKLY")
    week = [s for s in parse_roster(endless, now=NOW, horizon_days=60) if s.uid.startswith("week@")]
    # the window ends 60 days after 15 October 12:00 UTC: the Mondays 19 Oct .. 14 Dec (08:00 local is before it)
    assert len(week) == 9
    assert week[-1].starts_at == utc(2026, 12, 14, 7)
    assert all(s.starts_at.astimezone(UTC).hour == 7 for s in week[1:])  # winter time: 08:00 local is 07:00 UTC


def test_a_broken_rule_is_one_line() -> None:
    with pytest.raises(ConfigError, match="dienst-import: "):
        parse_roster(WEEKLY.replace(b"RRULE:FREQ=WEEKLY;COUNT=3", b"RRULE:FREQ=SOMS"), now=NOW)
