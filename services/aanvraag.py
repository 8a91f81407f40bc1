"""Advies op aanvraag in the database: open, acknowledge, answer, cancel, and ``process_due`` for the steps.

Every effect (state change, step claim, Matrix message in ``outgoing_message``, mail row, audit record)
happens in one transaction, so a crash leaves either all of it or none. ``process_due(now)`` claims each due
step with ``UPDATE ... WHERE done_at IS NULL``: a step fires exactly once, and after downtime every overdue
step is carried out at once and marked late. APScheduler only calls ``process_due``; it keeps no state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound import enqueue, message_content, txn_id_for
from commands.reply import Bold, Code, Doc, Italic, Reply
from domain import aanvraag as rules
from domain.advies import Markering
from domain.clock import AMSTERDAM, format_local
from domain.identifiers import PersonId
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen
from integrations.mail.outbox import MailService
from integrations.registry.builtin import upsert
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag, DienstRooster
from storage.audit import Auditor
from storage.db import SessionFactory
from storage.models import OutgoingMessage
from storage.registry_models import MarkeringRow
from storage.statistiek_models import (
    AANVRAAG_BEANTWOORD,
    AANVRAAG_BEVESTIGD,
    AANVRAAG_GEOPEND,
    AANVRAAG_VERLOPEN,
    ESCALATIE,
    Feit,
    record_fact,
    record_facts,
)

log = logging.getLogger(__name__)

MAIL_SUBJECT = "[ZSM] Advies op aanvraag {ref} - antwoord uiterlijk {deadline}"


class _Batch:
    """Messages and audit records of one batch of steps, written together: one lookup of existing transaction
    ids, one lock of the audit chain. Same rows as ``enqueue`` and ``Auditor.record`` would write one by one."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audits: list[dict[str, Any]] = []
        self.facts: list[Feit] = []

    def enqueue(self, **kwargs: Any) -> None:
        self.messages.append(kwargs)

    def audit(self, **kwargs: Any) -> None:
        self.audits.append(kwargs)

    async def flush(self, session: AsyncSession, auditor: Auditor, now: datetime) -> None:
        if self.messages:
            txns = [m["txn_id"] for m in self.messages]
            existing = set((await session.execute(
                select(OutgoingMessage.txn_id).where(OutgoingMessage.txn_id.in_(txns)))).scalars())
            session.add_all([
                OutgoingMessage(txn_id=m["txn_id"], room_id=m["room_id"], content=m["content"], status="pending",
                                attempts=0, next_attempt_at=m["now"], created_at=m["now"],
                                in_reply_to=m.get("in_reply_to"), carries_case_data=m.get("case_data", False))
                for m in self.messages if m["txn_id"] not in existing
            ])
        if self.audits:
            await auditor.record_many(session, [{"at": now, **a} for a in self.audits])
        await record_facts(session, self.facts)


def source_of(request_id: int) -> str:
    return f"aanvraag:{request_id}"


