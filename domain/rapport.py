"""Management information rules in ONE place: period parsing and the small-count rule."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.aanvraag import STEP_KINDS
from domain.clock import AMSTERDAM
from domain.identifiers import echo

SMALL_COUNT_TEXT = "< 5"
MIN_OBSERVATIONS = 5  # median and p90 only from at least this many durations; below it they are None
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
        raise PeriodError(f"Onbekende periode '{echo(text)}'. {PERIOD_HELP}") from None
    raise PeriodError(f"Onbekende periode '{echo(text)}'. {PERIOD_HELP}")


def current_month(now: datetime) -> Period:
    """The default period of a report: the calendar month (Amsterdam time) that ``now`` falls in."""
    d = now.astimezone(AMSTERDAM).date()
    return parse_period(f"{d.year}-{d.month:02d}")


def _local_date(when: datetime) -> date:
    return when.astimezone(AMSTERDAM).date()


def buckets(period: Period) -> list[Period]:
    """The period cut for a chart, on Amsterdam midnights like ``parse_period``: days up to 7 days, ISO weeks up to
    62 days (the first and last clipped to the period), calendar months beyond (also clipped)."""
    first, after = _local_date(period.start), _local_date(period.end)
    days = (after - first).days
    cuts: list[tuple[str, date]] = []
    d = first
    if days <= 7:
        while d < after:
            cuts.append((d.isoformat(), d))
            d += timedelta(days=1)
    elif days <= 62:
        while d < after:
            iso = d.isocalendar()
            cuts.append((f"{iso.year}-W{iso.week:02d}", d))
            d += timedelta(days=7 - d.weekday())
    else:
        while d < after:
            cuts.append((f"{d.year}-{d.month:02d}", d))
            d = date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
    ends = [c[1] for c in cuts[1:]] + [after]
    return [_span(label, start, end) for (label, start), end in zip(cuts, ends, strict=True)]


def pieces(cuts: list[Period], days: int) -> list[tuple[int, Period]]:
    """Each bucket cut again into spans of at most ``days`` days on Amsterdam midnights, with its bucket index, in
    time order. A report reads its period piece by piece so that, as background work, it can give way to a command
    between two pieces: a year read whole is a few hundred milliseconds that nothing can interrupt."""
    out: list[tuple[int, Period]] = []
    for i, cut in enumerate(cuts):
        d, after = _local_date(cut.start), _local_date(cut.end)
        while d < after:
            nxt = min(after, d + timedelta(days=days))
            out.append((i, _span(cut.label, d, nxt)))
            d = nxt
    return out


def median(sorted_values: list[float]) -> float | None:
    n = len(sorted_values)
    if n < MIN_OBSERVATIONS:
        return None
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def p90(sorted_values: list[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90% of the observations at or below it."""
    n = len(sorted_values)
    if n < MIN_OBSERVATIONS:
        return None
    return sorted_values[max(0, -(-9 * n // 10) - 1)]


# --- The figures (issue 7). Computed by the report queries, shown by !rapport, the CLI and the /rapport page. ---
# Every figure is an aggregate over anonymous facts; a view formats counts with ``small_count`` and never shows
# a duration figure (median/p90) computed from fewer than MIN_OBSERVATIONS observations.


@dataclass(frozen=True)
class Cijfers:
    """The figures of one veiligheidshuis (or all together) over one period. Durations in seconds."""

    checks: int = 0                       # !check / instroom lookups (misses have no veiligheidshuis: totals only)
    personen_bekend: int = 0              # known PERSONS who came in (a person looked up twice counts once)
    personen_teruggekoppeld: int = 0      # of those, with a decision (so a terugkoppeling) after they came in
    hits_volwassen: int = 0
    hits_minderjarig: int = 0
    besluiten_bekend: int = 0             # decisions on persons known at this veiligheidshuis
    terugkoppeling_afgeleverd: int = 0    # of those, feedback accepted by the mail server
    terugkoppeling_mediaan_s: float | None = None   # decision -> mail accepted
    terugkoppeling_p90_s: float | None = None
    advies_gevolgd: int = 0
    advies_afgeweken: int = 0             # deviated from a current advice (always with a motivation)
    advies_vrijgesteld: int = 0           # exempt: technical sepot, a minor's selection-stage decision
    aanmeldingen: int = 0
    aanvragen_geopend: int = 0
    aanvragen_bevestigd: int = 0
    aanvragen_op_tijd: int = 0            # answered before the deadline
    aanvragen_te_laat: int = 0            # answered after the deadline
    aanvragen_verlopen: int = 0
    respons_mediaan_s: float | None = None          # opened -> answered
    respons_p90_s: float | None = None
    escalaties: tuple[tuple[str, int], ...] = ()    # (step kind, count) in chain order
    mail_afgeleverd: int = 0
    mail_herhaald: int = 0                # mails that needed more than one attempt
    mail_dood: int = 0


@dataclass(frozen=True)
class Rapport:
    period: Period
    veiligheidshuis: str | None           # None: all veiligheidshuizen
    totaal: Cijfers
    per_vh: tuple[tuple[str, Cijfers], ...]         # (vh key, figures), in configuration order
    reeks: tuple[tuple[Period, Cijfers], ...]       # the same period in buckets (day/week/month) for charts


# --- Shared presentation: the chat summary, the CLI and the web page format figures the same way.

def format_duur(seconds: float | None, missing: str = "te weinig waarnemingen") -> str:
    """Dutch and short, rounded to the minute: '45 min', '1 u 30 min', '30 u', '2 d 2 u'. ``None`` means fewer than
    MIN_OBSERVATIONS observations: the chat says so in words, a table cell passes a dash."""
    if seconds is None:
        return missing
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} u {rest:02d} min" if rest else f"{hours} u"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} u" if hours else f"{days} d"


def share(part: int, whole: int) -> str | None:
    """The percentage ``part`` of ``whole``, or None when either count would be masked: a percentage of a count
    shown as '< 5' would give that count away."""
    if whole < MIN_OBSERVATIONS or 1 <= part <= 4:
        return None
    return f"{round(100 * part / whole)}%"


# Export columns in order: (name, attribute of Cijfers). Durations in whole seconds.
KOLOMMEN: tuple[tuple[str, str], ...] = (
    ("checks", "checks"), ("personen_bekend", "personen_bekend"),
    ("personen_teruggekoppeld", "personen_teruggekoppeld"), ("hits_volwassen", "hits_volwassen"),
    ("hits_minderjarig", "hits_minderjarig"),
    ("besluiten_bekend", "besluiten_bekend"), ("terugkoppeling_afgeleverd", "terugkoppeling_afgeleverd"),
    ("terugkoppeling_mediaan_s", "terugkoppeling_mediaan_s"), ("terugkoppeling_p90_s", "terugkoppeling_p90_s"),
    ("advies_gevolgd", "advies_gevolgd"), ("advies_afgeweken", "advies_afgeweken"),
    ("advies_vrijgesteld", "advies_vrijgesteld"), ("aanmeldingen", "aanmeldingen"),
    ("aanvragen_geopend", "aanvragen_geopend"), ("aanvragen_bevestigd", "aanvragen_bevestigd"),
    ("aanvragen_op_tijd", "aanvragen_op_tijd"), ("aanvragen_te_laat", "aanvragen_te_laat"),
    ("aanvragen_verlopen", "aanvragen_verlopen"), ("respons_mediaan_s", "respons_mediaan_s"),
    ("respons_p90_s", "respons_p90_s"), ("mail_afgeleverd", "mail_afgeleverd"), ("mail_herhaald", "mail_herhaald"),
    ("mail_dood", "mail_dood"),
)


def export_row(c: Cijfers, *, checks: bool = True) -> dict[str, int | str | None]:
    """One row for CSV/JSON: counts 1..4 as '< 5' (a string), other counts as numbers, durations in whole seconds
    or None when there were fewer than MIN_OBSERVATIONS; escalations as one column per step kind. ``checks=False``
    for a veiligheidshuis's row: a lookup that found nobody belongs to no veiligheidshuis, so only totals count."""
    row: dict[str, int | str | None] = {}
    for name, attr in KOLOMMEN:
        value = getattr(c, attr)
        if name == "checks" and not checks:
            row[name] = None
        elif name.endswith("_s"):
            row[name] = None if value is None else round(value)
        else:
            row[name] = small_count_value(value)
    steps = dict(c.escalaties)
    for step in STEP_KINDS:
        row[f"escalatie_{step}"] = small_count_value(steps.get(step, 0))
    return row


def small_count_value(n: int) -> int | str:
    """``small_count`` for machine formats: the number itself unless it is 1..4."""
    return SMALL_COUNT_TEXT if 1 <= n <= 4 else n


def as_csv(rapport: Rapport, names: Mapping[str, str]) -> str:
    """The one CSV of the figures (CLI and web download): RFC 4180, a header, one row per veiligheidshuis, then the
    total (for a report on one veiligheidshuis only its row). Names that a spreadsheet would run as a formula are
    quoted with a leading apostrophe."""
    if rapport.veiligheidshuis:
        rows = [(rapport.veiligheidshuis, export_row(rapport.totaal, checks=False))]
    else:
        rows = [*((key, export_row(c, checks=False)) for key, c in rapport.per_vh),
                ("totaal", export_row(rapport.totaal))]
    out = io.StringIO()
    header = ["periode", "veiligheidshuis", "naam", *rows[0][1]]
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for key, row in rows:
        naam = "Totaal" if key == "totaal" else names.get(key, key)
        safe = "'" + naam if naam[:1] in ("=", "+", "-", "@", "\t", "\r") else naam
        writer.writerow({"periode": rapport.period.label, "veiligheidshuis": key, "naam": safe,
                         **{k: "" if v is None else v for k, v in row.items()}})
    return out.getvalue()
