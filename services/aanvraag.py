"""Advies op aanvraag, the use case: open, acknowledge, answer, cancel, and ``process_due`` for the steps.

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
from typing import TYPE_CHECKING, Any

from config.aanvraag import with_veiligheidshuizen
from config.reference import load_veiligheidshuizen
from domain import aanvraag as rules
from domain.advies import Markering
from domain.clock import AMSTERDAM, format_local
from domain.errors import ConfigError, UserError
from domain.identifiers import PersonId
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen
from services import messages
from services.base import Tx
from services.mail_outbox import MailService
from services.messages import NewMessage, message_content, txn_id_for
from services.reply import Bold, Code, Doc, Italic, Reply
from storage import aanvraag_queries as q
from storage import outgoing
from storage.aanvraag_models import AdviesAanvraag, DienstRooster
from storage.audit import Auditor
from storage.db import SessionFactory, read_only
from storage.registry_queries import upsert
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

if TYPE_CHECKING:
    from config.settings import Settings
    from integrations.registry import Registry

log = logging.getLogger(__name__)

MAIL_SUBJECT = "[ZSM] Advies op aanvraag {ref} - antwoord uiterlijk {deadline}"


class _Batch:
    """Messages and audit records of one batch of steps, written together: one lookup of existing transaction
    ids (``messages.queue_many``), one lock of the audit chain."""

    def __init__(self) -> None:
        self.messages: list[NewMessage] = []
        self.audits: list[dict[str, Any]] = []
        self.facts: list[Feit] = []

    def queue(self, msg: NewMessage) -> None:
        self.messages.append(msg)

    def audit(self, **kwargs: Any) -> None:
        self.audits.append(kwargs)

    async def flush(self, session: Tx, auditor: Auditor, now: datetime) -> None:
        await messages.queue_many(session, self.messages, now)
        if self.audits:
            await auditor.record_many(session, [{"at": now, **a} for a in self.audits])
        await record_facts(session, self.facts)


def source_of(request_id: int) -> str:
    return f"aanvraag:{request_id}"



def move(req: AdviesAanvraag, target: rules.AanvraagStatus) -> None:
    """A request changes state only along the lifecycle of ``domain.aanvraag``; otherwise a Dutch refusal."""
    if not rules.can_move(req.state, target):
        raise UserError(rules.refusal(req.state, target))
    req.state = target


@dataclass(frozen=True)
class AanvraagView:
    """A request as the adapters show it (chat reply, answer form), without the database row."""

    id: int
    ref: str
    veiligheidshuis: str
    vh_naam: str
    person: PersonId
    doelgroep: str
    vraag: str | None
    state: rules.AanvraagStatus
    deadline: datetime
    acknowledged_by: str | None
    has_oncall_room: bool

    @property
    def active(self) -> bool:
        return self.state in rules.ACTIVE


@dataclass
class AanvraagService:
    """Built by the runtime (``bot.aanvraag.build_service``) and reached by commands as ``Services.aanvraag``."""

    config: rules.AanvraagConfig
    auditor: Auditor
    veiligheidshuizen: Veiligheidshuizen
    sessions: SessionFactory
    registry: Registry | None = None
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

    async def on_duty(self, session: Tx, vh: str, at: datetime) -> DienstRooster | None:
        return await q.on_duty(session, vh, at)

    async def is_member(self, session: Tx, vh: str, user: str) -> bool:
        if self.config.vh(vh).teamleider == user:
            return True
        return await q.in_roster(session, vh, user)

    async def members(self, session: Tx, vh: str, at: datetime) -> list[str]:
        out: list[str] = []
        for r in await q.people_around(session, vh, at, timedelta(days=7)):
            for u in (r.user_id, r.backup_id):
                if u and u not in out:
                    out.append(u)
        lead = self.config.vh(vh).teamleider
        if lead and lead not in out:
            out.append(lead)
        return out

    # ------------------------------------------------------------------------------------------ views

    def subject_of(self, req: AdviesAanvraag) -> str:
        """The keyed hash of the request's person: every message about the request carries it (sepot 01)."""
        return self.auditor.subject_of(req.person_value)

    def view(self, req: AdviesAanvraag) -> AanvraagView:
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        return AanvraagView(
            id=req.id, ref=rules.ref_text(req.id), veiligheidshuis=req.veiligheidshuis,
            vh_naam=vh.naam if vh else req.veiligheidshuis,
            person=PersonId(req.person_kind, req.person_value),  # type: ignore[arg-type]
            doelgroep=req.doelgroep, vraag=req.vraag, state=rules.AanvraagStatus(req.state), deadline=req.deadline,
            acknowledged_by=req.acknowledged_by, has_oncall_room=bool(req.oncall_room),
        )

    async def active(self, tx: Tx, *, limit: int = 50) -> list[AanvraagView]:
        """The open and acknowledged requests, most urgent first."""
        return [self.view(r) for r in await q.requests_in_states(tx, rules.ACTIVE, limit=limit)]

    async def find(self, tx: Tx, ref_text: str, *, lock: bool = True) -> AdviesAanvraag:
        """The request named by its reference (``A12``); refused in Dutch when there is none."""
        request_id = rules.parse_ref(ref_text)
        if request_id is None:
            raise UserError(f"'{ref_text[:20]}' is geen aanvraagnummer. Gebruik het nummer uit de melding, "
                            "zoals A12.")
        req = await q.get_request(tx, request_id, lock=lock)
        if req is None:
            raise UserError(f"Aanvraag {rules.ref_text(request_id)} bestaat niet. Typ !aanvragen voor de open "
                            "aanvragen.")
        return req

    async def get(self, session: Tx, request_id: int, *, lock: bool = False) -> AdviesAanvraag | None:
        return await q.get_request(session, request_id, lock=lock)

    # ------------------------------------------------------------------------------------------ open

    async def open(
        self, tx: Tx, *, now: datetime, sender: str, role: str, room_id: str, event_id: str, person: PersonId,
        term_words: str, vraag: str | None, vh: str | None,
    ) -> AanvraagView:
        """``!aanvraag``: only for a person in a prioritised doelgroep of exactly one veiligheidshuis (or the one
        named), with no request for that person running there; refused in Dutch otherwise."""
        if self.registry is None:
            raise UserError("Advies op aanvraag is in deze installatie niet beschikbaar.")
        markeringen = await self.registry.lookup(person, session=tx)
        if vh:
            markeringen = [m for m in markeringen if m.veiligheidshuis == vh]
            if not markeringen:
                raise UserError(f"{person.masked} is niet gemarkeerd door {vh}; advies op aanvraag is alleen "
                                "mogelijk voor personen in een prioritaire doelgroep van dat veiligheidshuis.")
        elif not markeringen:
            raise UserError(f"{person.masked} is bij geen veiligheidshuis bekend. Advies op aanvraag is alleen "
                            "mogelijk voor personen in een prioritaire doelgroep; geef anders 'vh: <sleutel>' als "
                            "u het veiligheidshuis weet.")
        eligible = [m for m in markeringen if self.config.vh(m.veiligheidshuis).prioritised(m.doelgroep)]
        if not eligible:
            m = markeringen[0]
            agreed = self.config.vh(m.veiligheidshuis).doelgroepen
            why = (f"met {m.veiligheidshuis} zijn als prioritair afgesproken: {', '.join(agreed)}" if agreed
                   else f"met {m.veiligheidshuis} zijn geen prioritaire doelgroepen afgesproken")
            raise UserError(f"Advies op aanvraag kan niet: {person.masked} valt bij {m.veiligheidshuis} onder "
                            f"doelgroep '{m.doelgroep}', en {why}. Gebruik !check voor het bestaande advies.")
        if len(eligible) > 1:
            keys = ", ".join(m.veiligheidshuis for m in eligible)
            raise UserError(f"{person.masked} valt bij meer veiligheidshuizen onder een prioritaire doelgroep "
                            f"({keys}). Kies er één met 'vh: <sleutel>'.")
        markering = eligible[0]
        try:
            term = rules.parse_term(term_words) if term_words else self.config.term_for(markering.veiligheidshuis)
        except rules.TermError as exc:
            raise UserError(str(exc)) from None
        existing = await q.running_request_id(tx, bsn=markering.bsn, veiligheidshuis=markering.veiligheidshuis,
                                              states=rules.ACTIVE)
        if existing is not None:
            raise UserError(f"Er loopt al een aanvraag voor {person.masked} bij {markering.veiligheidshuis}: "
                            f"{rules.ref_text(existing)}. Typ !aanvragen om de stand te zien.")
        if vraag and len(vraag) > 1000:
            raise UserError("De vraag is te lang (maximaal 1000 tekens). Maak hem korter.")
        req = await self.open_request(tx, now=now, sender=sender, role=role, room_id=room_id, event_id=event_id,
                                      person=person, markering=markering, term=term, vraag=vraag)
        return self.view(req)

    async def open_request(
        self, session: Tx, *, now: datetime, sender: str, role: str, room_id: str, event_id: str,
        person: PersonId, markering: Markering, term: rules.Term, vraag: str | None,
    ) -> AdviesAanvraag:
        vh_key = markering.veiligheidshuis
        cal = self.config.calendar
        deadline = term.deadline(now, cal)
        chain = self.config.chain_for(vh_key, now)
        req = AdviesAanvraag(
            veiligheidshuis=vh_key, bsn=markering.bsn, person_kind=person.kind, person_value=person.value,
            doelgroep=markering.doelgroep, vraag=vraag, state=rules.AanvraagStatus.OPEN, requested_by=sender,
            room_id=room_id, event_id=event_id, oncall_room=self.config.vh(vh_key).room_id,
            term_text=term.text or "standaard", opened_at=now, deadline=deadline, chain=chain.to_json(),
            office_hours=cal.in_office_hours(now),
        )
        await q.add_request(session, req, [("ping", now), *chain.plan(now, deadline), ("verlopen", deadline)], now)
        ref = rules.ref_text(req.id)
        duty = await self.on_duty(session, vh_key, now)
        mentions = (duty.user_id,) if duty else ()
        if req.oncall_room:
            txn = txn_id_for(source_of(req.id), "ping")
            req.ping_txn = txn
            await messages.queue(session, NewMessage(
                room_id=req.oncall_room, txn_id=txn, case_data=True, subject=self.subject_of(req),
                content=message_content(self._ping_reply(req, person, duty), mentions=mentions)), now)
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

    async def _mail(self, session: Tx, req: AdviesAanvraag, person: PersonId, vh: Veiligheidshuis,
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

    async def _member_or_refuse(self, tx: Tx, req: AdviesAanvraag, user: str) -> None:
        if not await self.is_member(tx, req.veiligheidshuis, user):
            raise UserError(f"U staat niet in het rooster van de bereikbaarheidsdienst van {req.veiligheidshuis}; "
                            "alleen de dienst, de achterwacht of de teamleider mag deze aanvraag bevestigen of "
                            "beantwoorden.")

    async def acknowledge_ref(self, tx: Tx, ref_text: str, user: str, now: datetime) -> AanvraagView:
        """``!ack``: by someone on the veiligheidshuis's roster (or its teamleider)."""
        req = await self.find(tx, ref_text)
        await self._member_or_refuse(tx, req, user)
        await self.acknowledge(tx, req, user, now, via="commando")
        return self.view(req)

    async def answer_ref(self, tx: Tx, ref_text: str, user: str, text: str, now: datetime) -> AanvraagView:
        """``!advies``: by someone on the roster; the advice must say something (10 characters at least)."""
        req = await self.find(tx, ref_text)
        await self._member_or_refuse(tx, req, user)
        if len(text) < 10:
            raise UserError("Het advies is te kort; geef een concreet advies met de reden.")
        await self.answer(tx, req, user, text, now, via="commando")
        return self.view(req)

    async def cancel_ref(self, tx: Tx, ref_text: str, user: str, role: str, now: datetime) -> AanvraagView:
        req = await self.find(tx, ref_text)
        await self.cancel(tx, req, user, role, now)
        return self.view(req)

    async def acknowledge(self, session: Tx, req: AdviesAanvraag, user: str, now: datetime, via: str) -> None:
        """Refused in Dutch (``UserError``) when the request can no longer be acknowledged."""
        move(req, rules.AanvraagStatus.ACKNOWLEDGED)
        req.acknowledged_by = user
        req.acknowledged_at = now
        await self.auditor.record(session, kind="aanvraag.bevestigd", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": rules.ref_text(req.id), "via": via})
        await record_fact(session, kind=AANVRAAG_BEVESTIGD, at=now, veiligheidshuis=req.veiligheidshuis,
                          duration_s=(now - req.opened_at).total_seconds())

    async def answer(self, session: Tx, req: AdviesAanvraag, user: str, text: str, now: datetime, via: str) -> None:
        move(req, rules.AanvraagStatus.ANSWERED)
        ref = rules.ref_text(req.id)
        req.answered_by = user
        req.answered_at = now
        req.answer = text
        req.closed_at = now
        row = await q.marking_of(session, req.bsn, req.veiligheidshuis)
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
        await messages.queue(session, NewMessage(
            room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "antwoord"), case_data=True,
            in_reply_to=req.event_id, subject=self.subject_of(req),
            content=message_content(doc.build(case_data=True), in_reply_to=req.event_id,
                                    mentions=(req.requested_by,))), now)
        await self.auditor.record(session, kind="aanvraag.beantwoord", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": ref, "via": via, "te_laat": now > req.deadline})
        await record_fact(session, kind=AANVRAAG_BEANTWOORD, at=now, veiligheidshuis=req.veiligheidshuis,
                          outcome="te_laat" if now > req.deadline else "op_tijd",
                          duration_s=(now - req.opened_at).total_seconds())

    async def cancel(self, session: Tx, req: AdviesAanvraag, user: str, role: str, now: datetime) -> None:
        move(req, rules.AanvraagStatus.CANCELLED)
        req.closed_at = now
        ref = rules.ref_text(req.id)
        if req.oncall_room:
            reply = Doc().line(f"Aanvraag {ref} is ingetrokken door ZSM; er is geen advies meer nodig.").build()
            await messages.queue(session, NewMessage(
                room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), "ingetrokken"),
                subject=self.subject_of(req), content=message_content(reply)), now)
        await self.auditor.record(session, kind="aanvraag.ingetrokken", at=now, actor=user, role=role,
                                  person=req.person_value, details={"aanvraag": ref})

    # ------------------------------------------------------------------------------------------ answer form

    async def form_view(self, request_id: int) -> AanvraagView | None:
        """The request for the answer form, in a read-only transaction of its own."""
        async with self.sessions() as s:
            req = await q.get_request(s, request_id)
            view = self.view(req) if req is not None else None
            await s.commit()  # nothing written; a rollback would expire the row
        return view

    async def answer_from_form(self, request_id: int, naam: str, text: str, now: datetime) -> AanvraagView | None:
        """The answer form's post, in a transaction of its own: None when the request does not exist, refused in
        Dutch (``UserError``) when it can no longer be answered."""
        async with self.sessions() as s, s.begin():
            req = await q.get_request(s, request_id, lock=True)
            if req is None:
                return None
            await self.answer(s, req, f"webformulier: {naam}", text, now, via="web")
            view = self.view(req)
        self.on_enqueued()
        return view

    # ------------------------------------------------------------------------------------------ reactions

    async def acknowledge_by_reaction(self, event_id: str, room_id: str, sender: str, now: datetime) -> str | None:
        """A ✅ on the ping (in the on-call room) acknowledges as ``!ack`` does. Returns the Dutch outcome, or None
        when the reaction is not on one of our pings in that room."""
        async with self.sessions() as s, s.begin():
            req = await self.request_for_event(s, event_id)
            if req is None or req.oncall_room != room_id:
                return None
            ref = rules.ref_text(req.id)
            if not await self.is_member(s, req.veiligheidshuis, sender):
                await self.auditor.record(s, kind="aanvraag.bevestiging_geweigerd", at=now, actor=sender,
                                          details={"aanvraag": ref, "via": "reactie"})
                return (f"{sender} staat niet in het rooster van {req.veiligheidshuis}; bevestiging van {ref} "
                        "genegeerd.")
            try:
                await self.acknowledge(s, req, sender, now, via="reactie")
            except UserError as exc:
                return exc.message
        self.on_enqueued()
        return f"Aanvraag {ref} bevestigd door {sender}."

    async def request_for_event(self, session: Tx, event_id: str) -> AdviesAanvraag | None:
        """The request whose ping became this Matrix event."""
        txn = await outgoing.txn_id_of_event(session, event_id)
        if txn is None:
            return None
        return await q.request_by_ping_txn(session, txn)

    # ------------------------------------------------------------------------------------------ steps

    async def process_due(self, now: datetime, *, batch: int = 500) -> int:
        """Carry out every step due at ``now`` exactly once; returns how many were claimed by this call."""
        claimed = 0
        last_id = 0
        while True:
            async with read_only(self.sessions) as s:  # the tick's probe: never holds or waits for the write lock
                rows = await q.due_steps(s, now, after_id=last_id, limit=batch)
            if not rows:
                break
            last_id = rows[-1].id
            done_due: list[datetime] = []
            async with self.sessions() as s, s.begin():
                reqs = await q.requests_by_id(s, (r.aanvraag_id for r in rows))
                # Claim the batch: only rows still undone are ours; a concurrent process gets the others.
                mine = await q.claim_steps(s, [r.id for r in rows], now, now - self.config.late_after)
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
                    await q.set_step_outcome(s, done_ids, outcome)
            if self.keep_lags:  # measured after the commit: the action is durable from here on
                committed = _time.time()
                self.lags.extend(committed - due.timestamp() for due in done_due)
            self.on_enqueued()
            if len(rows) < batch:
                break
        return claimed

    async def _carry_out(self, s: Tx, req: AdviesAanvraag, kind: str, seq: int, now: datetime,
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
        batch.queue(NewMessage(room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), f"stap{seq}"),
                               content=content, subject=self.subject_of(req)))
        batch.audit(kind="aanvraag.escalatie", at=now, person=req.person_value,
                    details={"aanvraag": ref, "stap": kind, "te_laat": late, "aan": list(mentions)})
        batch.facts.append(Feit(ESCALATIE, now, req.veiligheidshuis, step=kind))
        return "gedaan"

    def _expire(self, req: AdviesAanvraag, now: datetime, late: bool, batch: _Batch) -> str:
        ref = rules.ref_text(req.id)
        req.state = rules.AanvraagStatus.EXPIRED
        req.closed_at = now
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        subject = self.subject_of(req)
        doc = Doc().line(Bold(f"Termijn verstreken ({ref})"), f": {vh.naam if vh else req.veiligheidshuis} heeft "
                         f"geen advies gegeven over {person.masked} vóór {format_local(req.deadline)}.")
        doc.line(Bold("Beslis deze zaak zonder het advies van het veiligheidshuis."),
                 " De aanvraag is gesloten als verlopen.")
        batch.queue(NewMessage(room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "verlopen"), case_data=True,
                               in_reply_to=req.event_id, subject=subject,
                               content=message_content(doc.build(case_data=True), in_reply_to=req.event_id,
                                                       mentions=(req.requested_by,))))
        if req.oncall_room:
            note = Doc().line(f"Aanvraag {ref} is verlopen zonder advies; ZSM beslist zonder. "
                              "Een advies kan niet meer via deze aanvraag.").build()
            batch.queue(NewMessage(room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), "verlopen-dienst"),
                                   subject=subject, content=message_content(note)))
        batch.audit(kind="aanvraag.verlopen", at=now, person=req.person_value,
                    details={"aanvraag": ref, "te_laat": late})
        batch.facts.append(Feit(AANVRAAG_VERLOPEN, now, req.veiligheidshuis))
        return "gedaan"


