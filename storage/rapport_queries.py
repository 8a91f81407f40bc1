"""The figures of issue 7, computed from the anonymous facts with grouped queries, piece by piece.

GROUP BY queries count per kind, veiligheidshuis, outcome, minor flag and step (a few hundred groups at most per
piece, whatever the volume): over the day counts that the daily fold made (``storage.statistiek_fold``), a week at a
time, and over the facts not yet folded, at once, with the bucket a CASE over the bucket boundaries. Other queries
fetch only the durations needed for medians and p90 (sorted in Python) and, per person, the first arrival and the
latest decision for the feedback coverage. The same SQL runs on SQLite and PostgreSQL. Reading the period in pieces
costs some 180 statements for a year instead of eight (about 0.1 s more); it lets a report in the background give
way to a command between them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.aanvraag import STEP_KINDS
from domain.clock import AMSTERDAM
from domain.rapport import Cijfers, Period, Rapport, buckets, median, p90, pieces
from storage import statistiek_models as f
from storage.db import create_engine, read_only, session_factory
from storage.statistiek_models import StatistiekDag, StatistiekFeit
from storage.werklijst_queries import first_arrivals

FEEDBACK_MAIL = ("terugkoppeling", "correctie")  # mail kinds that are a terugkoppeling on a decision
TOTAL = "\x00totaal"  # accumulator key for "all veiligheidshuizen" (never a configured key)
PIECE_DAYS = 7  # a piece of a year's report is some 2 ms of the server's time on PostgreSQL (bench.check_lookup)
PAUSE_EVERY = 2000  # rows of durations between two pauses: about a millisecond of Python

Pause = Callable[[], None]


@dataclass
class _Acc:
    """Mutable counters while reading the grouped rows; frozen into ``Cijfers`` at the end."""

    n: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    esc: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    feedback_s: list[float] = field(default_factory=list)
    respons_s: list[float] = field(default_factory=list)

    def add(self, kind: str, outcome: str | None, minor: bool, step: str | None, count: int) -> None:
        n = self.n
        if kind == f.CHECK:
            n["checks"] += count
        elif kind == f.HIT:
            n["hits_minderjarig" if minor else "hits_volwassen"] += count
        elif kind == f.BESLUIT_BEKEND:
            n["besluiten_bekend"] += count
            if outcome == "gevolgd":
                n["advies_gevolgd"] += count
            elif outcome == "afgeweken":
                n["advies_afgeweken"] += count
            elif outcome == "vrijgesteld":
                n["advies_vrijgesteld"] += count
        elif kind == f.MAIL_AFGELEVERD:
            n["mail_afgeleverd"] += count
            if outcome in FEEDBACK_MAIL:
                n["terugkoppeling_afgeleverd"] += count
        elif kind == f.MAIL_HERHAALD:
            n["mail_herhaald"] += count
        elif kind == f.MAIL_DOOD:
            n["mail_dood"] += count
        elif kind == f.AANMELDING:
            n["aanmeldingen"] += count
        elif kind == f.AANVRAAG_GEOPEND:
            n["aanvragen_geopend"] += count
        elif kind == f.AANVRAAG_BEVESTIGD:
            n["aanvragen_bevestigd"] += count
        elif kind == f.AANVRAAG_BEANTWOORD:
            n["aanvragen_te_laat" if outcome == "te_laat" else "aanvragen_op_tijd"] += count
        elif kind == f.AANVRAAG_VERLOPEN:
            n["aanvragen_verlopen"] += count
        elif kind == f.ESCALATIE:
            self.esc[step or "onbekend"] += count

    def freeze(self) -> Cijfers:
        order = {k: i for i, k in enumerate(STEP_KINDS)}
        steps = sorted(((k, v) for k, v in self.esc.items() if v), key=lambda kv: (order.get(kv[0], 99), kv[0]))
        fb, rs = sorted(self.feedback_s), sorted(self.respons_s)
        return replace(Cijfers(), **{k: v for k, v in self.n.items()}, escalaties=tuple(steps),
                       terugkoppeling_mediaan_s=median(fb), terugkoppeling_p90_s=p90(fb),
                       respons_mediaan_s=median(rs), respons_p90_s=p90(rs))


def _bucket_expr(cuts: list[Period]) -> Any:
    """0-based bucket index of a fact's time; the WHERE clause already keeps it inside the period."""
    return case(*[(StatistiekFeit.at < b.end, i) for i, b in enumerate(cuts)], else_=len(cuts) - 1)


def go_on() -> None:
    """The pause of a report with nothing to give way to (the CLI, a test, an in-memory database)."""


