"""Advies op aanvraag: terms, working days, the request's states and its escalation chain (PROCESS.md).

Pure rules, no I/O. Deadlines are computed in Europe/Amsterdam (where working days and office hours live) and
returned in UTC; the engine stores UTC and shows local time. Public holidays come from the maintained
``holidays`` package; extra closed days (a regional bridge day) come from the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import holidays

from domain.clock import AMSTERDAM, DayError, parse_day
from domain.errors import ConfigError

# ---------------------------------------------------------------------------------------------- calendar

DAY_NAMES = ("ma", "di", "wo", "do", "vr", "za", "zo")
MAX_TERM = timedelta(days=7)  # PROCESS.md: think 24 hours, at most 7 days


@dataclass(frozen=True)
class WorkCalendar:
    """Working days (Monday=0), office hours in local time, Dutch public holidays and configured closed days."""

    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    opens: time = time(8, 30)
    closes: time = time(17, 0)
    closed_days: frozenset[date] = frozenset()

    def is_holiday(self, day: date) -> bool:
        return day in _nl_holidays(day.year) or day in self.closed_days

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and not self.is_holiday(day)

    def in_office_hours(self, when: datetime) -> bool:
        loc = when.astimezone(AMSTERDAM)
        return self.is_working_day(loc.date()) and self.opens <= loc.time() < self.closes

    def next_working_day(self, after: date) -> date:
        day = after + timedelta(days=1)
        for _ in range(60):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ConfigError("aanvraag.werkdagen: geen werkdag gevonden in 60 dagen; controleer de werkdagen")


_HOLIDAY_CACHE: dict[int, Any] = {}


def _nl_holidays(year: int) -> Any:
    if year not in _HOLIDAY_CACHE:
        _HOLIDAY_CACHE[year] = holidays.country_holidays("NL", years=year)
    return _HOLIDAY_CACHE[year]


def at_local(day: date, clock_time: time) -> datetime:
    return datetime.combine(day, clock_time, tzinfo=AMSTERDAM).astimezone(UTC)


# ---------------------------------------------------------------------------------------------- terms

@dataclass(frozen=True)
class Term:
    """A term as typed or configured: a duration, N working days, or 'next working day HH:MM'."""

    kind: str  # duur | werkdagen | volgende-werkdag
    duration: timedelta = timedelta(0)
    days: int = 0
    at: time = time(13, 0)
    text: str = ""

    def deadline(self, start: datetime, cal: WorkCalendar) -> datetime:
        if self.kind == "duur":
            return (start + self.duration).astimezone(UTC)
        today = start.astimezone(AMSTERDAM).date()
        if self.kind == "werkdagen":
            day = today
            for _ in range(self.days):
                day = cal.next_working_day(day)
            return at_local(day, cal.closes)
        return at_local(cal.next_working_day(today), self.at)


class TermError(ValueError):
    """Carries the Dutch explanation."""


TERM_FORMS = ("een duur als 24u of 5d, een aantal werkdagen als 2wd of '2 werkdagen', "
              "of 'volgende werkdag 13:00'")

_DURATION = re.compile(r"^(\d{1,3})\s*(u|uur|h|d|dag|dagen|m|min)$")
_WORKDAYS = re.compile(r"^(\d{1,2})\s*(wd|werkdag|werkdagen)$")
_NEXT = re.compile(r"^(?:volgende[\s\-]*werkdag|vwd)[\s\-]*(?:om[\s\-]*)?(\d{1,2})[:.](\d{2})$")


def parse_term(text: str) -> Term:
    raw = " ".join(text.strip().lower().split())
    if m := _DURATION.match(raw):
        n, unit = int(m.group(1)), m.group(2)
        if unit in {"u", "uur", "h"}:
            dur = timedelta(hours=n)
        elif unit in {"m", "min"}:
            dur = timedelta(minutes=n)
        else:
            dur = timedelta(days=n)
        if dur <= timedelta(0):
            raise TermError("Een termijn moet langer zijn dan nul.")
        if dur > MAX_TERM:
            raise TermError("Een termijn is hoogstens 7 dagen (afspraak advies op aanvraag).")
        return Term("duur", duration=dur, text=raw)
    if m := _WORKDAYS.match(raw):
        n = int(m.group(1))
        if not 1 <= n <= 5:
            raise TermError("Een termijn in werkdagen is 1 tot 5 werkdagen.")
        return Term("werkdagen", days=n, text=raw)
    if m := _NEXT.match(raw):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise TermError(f"'{m.group(1)}:{m.group(2)}' is geen geldige tijd.")
        return Term("volgende-werkdag", at=time(hour, minute), text=raw)
    raise TermError(f"Termijn '{text.strip()[:30]}' wordt niet herkend. Geef {TERM_FORMS}.")


def describe_left(deadline: datetime, now: datetime) -> str:
    """'nog 3 u 20 min', 'nog 2 d 4 u', 'verlopen'."""
    left = deadline - now
    if left <= timedelta(0):
        return "verlopen"
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"nog {days} d {hours} u"
    if hours:
        return f"nog {hours} u {mins} min"
    return f"nog {mins} min"


# ---------------------------------------------------------------------------------------------- states

class AanvraagStatus(StrEnum):
    """The lifecycle of an advies op aanvraag. The values are what the database stores (``advies_aanvraag.state``).

    open -> bevestigd -> beantwoord; open or bevestigd -> ingetrokken or verlopen. The last three are final."""

    OPEN = "open"
    ACKNOWLEDGED = "bevestigd"
    ANSWERED = "beantwoord"
    CANCELLED = "ingetrokken"
    EXPIRED = "verlopen"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def final(self) -> bool:
        return not _TRANSITIONS[self]

    def can_move_to(self, target: AanvraagStatus) -> bool:
        return target in _TRANSITIONS[self]


OPEN = AanvraagStatus.OPEN
ACKNOWLEDGED = AanvraagStatus.ACKNOWLEDGED
ANSWERED = AanvraagStatus.ANSWERED
CANCELLED = AanvraagStatus.CANCELLED
EXPIRED = AanvraagStatus.EXPIRED
ACTIVE = frozenset({OPEN, ACKNOWLEDGED})
STATE_LABELS: dict[str, str] = {OPEN: "open, nog niet bevestigd", ACKNOWLEDGED: "bevestigd", ANSWERED: "beantwoord",
                                CANCELLED: "ingetrokken", EXPIRED: "verlopen zonder advies"}

_TRANSITIONS: dict[str, frozenset[AanvraagStatus]] = {
    OPEN: frozenset({ACKNOWLEDGED, ANSWERED, CANCELLED, EXPIRED}),
    ACKNOWLEDGED: frozenset({ANSWERED, CANCELLED, EXPIRED}),
    ANSWERED: frozenset(),
    CANCELLED: frozenset(),
    EXPIRED: frozenset(),
}


def can_move(current: str, target: str) -> bool:
    """``current`` as stored (a plain string read from the database) or a status."""
    return target in _TRANSITIONS.get(current, frozenset())


def refusal(current: str, target: str) -> str:
    """The Dutch reason a transition is refused."""
    if current == target:
        return f"Deze aanvraag is al {STATE_LABELS[current]}."
    return f"Deze aanvraag is {STATE_LABELS.get(current, current)}; dat kan niet meer veranderen."


# ---------------------------------------------------------------------------------------------- escalation

# Kinds of a step. "ping" is the first post (done at opening); "verlopen" fires at the deadline.
STEP_KINDS = ("herinnering", "backup", "teamleider", "ruimte")
ESCALATION_STOPS_AT = frozenset({ACKNOWLEDGED, ANSWERED, CANCELLED, EXPIRED})
EXPIRY_STOPS_AT = frozenset({ANSWERED, CANCELLED, EXPIRED})


@dataclass(frozen=True)
class ChainStep:
    kind: str
    after: timedelta

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "after_s": int(self.after.total_seconds())}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ChainStep:
        return ChainStep(str(data["kind"]), timedelta(seconds=int(data["after_s"])))


@dataclass(frozen=True)
class Chain:
    steps: tuple[ChainStep, ...]
    repeat_every: timedelta = timedelta(0)
    repeat_times: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"steps": [s.to_json() for s in self.steps], "repeat_s": int(self.repeat_every.total_seconds()),
                "repeat_n": self.repeat_times}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Chain:
        return Chain(tuple(ChainStep.from_json(s) for s in data.get("steps", [])),
                     timedelta(seconds=int(data.get("repeat_s", 0))), int(data.get("repeat_n", 0)))

    def plan(self, opened: datetime, deadline: datetime) -> list[tuple[str, datetime]]:
        """The escalation steps with their due times, in order; steps at or after the deadline are left out."""
        out = [(s.kind, opened + s.after) for s in self.steps]
        if self.steps and self.repeat_every > timedelta(0):
            last = self.steps[-1]
            for i in range(1, self.repeat_times + 1):
                out.append((last.kind, opened + last.after + i * self.repeat_every))
        return [(k, t) for k, t in out if t < deadline]


def parse_chain(values: Any, where: str) -> tuple[ChainStep, ...]:
    """``["herinnering:30", "backup:60", "teamleider:120"]`` (minutes after opening)."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: verwacht een lijst als [\"herinnering:30\", \"backup:60\", \"teamleider:120\"]")
    steps: list[ChainStep] = []
    for i, item in enumerate(values):
        m = re.match(r"^([a-z]+):(\d{1,5})$", item) if isinstance(item, str) else None
        if not m or m.group(1) not in STEP_KINDS:
            raise ConfigError(f"{where}[{i}]: verwacht '<soort>:<minuten>' met soort {', '.join(STEP_KINDS)}, "
                              f"kreeg {item!r}")
        step = ChainStep(m.group(1), timedelta(minutes=int(m.group(2))))
        if steps and step.after <= steps[-1].after:
            raise ConfigError(f"{where}[{i}]: de minuten moeten oplopen")
        steps.append(step)
    return tuple(steps)