@dataclass
class AanvraagService:
    """Attached to ``Services.extras['aanvraag']`` by ``bot.aanvraag.install``."""

    config: rules.AanvraagConfig
    auditor: Auditor
    veiligheidshuizen: Veiligheidshuizen
    sessions: SessionFactory
    mail: MailService | None = None
    on_enqueued: Callable[[], None] = field(default=lambda: None)
    lags: list[float] = field(default_factory=list)
    keep_lags: bool = False

    # ------------------------------------------------------------------------------------------ links

    def sign(self, request_id: int, expires: datetime) -> str:
        exp = int(expires.timestamp())
        mac = hmac.new(self.config.link_key.encode(), f"{request_id}.{exp}".encode(), hashlib.sha256).hexdigest()
        return f"{exp}.{mac}"

    def verify(self, request_id: int, token: str, now: datetime) -> str | None:
        """None when good, else the Dutch reason."""
        if not self.config.link_key:
            return "Antwoorden via de website is niet ingeschakeld."
        exp_text, _, mac = token.partition(".")
        if not exp_text.isdigit() or len(mac) != 64:
            return "Deze link is ongeldig."
        good = hmac.new(self.config.link_key.encode(), f"{request_id}.{exp_text}".encode(), hashlib.sha256)
        if not hmac.compare_digest(good.hexdigest(), mac):
            return "Deze link is ongeldig."
        if now.timestamp() >= int(exp_text):
            return "Deze link is verlopen."
        return None

    def link(self, request_id: int, expires: datetime) -> str | None:
        if not self.config.link_key or not self.config.base_url:
            return None
        return f"{self.config.base_url}/aanvraag/{request_id}/antwoord?t={self.sign(request_id, expires)}"

    # ------------------------------------------------------------------------------------------ roster

    async def on_duty(self, session: AsyncSession, vh: str, at: datetime) -> DienstRooster | None:
        return (
            await session.execute(
                select(DienstRooster)
                .where(DienstRooster.veiligheidshuis == vh, DienstRooster.starts_at <= at, DienstRooster.ends_at > at)
                .order_by(DienstRooster.id.desc()).limit(1)
            )
        ).scalar_one_or_none()

    async def is_member(self, session: AsyncSession, vh: str, user: str) -> bool:
        if self.config.vh(vh).teamleider == user:
            return True
        row = (
            await session.execute(
                select(DienstRooster.id).where(
                    DienstRooster.veiligheidshuis == vh,
                    or_(DienstRooster.user_id == user, DienstRooster.backup_id == user),
                ).limit(1)
            )
        ).first()
        return row is not None

    async def members(self, session: AsyncSession, vh: str, at: datetime) -> list[str]:
        rows = (
            await session.execute(
                select(DienstRooster.user_id, DienstRooster.backup_id).where(
                    DienstRooster.veiligheidshuis == vh, DienstRooster.ends_at > at - timedelta(days=7),
                    DienstRooster.starts_at < at + timedelta(days=7),
                )
            )
        ).all()
        out: list[str] = []
        for r in rows:
            for u in (r.user_id, r.backup_id):
                if u and u not in out:
                    out.append(u)
        lead = self.config.vh(vh).teamleider
        if lead and lead not in out:
            out.append(lead)
        return out

    # ------------------------------------------------------------------------------------------ open

    async def open_request(
        self, session: AsyncSession, *, now: datetime, sender: str, role: str, room_id: str, event_id: str,
        person: PersonId, markering: Markering, term: rules.Term, vraag: str | None,
    ) -> AdviesAanvraag:
        vh_key = markering.veiligheidshuis
        cal = self.config.calendar
        deadline = term.deadline(now, cal)
        chain = self.config.chain_for(vh_key, now)
        req = AdviesAanvraag(
            veiligheidshuis=vh_key, bsn=markering.bsn, person_kind=person.kind, person_value=person.value,
            doelgroep=markering.doelgroep, vraag=vraag, state=rules.OPEN, requested_by=sender, room_id=room_id,
            event_id=event_id, oncall_room=self.config.vh(vh_key).room_id, term_text=term.text or "standaard",
            opened_at=now, deadline=deadline, chain=chain.to_json(), office_hours=cal.in_office_hours(now),
        )
        session.add(req)
        await session.flush()
        ref = rules.ref_text(req.id)
        steps = [("ping", now), *chain.plan(now, deadline), ("verlopen", deadline)]
        for seq, (kind, due) in enumerate(steps):
            session.add(AanvraagStap(aanvraag_id=req.id, seq=seq, kind=kind, due_at=due,
                                     done_at=now if kind == "ping" else None, late=False,
                                     outcome="gedaan" if kind == "ping" else None))
        duty = await self.on_duty(session, vh_key, now)
        mentions = (duty.user_id,) if duty else ()
        if req.oncall_room:
            txn = txn_id_for(source_of(req.id), "ping")
            req.ping_txn = txn
            await enqueue(session, room_id=req.oncall_room, txn_id=txn, now=now, case_data=True,
                          content=message_content(self._ping_reply(req, person, duty), mentions=mentions))
        vh = self.veiligheidshuizen.get(vh_key)
        if vh is not None:
            await self._mail(session, req, person, vh, now)
        await self.auditor.record(session, kind="aanvraag.geopend", at=now, actor=sender, role=role,
                                  person=person.value, details={"event": event_id, "aanvraag": ref, "vh": vh_key,
                                                                "termijn": term.text, "deadline": deadline.isoformat(),
                                                                "kantoortijd": req.office_hours})
        await record_fact(session, kind=AANVRAAG_GEOPEND, at=now, veiligheidshuis=vh_key)
        await self.auditor.record(session, kind="aanvraag.ping", at=now, actor=None, role=None, person=person.value,
                                  details={"aanvraag": ref, "dienst": duty.user_id if duty else None,
                                           "ruimte": req.oncall_room})
        return req

    def _ping_reply(self, req: AdviesAanvraag, person: PersonId, duty: DienstRooster | None) -> Reply:
        ref = rules.ref_text(req.id)
        doc = Doc().line(Bold(f"Advies op aanvraag {ref}"), f" voor {person.masked} ({req.doelgroep})")
        doc.line("Termijn: uiterlijk ", Bold(format_local(req.deadline)), " (Europe/Amsterdam).")
        if req.vraag:
            doc.line("Vraag: ", req.vraag)
        if duty:
            doc.line(f"Dienst: {duty.user_id}. Bevestig met ✅ of ", Code(f"!ack {ref}"), ", antwoord met ",
                     Code(f"!advies {ref} <tekst>"), ".")
        else:
            doc.line("Er is nu niemand ingeroosterd. Bevestig met ", Code(f"!ack {ref}"), ", antwoord met ",
                     Code(f"!advies {ref} <tekst>"), ".")
        return doc.build(case_data=True)

    async def _mail(self, session: AsyncSession, req: AdviesAanvraag, person: PersonId, vh: Veiligheidshuis,
                    now: datetime) -> None:
        """Queued in the general mail outbox, in the request's transaction (same relay, TLS, retries, audit)."""
        if self.mail is None:
            return
        ref = rules.ref_text(req.id)
        link = self.link(req.id, req.deadline)
        lines = [
            "Geachte collega,",
            "",
            f"ZSM vraagt uw veiligheidshuis om een advies (advies op aanvraag {ref}) over {person.masked},",
            f"doelgroep {req.doelgroep}. Het advies is nodig uiterlijk {format_local(req.deadline)} "
            "(Nederlandse tijd).",
        ]
        if req.vraag:
            lines += ["", f"Vraag: {req.vraag}"]
        lines += [""]
        if link:
            lines += ["Antwoorden kan via deze persoonlijke link (geldig tot de termijn verstrijkt):", link, ""]
        lines += [f"Of in de bereikbaarheidsruimte met: !advies {ref} <uw advies>", "",
                  "Komt er geen advies binnen de termijn, dan beslist ZSM zonder advies."]
        await self.mail.queue_text(
            session, kind="aanvraag", vh=vh, subject=MAIL_SUBJECT.format(ref=ref, deadline=format_local(req.deadline)),
            text="\n".join(lines), room_id=req.room_id, event_id=req.event_id,
            subject_hash=self.auditor.subject_of(person.value), now=now)

    # ------------------------------------------------------------------------------------------ acts

    async def get(self, session: AsyncSession, request_id: int, *, lock: bool = False) -> AdviesAanvraag | None:
        query = select(AdviesAanvraag).where(AdviesAanvraag.id == request_id)
        if lock:
            query = query.with_for_update()
        return (await session.execute(query)).scalar_one_or_none()

    async def acknowledge(self, session: AsyncSession, req: AdviesAanvraag, user: str, now: datetime,
                          via: str) -> str | None:
        """None when done, else the Dutch reason why not."""
        if not rules.can_move(req.state, rules.ACKNOWLEDGED):
            return rules.refusal(req.state, rules.ACKNOWLEDGED)
        req.state = rules.ACKNOWLEDGED
        req.acknowledged_by = user
        req.acknowledged_at = now
        await self.auditor.record(session, kind="aanvraag.bevestigd", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": rules.ref_text(req.id), "via": via})
        await record_fact(session, kind=AANVRAAG_BEVESTIGD, at=now, veiligheidshuis=req.veiligheidshuis,
                          duration_s=(now - req.opened_at).total_seconds())
        return None

    async def answer(self, session: AsyncSession, req: AdviesAanvraag, user: str, text: str, now: datetime,
                     via: str) -> str | None:
        if not rules.can_move(req.state, rules.ANSWERED):
            return rules.refusal(req.state, rules.ANSWERED)
        ref = rules.ref_text(req.id)
        req.state = rules.ANSWERED
        req.answered_by = user
        req.answered_at = now
        req.answer = text
        req.closed_at = now
        row = (
            await session.execute(
                select(MarkeringRow).where(MarkeringRow.bsn == req.bsn,
                                           MarkeringRow.veiligheidshuis == req.veiligheidshuis)
            )
        ).scalar_one_or_none()
        if row is not None:
            await upsert(session, [Markering(
                bsn=row.bsn, skn=row.skn, geboortedatum=row.geboortedatum, veiligheidshuis=row.veiligheidshuis,
                doelgroep=row.doelgroep, status=row.status, advies=text, geadviseerde_afdoening=None,
                advies_datum=now.astimezone(AMSTERDAM).date(), regisseur=row.regisseur,
                huishouden=row.huishouden, bron="advies op aanvraag",
            )], now)
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        doc = Doc().line(Bold(f"Advies ontvangen ({ref})"), f" van {vh.naam if vh else req.veiligheidshuis} over ",
                         person.masked, f", voor {req.requested_by}:")
        doc.line(text)
        doc.line(Italic(f"Gegeven door {user} op {format_local(now)}; !check toont het nu als nieuwste advies."))
        await enqueue(session, room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "antwoord"), now=now,
                      case_data=True, in_reply_to=req.event_id,
                      content=message_content(doc.build(case_data=True), in_reply_to=req.event_id,
                                              mentions=(req.requested_by,)))
        await self.auditor.record(session, kind="aanvraag.beantwoord", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": ref, "via": via, "te_laat": now > req.deadline})
        await record_fact(session, kind=AANVRAAG_BEANTWOORD, at=now, veiligheidshuis=req.veiligheidshuis,
                          outcome="te_laat" if now > req.deadline else "op_tijd",
                          duration_s=(now - req.opened_at).total_seconds())
        return None

    async def cancel(self, session: AsyncSession, req: AdviesAanvraag, user: str, role: str,
                     now: datetime) -> str | None:
        if not rules.can_move(req.state, rules.CANCELLED):
            return rules.refusal(req.state, rules.CANCELLED)
        req.state = rules.CANCELLED
        req.closed_at = now
        ref = rules.ref_text(req.id)
        if req.oncall_room:
            reply = Doc().line(f"Aanvraag {ref} is ingetrokken door ZSM; er is geen advies meer nodig.").build()
            await enqueue(session, room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), "ingetrokken"),
                          now=now, content=message_content(reply))
        await self.auditor.record(session, kind="aanvraag.ingetrokken", at=now, actor=user, role=role,
                                  person=req.person_value, details={"aanvraag": ref})
        return None

    # ------------------------------------------------------------------------------------------ steps

    async def process_due(self, now: datetime, *, batch: int = 500) -> int:
        """Carry out every step due at ``now`` exactly once; returns how many were claimed by this call."""
        claimed = 0
        last_id = 0
        while True:
            async with self.sessions() as s:
                rows = (
                    await s.execute(
                        select(AanvraagStap.id, AanvraagStap.aanvraag_id, AanvraagStap.kind, AanvraagStap.due_at,
                               AanvraagStap.seq)
                        .where(AanvraagStap.done_at.is_(None), AanvraagStap.due_at <= now, AanvraagStap.id > last_id)
                        .order_by(AanvraagStap.id).limit(batch)
                    )
                ).all()
                await s.rollback()
            if not rows:
                break
            last_id = rows[-1].id
            done_due: list[datetime] = []
            async with self.sessions() as s, s.begin():
                ids = sorted({r.aanvraag_id for r in rows})
                reqs = {
                    r.id: r for r in (await s.execute(select(AdviesAanvraag).where(AdviesAanvraag.id.in_(ids))))
                    .scalars().all()
                }
                # Claim the batch: only rows still undone are ours; a concurrent process gets the others.
                step_ids = [r.id for r in rows]
                cutoff = now - self.config.late_after
                mine: dict[int, bool] = {}
                for late_flag, cond in ((True, AanvraagStap.due_at < cutoff), (False, AanvraagStap.due_at >= cutoff)):
                    got = await s.execute(
                        update(AanvraagStap)
                        .where(AanvraagStap.id.in_(step_ids), AanvraagStap.done_at.is_(None), cond)
                        .values(done_at=now, late=late_flag).returning(AanvraagStap.id)
                        .execution_options(synchronize_session=False)
                    )
                    mine.update((i, late_flag) for i in got.scalars())
                outcomes: dict[str, list[int]] = {}
                duty_cache: dict[str, DienstRooster | None] = {}
                work = _Batch()
                for row in rows:
                    if row.id not in mine:
                        continue  # another process claimed it
                    claimed += 1
                    req = reqs.get(row.aanvraag_id)
                    outcome = ("vervallen" if req is None
                               else await self._carry_out(s, req, row.kind, row.seq, now, mine[row.id], duty_cache,
                                                          work))
                    outcomes.setdefault(outcome, []).append(row.id)
                    done_due.append(row.due_at)
                await work.flush(s, self.auditor, now)
                for outcome, done_ids in outcomes.items():
                    await s.execute(update(AanvraagStap).where(AanvraagStap.id.in_(done_ids)).values(outcome=outcome)
                                    .execution_options(synchronize_session=False))
            if self.keep_lags:  # measured after the commit: the action is durable from here on
                committed = _time.time()
                self.lags.extend(committed - due.timestamp() for due in done_due)
            self.on_enqueued()
            if len(rows) < batch:
                break
        return claimed

    async def _carry_out(self, s: AsyncSession, req: AdviesAanvraag, kind: str, seq: int, now: datetime,
                         late: bool, duty_cache: dict[str, DienstRooster | None], batch: _Batch) -> str:
        ref = rules.ref_text(req.id)
        if kind == "verlopen":
            if req.state in rules.EXPIRY_STOPS_AT:
                return "vervallen"
            return self._expire(req, now, late, batch)
        if req.state in rules.ESCALATION_STOPS_AT:
            return "vervallen"
        if not req.oncall_room:
            batch.audit(kind="aanvraag.escalatie", at=now, person=req.person_value,
                                      details={"aanvraag": ref, "stap": kind, "te_laat": late, "ruimte": None})
            batch.facts.append(Feit(ESCALATIE, now, req.veiligheidshuis, step=kind))
            return "geen ruimte"
        if req.veiligheidshuis not in duty_cache:
            duty_cache[req.veiligheidshuis] = await self.on_duty(s, req.veiligheidshuis, now)
        duty = duty_cache[req.veiligheidshuis]
        lead = self.config.vh(req.veiligheidshuis).teamleider
        deadline = format_local(req.deadline)
        room_mention = False
        if kind == "herinnering":
            mentions: tuple[str, ...] = (duty.user_id,) if duty else ()
            lead_in = "Herinnering"
        elif kind == "backup":
            target = (duty.backup_id or duty.user_id) if duty else None
            mentions = (target,) if target else ()
            lead_in = "Escalatie naar de achterwacht"
        elif kind == "teamleider" and lead:
            mentions = (lead,)
            lead_in = "Escalatie naar de teamleider"
        else:
            mentions = tuple(await self.members(s, req.veiligheidshuis, now))
            room_mention = True
            lead_in = "Escalatie naar iedereen in deze ruimte"
        doc = Doc().line(Bold(f"{lead_in}: aanvraag {ref}"), " is nog niet bevestigd. Termijn: uiterlijk ",
                         Bold(deadline), ".")
        if late:
            doc.line(Italic("Deze melding komt later dan gepland: de bot was tijdelijk niet beschikbaar."))
        doc.line("Bevestig met ✅ of ", Code(f"!ack {ref}"), "; antwoord met ", Code(f"!advies {ref} <tekst>"), ".")
        content = message_content(doc.build(), mentions=mentions)
        if room_mention:
            content["m.mentions"] = {**content.get("m.mentions", {}), "room": True}
        batch.enqueue(room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), f"stap{seq}"), now=now,
                      content=content)
        batch.audit(kind="aanvraag.escalatie", at=now, person=req.person_value,
                                  details={"aanvraag": ref, "stap": kind, "te_laat": late, "aan": list(mentions)})
        batch.facts.append(Feit(ESCALATIE, now, req.veiligheidshuis, step=kind))
        return "gedaan"

    def _expire(self, req: AdviesAanvraag, now: datetime, late: bool, batch: _Batch) -> str:
        ref = rules.ref_text(req.id)
        req.state = rules.EXPIRED
        req.closed_at = now
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        doc = Doc().line(Bold(f"Termijn verstreken ({ref})"), f": {vh.naam if vh else req.veiligheidshuis} heeft "
                         f"geen advies gegeven over {person.masked} vóór {format_local(req.deadline)}.")
        doc.line(Bold("Beslis deze zaak zonder het advies van het veiligheidshuis."),
                 " De aanvraag is gesloten als verlopen.")
        batch.enqueue(room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "verlopen"), now=now,
                      case_data=True, in_reply_to=req.event_id,
                      content=message_content(doc.build(case_data=True), in_reply_to=req.event_id,
                                              mentions=(req.requested_by,)))
        if req.oncall_room:
            note = Doc().line(f"Aanvraag {ref} is verlopen zonder advies; ZSM beslist zonder. "
                              "Een advies kan niet meer via deze aanvraag.").build()
            batch.enqueue(room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), "verlopen-dienst"),
                          now=now, content=message_content(note))
        batch.audit(kind="aanvraag.verlopen", at=now, person=req.person_value,
                                  details={"aanvraag": ref, "te_laat": late})
        batch.facts.append(Feit(AANVRAAG_VERLOPEN, now, req.veiligheidshuis))
        return "gedaan"

    # ------------------------------------------------------------------------------------------ reactions

    async def request_for_event(self, session: AsyncSession, event_id: str) -> AdviesAanvraag | None:
        """The request whose ping (or escalation) became this Matrix event."""
        txn = (
            await session.execute(select(OutgoingMessage.txn_id).where(OutgoingMessage.event_id == event_id))
        ).scalar_one_or_none()
        if txn is None:
            return None
        return (
            await session.execute(select(AdviesAanvraag).where(AdviesAanvraag.ping_txn == txn))
        ).scalar_one_or_none()


def open_steps_query(request_id: int) -> Any:
    return select(AanvraagStap).where(AanvraagStap.aanvraag_id == request_id).order_by(AanvraagStap.seq)