@dataclass
class _Coverage:
    """The feedback coverage the pilots could not measure (L1125-1134), added up piece by piece: per (house or None
    for all, bucket index or None for the whole period), the known persons who came in and how many of them got an
    active decision at or after their first arrival in that scope. Persons, not lookups: a person checked three
    times counts once, a person known at two houses once in the total."""

    latest: dict[str, datetime | None] = field(default_factory=dict)
    firsts: dict[tuple[str | None, int | None], dict[str, datetime]] = field(
        default_factory=lambda: defaultdict(dict))

    def add(self, bucket: int, rows: Sequence[tuple[str, str, datetime, datetime | None]]) -> None:
        for subject, vh, first, latest in rows:
            self.latest[subject] = latest
            for key in ((vh, None), (None, None), (vh, bucket), (None, bucket)):
                seen = self.firsts[key]
                if subject not in seen or first < seen[subject]:
                    seen[subject] = first

    def counts(self, pause: Pause) -> dict[tuple[str | None, int | None], tuple[int, int]]:
        out = {}
        for key, seen in self.firsts.items():
            pause()
            fed = sum(1 for subject, first in seen.items()
                      if (latest := self.latest[subject]) is not None and latest >= first)
            out[key] = (len(seen), fed)
        return out


async def compute_rapport(session: AsyncSession, period: Period, veiligheidshuis: str | None,
                          vh_keys: Sequence[str], pause: Pause = go_on) -> Rapport:
    """The figures of one period for one veiligheidshuis (or all of them, with ``vh_keys`` giving the order of the
    per-house rows; houses that are no longer configured but have facts follow at the end, so the rows add up to
    the total). With a veiligheidshuis, lookups that found nobody (no house) are not in its figures.

    The folded days and the arrivals are read in pieces of at most a week (``domain.rapport.pieces``), and
    ``pause`` is called before each piece and between batches of the work in Python: the report worker gives way to
    the bot's commands there (``services.rapport_worker``). The facts not yet folded are a day or two at most
    (the daily fold takes the rest) and are read at once."""
    cuts = buckets(period)
    t, d = StatistiekFeit, StatistiekDag
    pause()  # the first query connects too: on PostgreSQL a server process is started for it
    where = [t.at >= period.start, t.at < period.end]
    if veiligheidshuis is not None:
        where.append(t.veiligheidshuis == veiligheidshuis)
    per_vh: dict[str, _Acc] = defaultdict(_Acc)
    total = _Acc()
    series = [_Acc() for _ in cuts]

    def add(bucket: int, kind: str, vh: str | None, outcome: str | None, minor: bool | None, step: str | None,
            count: int | None) -> None:
        n = int(count or 0)
        for acc in (total, series[bucket], *((per_vh[vh],) if vh else ())):
            acc.add(kind, outcome or None, bool(minor), step or None, n)

    # The bucket is computed in a subquery and grouped by name: PostgreSQL would not see two copies of a CASE with
    # bound parameters as the same expression.
    inner = select(_bucket_expr(cuts).label("bucket"), t.kind, t.veiligheidshuis, t.outcome, t.minderjarig, t.step,
                   t.aantal).where(*where).subquery()
    keys = (inner.c.bucket, inner.c.kind, inner.c.veiligheidshuis, inner.c.outcome, inner.c.minderjarig,
            inner.c.step)
    for b, kind, vh, outcome, minor, step, count in (
            await session.execute(select(*keys, func.sum(inner.c.aantal)).group_by(*keys))).all():
        add(int(b), kind, vh, outcome, minor, step, count)
    # Durations through Core, not the ORM: a year holds some 300,000 of them and only floats are needed.
    conn = await session.connection()
    duration_rows = (await conn.execute(
        select(_bucket_expr(cuts), t.veiligheidshuis, t.kind == f.MAIL_AFGELEVERD, t.duration_s).where(
            *where, t.duration_s.is_not(None),
            ((t.kind == f.MAIL_AFGELEVERD) & t.outcome.in_(FEEDBACK_MAIL)) | (t.kind == f.AANVRAAG_BEANTWOORD))
    )).all()
    day_keys = (d.kind, d.veiligheidshuis, d.outcome, d.minderjarig, d.step)
    folded_rows: list[tuple[int, str, bool, str | None]] = []
    # The pieces of a bucket repeat the same groups: added up per bucket first, then into the accumulators once.
    day_counts: dict[tuple[int, str, str, str, bool, str], int] = defaultdict(int)
    cover = _Coverage()
    for b, piece in pieces(cuts, PIECE_DAYS):
        pause()
        day_where = [d.dag >= piece.start.astimezone(AMSTERDAM).date(), d.dag < piece.end.astimezone(AMSTERDAM).date()]
        if veiligheidshuis is not None:
            day_where.append(d.veiligheidshuis == veiligheidshuis)
        for kind, vh, outcome, minor, step, count in (
                await conn.execute(select(*day_keys, func.sum(d.aantal)).where(*day_where).group_by(*day_keys))):
            day_counts[(b, kind, vh, outcome, minor, step)] += int(count or 0)
        # Folded durations: one short text per day and key.
        folded_rows.extend((b, vh, is_mail, text) for vh, is_mail, text in await conn.execute(
            select(d.veiligheidshuis, d.kind == f.MAIL_AFGELEVERD, d.duren).where(
                *day_where, d.duren.is_not(None),
                ((d.kind == f.MAIL_AFGELEVERD) & d.outcome.in_(FEEDBACK_MAIL)) | (d.kind == f.AANVRAAG_BEANTWOORD))))
        # Persons, not lookups: the known persons who came in and how many of them got a decision (issue 14).
        cover.add(b, await first_arrivals(session, piece.start, piece.end, veiligheidshuis))
    for (b, kind, vh, outcome, minor, step), n in day_counts.items():
        add(b, kind, vh, outcome, minor, step, n)
    # Parsing a year of durations and the medians take a few hundred milliseconds of Python: in a thread, so where
    # a report is computed in the bot's own interpreter (an in-memory database, which no worker process can reach)
    # the event loop still gets the interpreter at every switch interval instead of after the whole report.
    return await asyncio.to_thread(_assemble, period, veiligheidshuis, vh_keys, cuts, total, series, per_vh,
                                   duration_rows, folded_rows, cover, pause)