# ---------------------------------------------------------------------------------------------- configuration

# Case types for which ZSM and a veiligheidshuis may agree advice on request (PROCESS.md: in the pilots severe
# domestic violence, L361-364, L3947-3955). The code is what is typed after ``type:``.
ZAAKTYPEN: Mapping[str, str] = {
    "hg": "huiselijk geweld",
    "ehg": "ernstig huiselijk geweld",
    "km": "kindermishandeling",
    "egg": "eergerelateerd geweld",
    "zeden": "zedenzaak",
    "stalking": "belaging",
}


def zaaktype_text(code: str) -> str:
    return f"{code} ({ZAAKTYPEN.get(code, code)})"


@dataclass(frozen=True)
class Schets:
    """The case sketch of an advice request: what the on-call person needs to answer (the pilots mailed the case
    itself, L1995, L2154-2162). ``zaaktype`` is a code of ZAAKTYPEN, already checked."""

    feit: str
    voornemen: str
    zaaktype: str | None = None


FEIT_MIN = 10
SCHETS_MAX = 500


def check_schets(feit: str | None, voornemen: str | None, zaaktype: str | None) -> Schets:
    """Refused in Dutch (``SchetsError``) with what to type instead."""
    example = "feit: mishandeling partner, eerste melding voornemen: voorwaardelijk sepot"
    if not feit:
        raise SchetsError(f"Er ontbreekt een schets van de zaak. Schrijf erbij: {example}.")
    if len(feit) < FEIT_MIN:
        raise SchetsError(f"'feit:' is te kort; beschrijf het feit in een paar woorden, bijvoorbeeld: {example}.")
    if not voornemen:
        raise SchetsError("Er ontbreekt het voorgenomen besluit. Schrijf erbij: 'voornemen: <afdoening>', "
                          "bijvoorbeeld voornemen: voorwaardelijk sepot.")
    if len(feit) > SCHETS_MAX or len(voornemen) > SCHETS_MAX:
        raise SchetsError(f"De schets is te lang (maximaal {SCHETS_MAX} tekens per deel). Maak hem korter.")
    return Schets(feit, voornemen, zaaktype)