# ---------------------------------------------------------------------------------------------- check-config


def load_config(settings: Settings, veiligheidshuizen: Veiligheidshuizen) -> rules.AanvraagConfig:
    """The ``[aanvraag]`` section with the per-veiligheidshuis extras of the reference data."""
    return with_veiligheidshuizen(settings.aanvraag, [(vh.key, vh.extra) for vh in veiligheidshuizen.all()])


def config_notes(settings: Settings) -> tuple[list[str], list[str]]:
    """Problems and notes for ``zsm-bot check-config`` about ``[aanvraag]``."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        vhs = load_veiligheidshuizen(settings.veiligheidshuizen_path)
        cfg = load_config(settings, vhs)
    except ConfigError as exc:
        return [str(exc)], notes
    for key, vh in sorted(cfg.per_vh.items()):
        if vhs.get(key) is None:
            problems.append(f"aanvraag.vh.{key}: onbekend veiligheidshuis")
        if vh.doelgroepen and not vh.room_id:
            notes.append(f"aanvraag.vh.{key}: geen room voor de bereikbaarheidsdienst; alleen de mail gaat uit")
    if not cfg.link_key:
        notes.append("aanvraag.link_sleutel niet gezet: geen antwoordformulier via de website; zet "
                     "ZSM_BOT_AANVRAAG_LINK_SLEUTEL")
    elif len(cfg.link_key) < 32:
        problems.append("aanvraag.link_sleutel is te kort: gebruik minstens 32 willekeurige tekens")
    return problems, notes