async def compute_rapport_apart(database_url: str, period: Period, veiligheidshuis: str | None,
                                vh_keys: Sequence[str], pause: Pause = go_on) -> Rapport:
    """``compute_rapport`` for a process that shares nothing with the bot but the database (the report worker): an
    engine of its own without a pool, so nothing stays open between reports, and a reader transaction as the bot's
    reports have (``read_only``: no write lock held or waited for; READ ONLY on PostgreSQL)."""
    engine = create_engine(database_url, pooled=False)
    try:
        async with read_only(session_factory(engine)) as session:
            return await compute_rapport(session, period, veiligheidshuis, vh_keys, pause)
    finally:
        await engine.dispose()


def _assemble(period: Period, veiligheidshuis: str | None, vh_keys: Sequence[str], cuts: list[Period], total: _Acc,
              series: list[_Acc], per_vh: dict[str, _Acc], duration_rows: Sequence[Any],
              folded_rows: Sequence[Any], coverage: _Coverage, pause: Pause) -> Rapport:
    """The durations into their collections, and every accumulator frozen into figures, with a pause every
    ``PAUSE_EVERY`` rows and before each accumulator's sorting."""
    fb_total, rs_total = total.feedback_s, total.respons_s
    fb_series, rs_series = [a.feedback_s for a in series], [a.respons_s for a in series]
    fb_vh: dict[str, list[float]] = defaultdict(list)
    rs_vh: dict[str, list[float]] = defaultdict(list)
    # Raw facts carry one duration each, folded days a list: both land in the same three collections.
    raw = ((b, vh, is_mail, (seconds,)) for b, vh, is_mail, seconds in duration_rows)
    days = ((b, vh, is_mail, [float(v) for v in text.split(",")]) for b, vh, is_mail, text in folded_rows)
    for n, (b, vh, is_mail, values) in enumerate(chain(raw, days)):
        if n % PAUSE_EVERY == 0:
            pause()
        into_total, into_series, into_vh = (fb_total, fb_series, fb_vh) if is_mail else (rs_total, rs_series, rs_vh)
        into_total.extend(values)
        into_series[b].extend(values)
        into_vh[vh].extend(values)
    for vh, values in fb_vh.items():
        if vh:
            per_vh[vh].feedback_s = values
    for vh, values in rs_vh.items():
        if vh:
            per_vh[vh].respons_s = values
    cover = coverage.counts(pause)
    for vh, _ in cover:
        if vh is not None:
            per_vh.setdefault(vh, _Acc())  # a house with arrivals but no facts still gets its row
    if veiligheidshuis is not None:
        order = [veiligheidshuis]
    else:
        order = [*vh_keys, *sorted(k for k in per_vh if k not in set(vh_keys))]

    def frozen(acc: _Acc, key: tuple[str | None, int | None]) -> Cijfers:
        pause()
        persons, fed = cover.get(key, (0, 0))
        return replace(acc.freeze(), personen_bekend=persons, personen_teruggekoppeld=fed)

    return Rapport(
        period=period,
        veiligheidshuis=veiligheidshuis,
        totaal=frozen(total, (veiligheidshuis, None)),
        per_vh=tuple((k, frozen(per_vh[k], (k, None)) if k in per_vh else Cijfers()) for k in order),
        reeks=tuple((cut, frozen(acc, (veiligheidshuis, i))) for i, (cut, acc) in enumerate(zip(cuts, series,
                                                                                                 strict=True))),
    )