class SchetsError(ValueError):
    pass


@dataclass(frozen=True)
class Waarschuwing:
    """A warning to the requester and the KPC before the term ends: at a share of the term (``75%``), or a number
    of minutes before the deadline (``60m``)."""

    fraction: float | None = None
    before: timedelta | None = None

    @property
    def text(self) -> str:
        if self.fraction is not None:
            return f"{round(self.fraction * 100)}%"
        return f"{int((self.before or timedelta()).total_seconds() // 60)}m"

    def due(self, opened: datetime, deadline: datetime) -> datetime:
        if self.fraction is not None:
            return opened + (deadline - opened) * self.fraction
        return deadline - (self.before or timedelta())


def parse_waarschuwing(value: object, where: str) -> Waarschuwing:
    text = str(value).strip().lower()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if 0 < share < 1:
                return Waarschuwing(fraction=share)
        elif text.endswith("m"):
            minutes = int(text[:-1])
            if minutes > 0:
                return Waarschuwing(before=timedelta(minutes=minutes))
    except ValueError:
        pass
    raise ConfigError(f"{where}: verwacht een deel van de termijn als \"75%\" of minuten voor het einde als "
                      f"\"60m\", kreeg {value!r}")


DEFAULT_WAARSCHUWINGEN: tuple[Waarschuwing, ...] = (Waarschuwing(fraction=0.75),
                                                   Waarschuwing(before=timedelta(minutes=60)))


