"""The on-call roster of the veiligheidshuizen (bereikbaarheidsdienst): add a shift (``!dienst``), show the
coming week, import shifts read from an iCalendar file (``zsm-bot dienst-import``).

Who is on duty at a moment, and who may answer a request, is asked by ``services.aanvraag`` through the same
named queries (``storage.aanvraag_queries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import UserError
from integrations.rooster_ical import Shift
from services.base import Tx
from storage import aanvraag_queries as q
from storage.aanvraag_models import DienstRooster
from storage.audit import Auditor
from storage.db import SessionFactory

MAX_SHIFT = timedelta(days=31)
SHOWN_AHEAD = timedelta(days=7)


@dataclass(frozen=True)
class Dienst:
    """One shift as shown in the room."""

    veiligheidshuis: str
    user_id: str
    backup_id: str | None
    starts_at: datetime
    ends_at: datetime


async def add_shift(tx: Tx, *, vh: str, user: str, backup: str | None, start: datetime, end: datetime,
                    actor: str, now: datetime) -> Dienst:
    """Refuses a shift that ends before it starts or lasts longer than 31 days; the newest entry wins."""
    if end <= start:
        raise UserError("Het einde van de dienst moet na het begin liggen.")
    if end - start > MAX_SHIFT:
        raise UserError("Een dienst duurt hoogstens 31 dagen; voer langere periodes in delen in of importeer een "
                        "iCalendar-bestand.")
    q.add_shift(tx, DienstRooster(veiligheidshuis=vh, user_id=user, backup_id=backup, starts_at=start, ends_at=end,
                                  source="commando", created_by=actor, created_at=now))
    return Dienst(vh, user, backup, start, end)


async def upcoming(tx: Tx, vh: str | None, now: datetime) -> list[Dienst]:
    """Shifts running now or starting in the coming 7 days, by veiligheidshuis and start."""
    return [Dienst(r.veiligheidshuis, r.user_id, r.backup_id, r.starts_at, r.ends_at)
            for r in await q.upcoming_shifts(tx, vh, now, SHOWN_AHEAD)]


async def import_roster(sessions: SessionFactory, auditor: Auditor, vh: str, shifts: Sequence[Shift], now: datetime,
                        actor: str) -> int:
    """Write imported shifts in one transaction; shifts with a UID seen before replace the earlier ones."""
    async with sessions() as s, s.begin():
        await q.replace_shifts_by_uid(s, vh, [sh.uid for sh in shifts])
        for sh in shifts:
            q.add_shift(s, DienstRooster(veiligheidshuis=vh, user_id=sh.user_id, backup_id=sh.backup_id,
                                         starts_at=sh.starts_at, ends_at=sh.ends_at, source="ical", uid=sh.uid,
                                         created_by=actor, created_at=now))
        await auditor.record(s, kind="dienst.geimporteerd", at=now, actor=actor,
                             details={"vh": vh, "diensten": len(shifts)})
    return len(shifts)
