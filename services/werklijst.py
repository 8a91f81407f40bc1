"""No feedback forgotten (issue 14, point 6): ``!werklijst`` and its reminder in the ZSM room.

A known person who came in (a hit by ``!check`` or the instroom signal, ``storage.werklijst_queries``) and has no
decision after ``[werklijst] wacht_minuten`` is on the list, oldest first, with the masked id only. The reminder is
posted at the configured local times; its transaction id names the time slot, so it is sent once per slot whatever
the number of processes or restarts (``outgoing_message.txn_id`` is unique).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config.werklijst import WerklijstSettings
from domain.aanvraag import WorkCalendar, at_local
from domain.clock import AMSTERDAM, format_local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, parse_person_id
from domain.rapport import format_duur
from domain.veiligheidshuizen import Veiligheidshuizen, mail_identifier
from services import messages
from services.base import Caller, Tx
from services.messages import NewMessage, message_content, txn_id_for
from services.publiek import PubliekService
from services.reply import Bold, Code, Doc, Part, Reply
from storage import werklijst_queries as q
from storage.audit import Auditor
from storage.db import SessionFactory

LIST_FIELDS = frozenset({"veiligheidshuis"})


@dataclass(frozen=True)
class Regel:
    masked: str
    veiligheidshuis: str
    vh_naam: str
    came_in_at: datetime


@dataclass
class WerklijstService:
    settings: WerklijstSettings
    auditor: Auditor
    veiligheidshuizen: Veiligheidshuizen
    sessions: SessionFactory
    room: str | None  # the ZSM room for the reminder
    on_enqueued: Callable[[], None] = field(default=lambda: None)
    # the shift-start digest ([werklijst] dienststart): the office hours and each digest house's on-call room
    calendar: WorkCalendar | None = None
    digest_rooms: Mapping[str, str] = field(default_factory=dict)
    # the room's audience: the list names each person's house (dat-informatie)
    publiek: PubliekService | None = None

    async def came_in(self, tx: Tx, *, person_value: str, masked: str, veiligheidshuizen: Iterable[str], via: str,
                      at: datetime) -> None:
        """Called by ``!check`` and the instroom signal for a known person, in their transaction."""
        houses = list(veiligheidshuizen)
        if houses:
            await q.add_arrivals(tx, subject=self.auditor.subject_of(person_value), masked=masked,
                                 veiligheidshuizen=houses, via=via, at=at,
                                 identificatie=self._identifiers(person_value, houses))

    def _identifiers(self, person_value: str, houses: list[str]) -> dict[str, str]:
        """Per digest house, the identifier it may receive; kept for no other house (need to know)."""
        out: dict[str, str] = {}
        for key in houses:
            vh = self.veiligheidshuizen.get(key)
            if key not in self.digest_rooms or vh is None:
                continue
            try:
                out[key] = mail_identifier(vh, parse_person_id(person_value), None)
            except (InvalidIdentifier, UserError):
                continue  # this house may not receive the typed identifier: the digest shows the masked id
        return out

    async def forget(self, tx: Tx, person_value: str) -> int:
        """Technisch sepot 01: the arrivals of the person go with the rest of the case."""
        return await q.delete_arrivals(tx, self.auditor.subject_of(person_value))

    async def regels(self, tx: Tx, now: datetime, veiligheidshuis: str | None = None) -> list[Regel]:
        before = now - timedelta(minutes=self.settings.wacht_minuten)
        out = []
        for o in await q.open_arrivals(tx, before=before, veiligheidshuis=veiligheidshuis):
            vh = self.veiligheidshuizen.get(o.veiligheidshuis)
            out.append(Regel(o.masked, o.veiligheidshuis, vh.naam if vh else o.veiligheidshuis, o.came_in_at))
        return out

    async def lijst(self, tx: Tx, caller: Caller, veiligheidshuis: str | None) -> list[Regel]:
        """``!werklijst``: for the KPC; audited with the number of persons shown (no identifiers)."""
        if veiligheidshuis is not None and self.veiligheidshuizen.get(veiligheidshuis) is None:
            raise UserError(f"Veiligheidshuis '{veiligheidshuis[:40]}' is onbekend. Gebruik: !werklijst "
                            "[veiligheidshuis], bijvoorbeeld !werklijst utrecht.")
        rows = await self.regels(tx, caller.now, veiligheidshuis)
        await caller.audit("werklijst.opgevraagd", aantal=len(rows), veiligheidshuis=veiligheidshuis)
        return rows

    async def direct_to(self, tx: Tx, caller: Caller) -> str | None:
        """``!werklijst`` goes to the asker's direct room when not every reader of the room may see the houses."""
        if self.publiek is None:
            return None
        return await self.publiek.direct_for(tx, caller.room_id, caller.sender, LIST_FIELDS, None)

    def render(self, rows: list[Regel], now: datetime, *, herinnering: bool = False) -> Reply:
        wait = self.settings.wacht_minuten
        head = "Herinnering werklijst" if herinnering else "Werklijst"
        if not rows:
            return Doc().line(Bold(head), f": geen bekende personen zonder besluit (binnengekomen langer dan {wait} "
                              "minuten geleden).").build()
        doc = Doc().line(Bold(head), f": {len(rows)} bekende perso{'on' if len(rows) == 1 else 'nen'} binnengekomen "
                         f"zonder besluit na {wait} minuten, oudste eerst.")
        items: list[list[Part]] = []
        for r in rows:
            items.append([Bold(r.masked), f" · {r.vh_naam} · binnen sinds {format_local(r.came_in_at)} "
                          f"({format_duur((now - r.came_in_at).total_seconds())})"])
        doc.bullets(items)
        doc.line("Leg het besluit vast met ", Code("!besluit <id> <afdoening>"), "; dan gaat de terugkoppeling.")
        return doc.build(case_data=True)

    # ------------------------------------------------------------------------------------------ the reminder

    def last_slot(self, now: datetime) -> datetime | None:
        """The latest configured reminder time at or before ``now`` (local time), as an aware UTC moment."""
        if not self.settings.herinneringen:
            return None
        local = now.astimezone(AMSTERDAM)
        for day in (local.date(), local.date() - timedelta(days=1)):
            for t in sorted(self.settings.herinneringen, reverse=True):
                slot = datetime.combine(day, t, tzinfo=AMSTERDAM)
                if slot <= local:
                    return slot.astimezone(now.tzinfo)
        return None

    async def remind_due(self, now: datetime) -> bool:
        """Post the list at the latest reminder time that has passed, once per slot; nothing when the list is empty
        or the slot is more than an hour ago (after downtime an old list is no reminder). True when one was
        queued."""
        slot = self.last_slot(now)
        if slot is None or self.room is None or now - slot > timedelta(hours=1):
            return False
        async with self.sessions() as s, s.begin():
            rows = await self.regels(s, now)
            if not rows:
                return False
            reply = self.render(rows, now, herinnering=True)
            if self.publiek is not None and not await self.publiek.room_sees(s, self.room, None, LIST_FIELDS, None):
                reply = Doc().line(Bold("Herinnering werklijst"), f": {len(rows)} bekende perso"
                                   f"{'on' if len(rows) == 1 else 'nen'} zonder besluit. Niet elk lid van deze room "
                                   "mag de lijst zien; een OvJ, parketsecretaris of KPC ziet hem met ",
                                   Code("!werklijst"), ".").build()
            queued = await messages.queue(s, NewMessage(
                room_id=self.room, txn_id=txn_id_for("werklijst", slot.isoformat()), case_data=True,
                content=message_content(reply)), now)
            if queued is None:
                return False  # this slot was already reminded
            await self.auditor.record(s, kind="werklijst.herinnering", at=now, actor=None, role=None,
                                      details={"aantal": len(rows), "tijdstip": slot.isoformat()})
        self.on_enqueued()
        return True


    # ------------------------------------------------------------------------------------------ shift-start digest

    def closed_window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """When ``now`` is within the first hour of today's office hours: the closed hours just ended (from the
        previous working day's closing time to today's opening), else None."""
        cal = self.calendar
        if cal is None or not cal.in_office_hours(now):
            return None
        today = now.astimezone(AMSTERDAM).date()
        opened = at_local(today, cal.opens)
        if now - opened > timedelta(hours=1):
            return None
        previous = today - timedelta(days=1)
        for _ in range(60):
            if cal.is_working_day(previous):
                return at_local(previous, cal.closes), opened
            previous -= timedelta(days=1)
        return None

    def render_digest(self, vh_key: str, rows: list[q.Aankomst], window: tuple[datetime, datetime]) -> Reply:
        """For the house's own on-call room: its clients, the identifier it may receive, when they came in. No
        advice text and no decision, whatever the covenant profile: only that the person came into ZSM."""
        vh = self.veiligheidshuizen.get(vh_key)
        naam = vh.naam if vh else vh_key
        doc = Doc().line(Bold("Dienststart"), f": {len(rows)} bekende cliënt(en) van {naam} kwamen binnen bij ZSM "
                         f"terwijl het veiligheidshuis dicht was ({format_local(window[0])} tot "
                         f"{format_local(window[1])}).")
        doc.bullets([[Bold(r.identificatie or r.masked), f" · binnen {format_local(r.came_in_at)}"] for r in rows])
        doc.line("ZSM koppelt het besluit terug zodra het is vastgelegd.")
        return doc.build(case_data=True)

    async def digest_due(self, now: datetime) -> int:
        """At the start of office hours, each digest house's on-call room gets its known clients who came in while
        it was closed; once per house and day (the transaction id names both), nothing when there were none.
        Returns the number of digests queued."""
        window = self.closed_window(now)
        if window is None or not self.digest_rooms:
            return 0
        queued_count = 0
        async with self.sessions() as s, s.begin():
            for vh_key, room in self.digest_rooms.items():
                rows = await q.arrivals_between(s, vh_key, *window)
                if not rows:
                    continue
                queued = await messages.queue(s, NewMessage(
                    room_id=room, txn_id=txn_id_for(f"dienststart:{vh_key}", window[1].isoformat()), case_data=True,
                    subject=rows[0].subject, also_about=tuple(r.subject for r in rows[1:]),  # sepot 01 redacts it
                    content=message_content(self.render_digest(vh_key, rows, window))), now)
                if queued is None:
                    continue  # this house's digest for today went already
                queued_count += 1
                await self.auditor.record(s, kind="werklijst.dienststart", at=now, actor=None, role=None,
                                          details={"veiligheidshuis": vh_key, "aantal": len(rows),
                                                   "ruimte": room})
        if queued_count:
            self.on_enqueued()
        return queued_count
