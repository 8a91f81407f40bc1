"""Informing the person (PRIVACY.md: record whether and when the person was informed, or why that is deferred).

The acts are audit records (``domain.informeren``): ``!informeren <id> gedaan`` and ``... uitgesteld``. The standing
is the newest of them about the person; reading it is itself a lookup about the person and is audited. The standing
is the OM's own process data: a room shows it only when every reader has a deciding role, otherwise it goes to the
asker's direct room (``direct_to``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain import informeren as rules
from domain.clock import local
from domain.identifiers import PersonId
from domain.informeren import InformerenStatus
from domain.matrix_ids import direct_target
from domain.roles import DECIDING_ROLES
from services.base import Caller, Tx
from services.publiek import PubliekService
from storage.audit import Auditor
from storage.audit_queries import latest_about


@dataclass(frozen=True)
class Stand:
    """The person's standing; ``status`` None when nothing was recorded yet."""

    person: PersonId
    status: InformerenStatus | None = None
    op: date | None = None  # gedaan: the day the person was informed
    via: str | None = None
    reden: str | None = None  # uitgesteld: why
    door: str | None = None  # who recorded it
    vastgelegd: datetime | None = None


class InformerenService:
    def __init__(self, *, auditor: Auditor, publiek: PubliekService | None) -> None:
        self.auditor = auditor
        self.publiek = publiek

    async def stand(self, tx: Tx, act: Caller, person: PersonId) -> Stand:
        record = await latest_about(tx, self.auditor.subject_of(person.value), list(rules.STATUS_OF_KIND))
        await act.audit(rules.VIEWED, person=person.value,
                        stand=rules.STATUS_OF_KIND[record.kind].value if record is not None else "geen")
        if record is None:
            return Stand(person)
        d = record.details
        return Stand(person, rules.STATUS_OF_KIND[record.kind], date.fromisoformat(d["op"]) if d.get("op") else None,
                     d.get("via"), d.get("reden"), record.actor, record.at)

    async def gedaan(self, tx: Tx, act: Caller, person: PersonId, op: str | None, via: str | None) -> Stand:
        day = rules.datum(op, local(act.now).date())
        how = rules.via(via)
        await act.audit(rules.KIND[InformerenStatus.GEDAAN], person=person.value, op=day.isoformat(), via=how)
        return Stand(person, InformerenStatus.GEDAAN, day, how, None, act.sender, act.now)

    async def uitgesteld(self, tx: Tx, act: Caller, person: PersonId, reden: str | None) -> Stand:
        why = rules.reden(reden)
        await act.audit(rules.KIND[InformerenStatus.UITGESTELD], person=person.value, reden=why)
        return Stand(person, InformerenStatus.UITGESTELD, None, None, why, act.sender, act.now)

    async def direct_to(self, tx: Tx, act: Caller) -> str | None:
        """None when every reader of the room has a deciding role (an unknown audience counts as not)."""
        if self.publiek is None:
            return None
        roles = await self.publiek.room_roles(tx, act.room_id, act.sender)
        if roles is not None and all(r in DECIDING_ROLES for r in roles):
            return None
        return direct_target(act.sender)
