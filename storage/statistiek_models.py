"""Anonymous facts for the management figures (issue 7): one row per countable event, no person in it.

A fact is written in the same transaction as the event it counts, so a rolled-back command counts nothing and a
committed one counts exactly once. The table has no subject, no identifier and no free text: it is not personal
data, so the retention purge leaves it alone and the figures of last year survive the removal of last year's cases.

Counting rules: a decision counts per veiligheidshuis that knows the person (``commands.besluit``); when it is
replaced, undone or removed by a technisch sepot 01, a fact with ``aantal = -1`` at the original decision's time
takes its count back (what it counted is kept in its audit record), so every figure is SUM(aantal) and a decision
counts once, as its final version. Mail facts are written when the relay accepts (or the worker gives up), with the
time since the decision for feedback mails. Advice-request facts are written by ``services.aanvraag``.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, Index, Integer, String, Table, Text, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import commit_tail
from storage.models import Base, BigId
from storage.types import UTCDateTime

# The kinds of fact. ``outcome``/``duration_s``/``step`` carry meaning only for the kinds noted.
CHECK = "check"                        # one lookup (!check or one id of !instroom); veiligheidshuis NULL
HIT = "hit"                            # per lookup per veiligheidshuis that knows the person; minderjarig
BESLUIT_BEKEND = "besluit_bekend"      # decision on a person known at the VH; outcome gevolgd|afgeweken|geen_advies
AANMELDING = "aanmelding"              # !aanmelden
MAIL_AFGELEVERD = "mail_afgeleverd"    # accepted by the relay; outcome = mail kind; duration_s since the decision
MAIL_HERHAALD = "mail_herhaald"        # accepted after more than one attempt
MAIL_DOOD = "mail_dood"                # given up
AANVRAAG_GEOPEND = "aanvraag_geopend"
AANVRAAG_BEVESTIGD = "aanvraag_bevestigd"
AANVRAAG_BEANTWOORD = "aanvraag_beantwoord"   # outcome op_tijd|te_laat; duration_s opened -> answered
AANVRAAG_VERLOPEN = "aanvraag_verlopen"
ESCALATIE = "escalatie"                # step = the step kind (herinnering, backup, teamleider, iedereen, ...)

KINDS = (CHECK, HIT, BESLUIT_BEKEND, AANMELDING, MAIL_AFGELEVERD, MAIL_HERHAALD, MAIL_DOOD, AANVRAAG_GEOPEND,
         AANVRAAG_BEVESTIGD, AANVRAAG_BEANTWOORD, AANVRAAG_VERLOPEN, ESCALATIE)


class StatistiekFeit(Base):
    __tablename__ = "statistiek_feit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    veiligheidshuis: Mapped[str | None] = mapped_column(String(64))
    minderjarig: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(32))
    duration_s: Mapped[float | None] = mapped_column(Float)
    step: Mapped[str | None] = mapped_column(String(32))
    # +1, or -1 for a correction: a replaced, undone or removed decision takes its count back at its own time,
    # so every figure is SUM(aantal) and a decision is counted once, as its final version.
    aantal: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_statistiek_at_kind", "at", "kind"),)


class StatistiekDag(Base):
    """Facts folded into counts per Amsterdam day (``storage.statistiek_fold``), so a year's report reads some
    ten thousands of rows instead of millions. Empty text instead of NULL keeps the unique key usable."""

    __tablename__ = "statistiek_dag"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dag: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    veiligheidshuis: Mapped[str] = mapped_column(String(64), default="")
    minderjarig: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(32), default="")
    step: Mapped[str] = mapped_column(String(32), default="")
    aantal: Mapped[int] = mapped_column(Integer, default=0)
    # The durations of the folded facts of this key, in seconds to the millisecond, comma-separated: medians and
    # p90 stay exact, and a year's report reads tens of thousands of short texts instead of 300,000 rows.
    duren: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ux_statistiek_dag", "dag", "kind", "veiligheidshuis", "outcome", "minderjarig", "step", unique=True),
    )


@dataclass(frozen=True)
class Feit:
    """One fact to record; ``at`` is the moment of the event (the caller's clock), in UTC."""

    kind: str
    at: datetime
    veiligheidshuis: str | None = None
    minderjarig: bool = False
    outcome: str | None = None
    duration_s: float | None = None
    step: str | None = None
    aantal: int = 1


def _row(f: Feit) -> dict[str, object]:
    if f.kind not in KINDS:
        raise ValueError(f"unknown fact kind {f.kind!r}")
    return {"at": f.at, "kind": f.kind, "veiligheidshuis": f.veiligheidshuis, "minderjarig": f.minderjarig,
            "outcome": f.outcome, "duration_s": f.duration_s, "step": f.step, "aantal": f.aantal}


# On the table, not through the ORM's bulk path, and built once: facts are written by nearly every command.
_INSERT = insert(typing.cast(Table, StatistiekFeit.__table__)).execution_options(render_nulls=True)


async def record_facts(session: AsyncSession, facts: Iterable[Feit]) -> None:
    """Written at the caller's commit (``storage.commit_tail``; never commits itself): the fact stands or falls with
    the event it counts, and no transaction reads back the facts it writes (the figures are read by the report and
    folded by the daily job, in transactions of their own)."""
    # render_nulls keeps every row's column list the same, so the rows of one command go in one statement instead of
    # one per distinct set of non-null columns.
    commit_tail.insert_at_commit(session, _INSERT, [_row(f) for f in facts])


async def record_fact(session: AsyncSession, *, kind: str, at: datetime, veiligheidshuis: str | None = None,
                      minderjarig: bool = False, outcome: str | None = None, duration_s: float | None = None,
                      step: str | None = None) -> None:
    await record_facts(session, [Feit(kind, at, veiligheidshuis, minderjarig, outcome, duration_s, step)])