def warning_plan(warnings: tuple[Waarschuwing, ...], opened: datetime,
                 deadline: datetime) -> list[tuple[str, datetime]]:
    """The warning steps, in time order, each strictly between opening and deadline; two at the same moment are
    one warning."""
    times = sorted({w.due(opened, deadline) for w in warnings})
    return [("waarschuwing", t) for t in times if opened < t < deadline]


def closed_window(day: date, cal: WorkCalendar) -> tuple[datetime, datetime]:
    """The closed hours after working day ``day``: from its closing time to the next working day's opening (a
    Friday afternoon covers the whole weekend), as aware UTC moments."""
    return at_local(day, cal.closes), at_local(cal.next_working_day(day), cal.opens)


def roster_gaps(window: tuple[datetime, datetime],
                shifts: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of ``window`` that no shift covers, in time order."""
    start, end = window
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for s_start, s_end in sorted(shifts):
        if s_end <= cursor:
            continue
        if s_start > cursor:
            gaps.append((cursor, min(s_start, end)))
        cursor = max(cursor, s_end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if a < b]


@dataclass(frozen=True)
class VhAanvraag:
    """What one veiligheidshuis agreed for advies op aanvraag."""

    key: str
    doelgroepen: tuple[str, ...] = ()
    zaaktypen: tuple[str, ...] = ()  # codes of ZAAKTYPEN for which an unmarked suspect may be requested
    term: Term | None = None
    room_id: str | None = None
    teamleider: str | None = None
    office_chain: Chain | None = None
    after_hours_chain: Chain | None = None

    def prioritised(self, doelgroep: str) -> bool:
        wanted = doelgroep.strip().lower()
        return any(d.strip().lower() == wanted for d in self.doelgroepen)

    def prioritised_type(self, zaaktype: str | None) -> bool:
        return zaaktype is not None and zaaktype in self.zaaktypen


DEFAULT_OFFICE = Chain((ChainStep("herinnering", timedelta(minutes=60)), ChainStep("backup", timedelta(minutes=120)),
                        ChainStep("teamleider", timedelta(minutes=240))))
DEFAULT_AFTER_HOURS = Chain((ChainStep("herinnering", timedelta(minutes=15)),
                             ChainStep("backup", timedelta(minutes=30)), ChainStep("ruimte", timedelta(minutes=60))))


@dataclass(frozen=True)
class AanvraagConfig:
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    default_term: Term = field(default_factory=lambda: parse_term("24u"))
    office_chain: Chain = DEFAULT_OFFICE
    after_hours_chain: Chain = DEFAULT_AFTER_HOURS
    per_vh: Mapping[str, VhAanvraag] = field(default_factory=dict)
    link_key: str = ""
    base_url: str = ""
    # The ticker's interval: a step's lag is up to one tick, so the tick stays well under the 1 s lag goal (p99);
    # one indexed query for due steps, four times a second.
    tick_seconds: float = 0.25
    late_after: timedelta = timedelta(seconds=5)
    waarschuwingen: tuple[Waarschuwing, ...] = DEFAULT_WAARSCHUWINGEN
    # On working days at this local time the bot warns about houses with no roster for the coming closed hours.
    roostercontrole: time | None = time(14, 0)

    def vh(self, key: str) -> VhAanvraag:
        return self.per_vh.get(key, VhAanvraag(key))

    def term_for(self, key: str) -> Term:
        return self.vh(key).term or self.default_term

    def chain_for(self, key: str, now: datetime) -> Chain:
        vh = self.vh(key)
        if self.calendar.in_office_hours(now):
            return vh.office_chain or self.office_chain
        return vh.after_hours_chain or self.after_hours_chain


def ref_text(request_id: int) -> str:
    return f"A{request_id}"


def parse_ref(text: str) -> int | None:
    m = re.match(r"^#?a?-?(\d{1,12})$", text.strip().lower())
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------- roster times

MOMENT_FORMS = "dd-mm-jjjj uu:mm (of jjjj-mm-ddTuu:mm)"
_CLOCK = re.compile(r"^(\d{1,2})[:.](\d{2})$")


class MomentError(ValueError):
    """Carries the Dutch explanation."""


def parse_moments(words: list[str]) -> list[datetime]:
    """Local date-times as typed ('22-11-2026 08:00', '2026-11-22T08:00', a day alone at midnight), in UTC. The day
    is read as every typed day is (``domain.clock.parse_day``)."""
    tokens: list[str] = []
    for w in words:
        if _CLOCK.match(w) and tokens and "T" not in tokens[-1] and " " not in tokens[-1]:
            tokens[-1] = tokens[-1] + " " + w
        else:
            tokens.append(w)
    out: list[datetime] = []
    for tok in tokens:
        day_text, sep, clock_text = tok.replace("T", " ", 1).partition(" ")  # a day never holds a T or a space
        hm = _CLOCK.match(clock_text)
        if sep and hm is None:
            raise MomentError(f"'{tok[:30]}' is geen tijdstip. Schrijf {MOMENT_FORMS}.")
        try:
            day = parse_day(day_text)
        except DayError as exc:
            if exc.exists:
                raise MomentError(f"'{tok[:30]}' is geen tijdstip. Schrijf {MOMENT_FORMS}.") from None
            raise MomentError(f"'{tok[:30]}' is geen bestaande datum of tijd.") from None
        hh, mm = (int(hm.group(1)), int(hm.group(2))) if hm else (0, 0)
        try:
            local_dt = datetime(day.year, day.month, day.day, hh, mm, tzinfo=AMSTERDAM)
        except ValueError:
            raise MomentError(f"'{tok[:30]}' is geen bestaande datum of tijd.") from None
        out.append(local_dt.astimezone(UTC))
    return out
