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
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from config.aanvraag import with_veiligheidshuizen
from config.reference import load_veiligheidshuizen
from domain import aanvraag as rules
from domain.aanvraag import Schets
from domain.advies import Markering, is_minor
from domain.afdoeningen import Catalogus
from domain.afwijking import GEEN
from domain.clock import AMSTERDAM, format_local
from domain.errors import ConfigError, UserError
from domain.identifiers import PersonId
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen, mail_identifier
from services import messages
from services.base import Tx
from services.lookahead import Ahead, look_up_ahead
from services.mail_outbox import MailService, Withdrawn
from services.messages import NewMessage, message_content, txn_id_for
from services.publiek import PubliekService, direct_notice
from services.reply import Bold, Code, Doc, Italic, Reply
from storage import aanvraag_queries as q
from storage import outgoing
from storage.aanvraag_models import AdviesAanvraag, DienstRooster
from storage.audit import Auditor
from storage.db import SessionFactory, read_only
from storage.registry_queries import replace_advice
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
CANCEL_SUBJECT = "[ZSM] Advies op aanvraag {ref} ingetrokken - geen advies meer nodig"


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



def sketch_lines(req: AdviesAanvraag) -> list[str]:
    """The case sketch of a request as Dutch lines (ping, form, mail)."""
    out = []
    if req.zaaktype:
        out.append(f"Zaaktype: {rules.zaaktype_text(req.zaaktype)}")
    if req.feit:
        out.append(f"Feit: {req.feit}")
    if req.voorgenomen:
        out.append(f"Voorgenomen besluit: {req.voorgenomen}")
    return out


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
    identificatie: str = ""  # as the veiligheidshuis may receive it (ping, form), never shown in the ZSM room
    schets: tuple[str, ...] = ()  # the case sketch, one Dutch line each
    dienst: str | None = None  # who was on duty when it was opened (set by open)
    direct_to: str | None = None  # set by open when not every reader of the room may see the house and doelgroep

    @property
    def active(self) -> bool:
        return self.state in rules.ACTIVE


class MailNaIntrekking(StrEnum):
    """What became of the request's mail when it was cancelled (the reply says it, the audit records it)."""

    GEEN = "geen"  # no mail was queued (no mailbox, mail not configured)
    TEGENGEHOUDEN = "tegengehouden"  # it had not gone, and now never will
    BERICHT = "bericht"  # it went (or the relay has it): the house gets a mail that it no longer stands


@dataclass(frozen=True)
class Intrekking:
    view: AanvraagView
    oncall_told: bool
    mail: MailNaIntrekking


@dataclass
class AanvraagService:
    """Built by the runtime (``bot.aanvraag.build_service``) and reached by commands as ``Services.aanvraag``."""

    config: rules.AanvraagConfig
    auditor: Auditor
    veiligheidshuizen: Veiligheidshuizen
    sessions: SessionFactory
    registry: Registry | None = None
    mail: MailService | None = None
    catalogus: Catalogus | None = None
    roster_checked_on: date | None = None  # this process checked the roster that day (the txn id dedups restarts)
    on_enqueued: Callable[[], None] = field(default=lambda: None)
    publiek: PubliekService | None = None  # the room's audience: an answer goes direct when not all may read it
    lags: list[float] = field(default_factory=list)
    keep_lags: bool = False

    @property
    def mail_sending(self) -> bool | None:
        """Whether the request's mail goes out: ``None`` no mail at all, ``False`` it waits in the outbox while
        ``[mail] enabled`` is off. The reply must not claim a mail went out that only waits."""
        return None if self.mail is None else self.mail.settings.enabled

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
            identificatie=self.identificatie(req), schets=tuple(sketch_lines(req)),
        )

    async def list_direct_to(self, tx: Tx, room_id: str, asker: str) -> str | None:
        """``!aanvragen`` names each person's house: the asker's direct room when not every reader may see that."""
        if self.publiek is None:
            return None
        return await self.publiek.direct_for(tx, room_id, asker, ("veiligheidshuis",), None)

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

    def zaaktype(self, typed: str | None) -> str | None:
        """The typed case type (``type: hg``) as its code; refused in Dutch with the known codes."""
        if typed is None:
            return None
        code = typed.strip().lower()
        if code not in rules.ZAAKTYPEN:
            near = nearest(code, list(rules.ZAAKTYPEN))
            hint = f" Bedoelde u {' of '.join(near)}?" if near else ""
            known = ", ".join(rules.zaaktype_text(c) for c in rules.ZAAKTYPEN)
            raise UserError(f"Onbekend zaaktype '{code[:20]}'.{hint} Schrijf 'type: <code>' met een van: {known}.")
        return code

    async def ahead(self, person: PersonId) -> Ahead:
        """An outside registry asked before the transaction (``services.lookahead``)."""
        return {} if self.registry is None else await look_up_ahead(self.registry, [person])

    async def _eligible(self, tx: Tx, person: PersonId, vh: str | None,
                        typed: str | None) -> tuple[str, Markering | None]:
        """The one house whose prioritised doelgroep or case type this request falls under; refused in Dutch
        (naming the house and the doelgroep: ``open`` says less where not every reader may see that)."""
        if self.registry is None:
            raise UserError("Advies op aanvraag is in deze installatie niet beschikbaar.")
        markeringen = await self.registry.lookup(person, session=tx)
        if vh:
            markeringen = [m for m in markeringen if m.veiligheidshuis == vh]
            if not markeringen and not typed:
                raise UserError(f"{person.masked} is niet gemarkeerd door {vh}; advies op aanvraag kan dan alleen in "
                                "een zaaktype dat dit veiligheidshuis prioritair heeft gemaakt: geef 'type: <code>', "
                                "bijvoorbeeld type: hg.")
        elif not markeringen:
            raise UserError(f"{person.masked} is bij geen veiligheidshuis bekend. Geef het veiligheidshuis en het "
                            "zaaktype: 'vh: <sleutel> type: <code>', bijvoorbeeld vh: utrecht type: hg.")
        # A typed case type is checked also for a person eligible by doelgroep: the request is recorded under it.
        eligible: list[tuple[str, Markering | None]] = [
            (m.veiligheidshuis, m) for m in markeringen
            if (typed is None and self.config.vh(m.veiligheidshuis).prioritised(m.doelgroep))
            or self.config.vh(m.veiligheidshuis).prioritised_type(typed)]
        if not eligible and vh and not markeringen and self.config.vh(vh).prioritised_type(typed):
            eligible = [(vh, None)]  # an unmarked suspect in a case type this house prioritised
        if not eligible:
            key = vh or markeringen[0].veiligheidshuis
            agreed = self.config.vh(key)
            parts = []
            if markeringen and not agreed.prioritised(markeringen[0].doelgroep):
                parts.append(f"{person.masked} valt bij {key} onder doelgroep '{markeringen[0].doelgroep}'")
            if typed:
                parts.append(f"zaaktype {rules.zaaktype_text(typed)} is met {key} niet als prioritair afgesproken")
            offer = [*(f"doelgroep {d}" for d in agreed.doelgroepen),
                     *(f"type: {rules.zaaktype_text(t)}" for t in agreed.zaaktypen)]
            why = (f"prioritair afgesproken met {key}: {', '.join(offer)}" if offer
                   else f"met {key} is niets als prioritair afgesproken")
            raise UserError(f"Advies op aanvraag kan niet: {'; '.join(parts)}. {why[0].upper()}{why[1:]}. "
                            "Gebruik !check voor het bestaande advies.")
        if len(eligible) > 1:
            keys = ", ".join(k for k, _ in eligible)
            raise UserError(f"{person.masked} valt bij meer veiligheidshuizen onder een prioritaire afspraak "
                            f"({keys}). Kies er één met 'vh: <sleutel>'.")
        return eligible[0]

    async def open(
        self, tx: Tx, *, now: datetime, sender: str, role: str, room_id: str, event_id: str, person: PersonId,
        term_words: str, vraag: str | None, vh: str | None, schets: Schets,
    ) -> AanvraagView:
        """``!aanvraag``: for a person in a prioritised doelgroep of exactly one veiligheidshuis (or the one named),
        or, with ``type:``, in a case type that house prioritised (also when it has not marked the person); with no
        request for that person running there; refused in Dutch otherwise."""
        try:
            vh_key, markering = await self._eligible(tx, person, vh, schets.zaaktype)
        except UserError:
            await self._refuse_unseen(tx, room_id, sender, person)
            raise
        try:
            term = rules.parse_term(term_words) if term_words else self.config.term_for(vh_key)
        except rules.TermError as exc:
            raise UserError(str(exc)) from None
        bsn = markering.bsn if markering is not None else (person.value if person.kind == "bsn" else "")
        existing = await q.running_request_id(tx, bsn=bsn, person_value=person.value, veiligheidshuis=vh_key,
                                              states=rules.ACTIVE)
        if existing is not None:
            await self._refuse_unseen(tx, room_id, sender, person)
            raise UserError(f"Er loopt al een aanvraag voor {person.masked} bij {vh_key}: "
                            f"{rules.ref_text(existing)}. Typ !aanvragen om de stand te zien.")
        if vraag and len(vraag) > 1000:
            raise UserError("De vraag is te lang (maximaal 1000 tekens). Maak hem korter.")
        house = self.veiligheidshuizen.get(vh_key)
        if house is not None:  # refused now, in Dutch, when this house may not receive the typed identifier
            mail_identifier(house, person, markering.skn if markering else None)
        req = await self.open_request(tx, now=now, sender=sender, role=role, room_id=room_id, event_id=event_id,
                                      person=person, vh_key=vh_key, markering=markering, term=term, vraag=vraag,
                                      schets=schets)
        duty = await self.on_duty(tx, vh_key, now)
        direct_to = None
        if self.publiek is not None:  # the confirmation names the house and the doelgroep
            minor = is_minor(markering.geboortedatum, now.astimezone(AMSTERDAM).date()) if markering else None
            direct_to = await self.publiek.direct_for(tx, room_id, sender, ("veiligheidshuis", "doelgroep"), minor)
        return replace(self.view(req), dienst=duty.user_id if duty else None, direct_to=direct_to)

    async def _refuse_unseen(self, tx: Tx, room_id: str, sender: str, person: PersonId) -> None:
        """A refusal that names the house and the doelgroep is for a room whose every reader may see them; elsewhere
        one line that says where to look instead."""
        if self.publiek is not None and not await self.publiek.room_sees(
                tx, room_id, sender, ("veiligheidshuis", "doelgroep"), None):
            raise UserError(f"Advies op aanvraag voor {person.masked} kan zo niet; niet elk lid van deze room mag zien "
                            "waarom. !check toont u in een direct bericht waar de persoon bekend is; geef dan "
                            "'vh: <sleutel> type: <code>'.")

    async def open_request(
        self, session: Tx, *, now: datetime, sender: str, role: str, room_id: str, event_id: str,
        person: PersonId, vh_key: str, markering: Markering | None, term: rules.Term, vraag: str | None,
        schets: Schets,
    ) -> AdviesAanvraag:
        cal = self.config.calendar
        deadline = term.deadline(now, cal)
        chain = self.config.chain_for(vh_key, now)
        doelgroep = markering.doelgroep if markering is not None else (
            f"niet gemarkeerd; zaaktype {rules.ZAAKTYPEN.get(schets.zaaktype or '', '-')}")
        req = AdviesAanvraag(
            veiligheidshuis=vh_key, bsn=markering.bsn if markering is not None else (
                person.value if person.kind == "bsn" else ""),
            person_kind=person.kind, person_value=person.value,
            doelgroep=doelgroep[:255], vraag=vraag, zaaktype=schets.zaaktype, feit=schets.feit,
            voorgenomen=schets.voornemen, state=rules.AanvraagStatus.OPEN, requested_by=sender,
            room_id=room_id, event_id=event_id, oncall_room=self.config.vh(vh_key).room_id,
            term_text=term.text or "standaard", opened_at=now, deadline=deadline, chain=chain.to_json(),
            office_hours=cal.in_office_hours(now),
        )
        steps = sorted([*chain.plan(now, deadline), *rules.warning_plan(self.config.waarschuwingen, now, deadline)],
                       key=lambda step: step[1])
        await q.add_request(session, req, [("ping", now), *steps, ("verlopen", deadline)], now)
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
            await self._mail(session, req, person, vh, now, duty is None)
        await self.auditor.record(session, kind="aanvraag.geopend", at=now, actor=sender, role=role,
                                  person=person.value, details={"event": event_id, "aanvraag": ref, "vh": vh_key,
                                                                "termijn": term.text, "deadline": deadline.isoformat(),
                                                                "kantoortijd": req.office_hours,
                                                                "zaaktype": schets.zaaktype,
                                                                "gemarkeerd": markering is not None})
        await record_fact(session, kind=AANVRAAG_GEOPEND, at=now, veiligheidshuis=vh_key)
        await self.auditor.record(session, kind="aanvraag.ping", at=now, actor=None, role=None, person=person.value,
                                  details={"aanvraag": ref, "dienst": duty.user_id if duty else None,
                                           "ruimte": req.oncall_room})
        return req

    def identificatie(self, req: AdviesAanvraag) -> str:
        """The person as this veiligheidshuis may receive it (``identificatie``, domain.veiligheidshuizen): shown
        to the on-call person in the ping and the form, so they can look the person up; masked when the house is
        not in the reference data."""
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        if vh is None:
            return person.masked
        try:
            return mail_identifier(vh, person, None)
        except UserError:
            return person.masked

    def _ping_reply(self, req: AdviesAanvraag, person: PersonId, duty: DienstRooster | None) -> Reply:
        """For the on-call person: the identifier their house may receive and the case sketch, so they can answer
        without a ZSM lookup (they have none)."""
        ref = rules.ref_text(req.id)
        doc = Doc().line(Bold(f"Advies op aanvraag {ref}"), f" over {self.identificatie(req)} ({req.doelgroep})")
        doc.line("Termijn: uiterlijk ", Bold(format_local(req.deadline)), " (Europe/Amsterdam).")
        for line in sketch_lines(req):
            doc.line(line)
        if req.vraag:
            doc.line("Vraag: ", req.vraag)
        if duty:
            doc.line(f"Dienst: {duty.user_id}. Bevestig met ✅ of ", Code(f"!ack {ref}"), ", antwoord met ",
                     Code(f"!advies {ref} <code of geen> <tekst>"), ".")
        else:
            doc.line(Bold("Er is nu niemand ingeroosterd"), " voor de bereikbaarheidsdienst. Wie dit leest: bevestig "
                     "met ", Code(f"!ack {ref}"), ", antwoord met ", Code(f"!advies {ref} <code of geen> <tekst>"),
                     ", en vul het rooster met ", Code(f"!dienst {req.veiligheidshuis} <@gebruiker> <van> <tot>"), ".")
        return doc.build(case_data=True)

    async def _mail(self, session: Tx, req: AdviesAanvraag, person: PersonId, vh: Veiligheidshuis,
                    now: datetime, nobody_on_duty: bool) -> None:
        """Queued in the general mail outbox, in the request's transaction (same relay, TLS, retries, audit)."""
        if self.mail is None:
            return
        ref = rules.ref_text(req.id)
        link = self.link(req.id, req.deadline)
        lines = [
            "Geachte collega,",
            "",
            f"ZSM vraagt uw veiligheidshuis om een advies (advies op aanvraag {ref}) over {self.identificatie(req)},",
            f"doelgroep {req.doelgroep}. Het advies is nodig uiterlijk {format_local(req.deadline)} "
            "(Nederlandse tijd).",
        ]
        sketch = sketch_lines(req)
        if sketch:
            lines += ["", *sketch]
        if req.vraag:
            lines += ["", f"Vraag: {req.vraag}"]
        if nobody_on_duty:
            lines += ["", "Let op: er staat nu niemand in het rooster van uw bereikbaarheidsdienst. Neem deze "
                      "aanvraag op via de link hieronder of in de bereikbaarheidsruimte."]
        lines += [""]
        if link:
            lines += ["Antwoorden kan via deze persoonlijke link (geldig tot de termijn verstrijkt):", link, ""]
        lines += [f"Of in de bereikbaarheidsruimte met: !advies {ref} <code van de afdoening of geen> <uw advies>",
                  "",
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

    def geadviseerd(self, typed: str, ref: str = "A12") -> str:
        """The coded afdoening an answer carries: a catalogue code (or alias), or the explicit ``geen``. Without it
        a later ``!besluit`` could not tell whether it follows the advice (issue 14, pilot report L1120-1124)."""
        key = typed.strip().lower()
        if key == GEEN:
            return GEEN
        found = self.catalogus.get(key) if self.catalogus is not None else None
        if found is None:
            near = self.catalogus.nearest(key) if self.catalogus is not None else []
            hint = f" Bedoelde u {' of '.join(near)}?" if near else ""
            raise UserError(f"Begin het advies met de code van de geadviseerde afdoening of met 'geen'.{hint} "
                            f"Bijvoorbeeld: !advies {ref} vs voorwaardelijk sepot, plan van aanpak loopt.")
        return found.code

    def afdoening_text(self, code: str) -> str:
        if code == GEEN:
            return "geen specifieke afdoening"
        found = self.catalogus.get(code) if self.catalogus is not None else None
        return f"{found.label} ({code})" if found else code

    def afdoening_choices(self) -> list[tuple[str, str]]:
        """(code, label) for the answer form, "geen" last."""
        items = [(a.code, a.label) for a in self.catalogus.all()] if self.catalogus is not None else []
        return [*items, (GEEN, "geen specifieke afdoening")]

    async def answer_ref(self, tx: Tx, ref_text: str, user: str, afdoening: str, text: str,
                         now: datetime) -> AanvraagView:
        """``!advies``: by someone on the roster; a coded afdoening (or 'geen') and a reason (10 characters at
        least)."""
        req = await self.find(tx, ref_text)
        await self._member_or_refuse(tx, req, user)
        code = self.geadviseerd(afdoening, rules.ref_text(req.id))
        if len(text) < 10:
            raise UserError(f"Het advies is te kort; geef na de code de reden, bijvoorbeeld: !advies "
                            f"{rules.ref_text(req.id)} {code} plan van aanpak loopt, hulpverlening gestart.")
        await self.answer(tx, req, user, text, now, via="commando", geadviseerd=code)
        return self.view(req)

    async def cancel_ref(self, tx: Tx, ref_text: str, user: str, role: str, now: datetime) -> Intrekking:
        return await self.cancel(tx, await self.find(tx, ref_text), user, role, now)

    async def acknowledge(self, session: Tx, req: AdviesAanvraag, user: str, now: datetime, via: str) -> None:
        """Refused in Dutch (``UserError``) when the request can no longer be acknowledged."""
        move(req, rules.AanvraagStatus.ACKNOWLEDGED)
        req.acknowledged_by = user
        req.acknowledged_at = now
        await self.auditor.record(session, kind="aanvraag.bevestigd", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": rules.ref_text(req.id), "via": via})
        await record_fact(session, kind=AANVRAAG_BEVESTIGD, at=now, veiligheidshuis=req.veiligheidshuis,
                          duration_s=(now - req.opened_at).total_seconds())

    async def answer(self, session: Tx, req: AdviesAanvraag, user: str, text: str, now: datetime, via: str,
                     geadviseerd: str) -> None:
        """The answer replaces the marking's advice, with its coded afdoening (or the explicit ``geen``)."""
        move(req, rules.AanvraagStatus.ANSWERED)
        ref = rules.ref_text(req.id)
        req.answered_by = user
        req.answered_at = now
        req.answer = text
        req.advies_afdoening = geadviseerd  # the deviation rule reads it when no marking carries the advice
        req.closed_at = now
        await self._close_mail(session, req, now)
        recorded, born = await self._record_advice(session, req, text, geadviseerd, now)
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        doc = Doc().line(Bold(f"Advies ontvangen ({ref})"), f" van {vh.naam if vh else req.veiligheidshuis} over ",
                         person.masked, f", voor {req.requested_by}:")
        doc.line("Geadviseerde afdoening: ", Bold(self.afdoening_text(geadviseerd)), ".")
        doc.line(text)
        doc.line(Italic(f"Gegeven door {user} op {format_local(now)}; " + (
            "!check toont het nu als nieuwste advies." if recorded else
            "er is geen markering van dit veiligheidshuis om bij te werken; !besluit weegt dit advies wel mee.")))
        await self._deliver_answer(session, req, doc.build(case_data=True), person,
                                   born, now)
        await self.auditor.record(session, kind="aanvraag.beantwoord", at=now, actor=user, person=req.person_value,
                                  details={"aanvraag": ref, "via": via, "te_laat": now > req.deadline,
                                           "afdoening": geadviseerd})
        await record_fact(session, kind=AANVRAAG_BEANTWOORD, at=now, veiligheidshuis=req.veiligheidshuis,
                          outcome="te_laat" if now > req.deadline else "op_tijd",
                          duration_s=(now - req.opened_at).total_seconds())

    async def _record_advice(self, session: Tx, req: AdviesAanvraag, text: str, geadviseerd: str,
                             now: datetime) -> tuple[bool, date | None]:
        """Where the markings live decides where the answer is written (a registry database shared by several
        locations, or the bot's own); an outside registry (http) is not written by the bot."""
        fields: dict[str, Any] = {"bsn": req.bsn, "veiligheidshuis": req.veiligheidshuis, "advies": text,
                                  "afdoening": geadviseerd, "datum": now.astimezone(AMSTERDAM).date(), "now": now}
        if self.registry is None:  # no registry wired: the markings are in the bot's own database
            return await replace_advice(session, **fields)
        return await self.registry.record_advice(session, **fields)

    async def _deliver_answer(self, session: Tx, req: AdviesAanvraag, reply: Reply, person: PersonId,
                              geboortedatum: date | None, now: datetime) -> None:
        """The answer in the room that asked, as far as every reader there may see an advice (``services.publiek``);
        else a notice there and the answer in the requester's direct room."""
        msg = NewMessage(room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "antwoord"), case_data=True,
                         in_reply_to=req.event_id, subject=self.subject_of(req),
                         content=message_content(reply, in_reply_to=req.event_id, mentions=(req.requested_by,)))
        if self.publiek is None:
            await messages.queue(session, msg, now)
            return
        minor = is_minor(geboortedatum, now.astimezone(AMSTERDAM).date()) if geboortedatum is not None else None
        await self.publiek.deliver(session, msg, reply, asker=req.requested_by, masked=person.masked,
                                   what=f"Advies {rules.ref_text(req.id)}", needed=("veiligheidshuis", "advies"),
                                   minor=minor, now=now)

    async def cancel(self, session: Tx, req: AdviesAanvraag, user: str, role: str, now: datetime) -> Intrekking:
        """Everyone the request reached hears that it no longer stands: the on-call room, and the house's mailbox
        when its request mail went (or is with the relay now). A mail that has not gone is stopped instead, so the
        house never receives a request that was already withdrawn."""
        move(req, rules.AanvraagStatus.CANCELLED)
        req.closed_at = now
        ref = rules.ref_text(req.id)
        if req.oncall_room:
            reply = Doc().line(f"Aanvraag {ref} is ingetrokken door ZSM; er is geen advies meer nodig.").build()
            await messages.queue(session, NewMessage(
                room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), "ingetrokken"),
                subject=self.subject_of(req), content=message_content(reply)), now)
        withdrawn = await self._close_mail(session, req, now)
        mail = MailNaIntrekking.GEEN
        if withdrawn.gone_to:
            vh = self.veiligheidshuizen.get(req.veiligheidshuis)
            if vh is not None and self.mail is not None:
                await self._mail_cancellation(session, req, vh, now)
                mail = MailNaIntrekking.BERICHT
        elif withdrawn.stopped:
            mail = MailNaIntrekking.TEGENGEHOUDEN
        await self.auditor.record(session, kind="aanvraag.ingetrokken", at=now, actor=user, role=role,
                                  person=req.person_value, details={"aanvraag": ref, "mail": mail.value})
        return Intrekking(self.view(req), oncall_told=bool(req.oncall_room), mail=mail)

    async def _close_mail(self, session: Tx, req: AdviesAanvraag, now: datetime) -> Withdrawn:
        """A request that closes (answered, cancelled, expired) takes back its mail if it has not gone: after a
        relay outage the house would otherwise get a request that is already settled, with a link that no longer
        takes an answer."""
        if self.mail is None:
            return Withdrawn(0, frozenset())
        return await self.mail.withdraw_queued(session, kind="aanvraag", vh_key=req.veiligheidshuis,
                                               event_id=req.event_id, now=now)

    async def _mail_cancellation(self, session: Tx, req: AdviesAanvraag, vh: Veiligheidshuis, now: datetime) -> None:
        """The house's mailbox had the request; this says it no longer stands. It names the request by its number
        and the date it was sent, never the person: the mailbox needs nothing more to find it."""
        assert self.mail is not None
        ref = rules.ref_text(req.id)
        lines = [
            "Geachte collega,",
            "",
            f"ZSM heeft de adviesaanvraag {ref} van {format_local(req.opened_at)} (Nederlandse tijd) ingetrokken. "
            "Er is geen advies meer nodig; u hoeft niets meer te doen.",
            "",
            "De antwoordlink uit de aanvraagmail neemt geen advies meer aan.",
        ]
        await self.mail.queue_text(
            session, kind="intrekking", vh=vh, subject=CANCEL_SUBJECT.format(ref=ref), text="\n".join(lines),
            room_id=req.room_id, event_id=req.event_id, subject_hash=self.subject_of(req), now=now)

    # ------------------------------------------------------------------------------------------ answer form

    async def form_view(self, request_id: int) -> AanvraagView | None:
        """The request for the answer form, in a read-only transaction of its own."""
        async with self.sessions() as s:
            req = await q.get_request(s, request_id)
            view = self.view(req) if req is not None else None
            await s.commit()  # nothing written; a rollback would expire the row
        return view

    async def answer_from_form(self, request_id: int, naam: str, afdoening: str, text: str,
                               now: datetime) -> AanvraagView | None:
        """The answer form's post, in a transaction of its own: None when the request does not exist, refused in
        Dutch (``UserError``) when it can no longer be answered."""
        async with self.sessions() as s, s.begin():
            req = await q.get_request(s, request_id, lock=True)
            if req is None:
                return None
            code = self.geadviseerd(afdoening, rules.ref_text(req.id))
            await self.answer(s, req, f"webformulier: {naam}", text, now, via="web", geadviseerd=code)
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

    # ------------------------------------------------------------------------------------------ roster check

    async def roster_check(self, now: datetime) -> int:
        """On a working day, from ``roostercontrole`` (default 14:00) until closing time: every house that agreed
        advice on request and has an on-call room hears, once that day, which part of the coming closed hours
        (tonight, or the whole weekend after a Friday) nobody is on its roster. Domestic violence peaks when the
        houses are closed (PROCESS.md). Returns how many warnings were queued."""
        at = self.config.roostercontrole
        cal = self.config.calendar
        local = now.astimezone(AMSTERDAM)
        if at is None or not cal.is_working_day(local.date()) or not at <= local.time() < cal.closes \
                or self.roster_checked_on == local.date():
            return 0
        window = rules.closed_window(local.date(), cal)
        queued = 0
        async with self.sessions() as s, s.begin():
            for key, agreed in sorted(self.config.per_vh.items()):
                if not (agreed.doelgroepen or agreed.zaaktypen) or not agreed.room_id:
                    continue
                gaps = rules.roster_gaps(window, await q.shifts_between(s, key, *window))
                if not gaps:
                    continue
                doc = Doc().line(Bold("Rooster bereikbaarheidsdienst"), f" {key}: niemand ingeroosterd ",
                                 "; ".join(f"van {format_local(a)} tot {format_local(b)}" for a, b in gaps), ".")
                doc.line("ZSM kan dan om advies op aanvraag vragen. Vul het rooster met ",
                         Code(f"!dienst {key} <@gebruiker> <van> <tot>"), ".")
                msg = await messages.queue(s, NewMessage(
                    room_id=agreed.room_id, txn_id=txn_id_for(f"roostercontrole:{key}", local.date().isoformat()),
                    content=message_content(doc.build())), now)
                if msg is None:
                    continue  # already warned today
                await self.auditor.record(s, kind="rooster.gat", at=now, actor=None, role=None,
                                          details={"vh": key, "gaten": len(gaps)})
                queued += 1
        self.roster_checked_on = local.date()
        if queued:
            self.on_enqueued()
        return queued

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
            return await self._expire(s, req, now, late, batch)
        if kind == "waarschuwing":
            if req.state in rules.EXPIRY_STOPS_AT:
                return "vervallen"
            return await self._warn(s, req, seq, now, late, batch)
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
        doc.line("Bevestig met ✅ of ", Code(f"!ack {ref}"), "; antwoord met ",
                 Code(f"!advies {ref} <code of geen> <tekst>"), ".")
        content = message_content(doc.build(), mentions=mentions)
        if room_mention:
            content["m.mentions"] = {**content.get("m.mentions", {}), "room": True}
        batch.queue(NewMessage(room_id=req.oncall_room, txn_id=txn_id_for(source_of(req.id), f"stap{seq}"),
                               content=content, subject=self.subject_of(req)))
        batch.audit(kind="aanvraag.escalatie", at=now, person=req.person_value,
                    details={"aanvraag": ref, "stap": kind, "te_laat": late, "aan": list(mentions)})
        batch.facts.append(Feit(ESCALATIE, now, req.veiligheidshuis, step=kind))
        return "gedaan"

    async def _to_requester(self, s: Tx, req: AdviesAanvraag, msg: NewMessage, reply: Reply, what: str,
                            now: datetime, batch: _Batch) -> None:
        """A notice in the ZSM room about the request (it names the house and the masked person): in the room only
        as far as every reader may see that the person is known there (``services.publiek``), else a short
        notice there and the text in the requester's direct room."""
        if self.publiek is None:
            batch.queue(msg)
            return
        row = await q.marking_of(s, req.bsn, req.veiligheidshuis) if req.bsn else None
        minor = (is_minor(row.geboortedatum, now.astimezone(AMSTERDAM).date())
                 if row is not None and row.geboortedatum is not None else None)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        for routed in await self.publiek.route(
                s, msg, reply, asker=req.requested_by, notice=direct_notice(what, person.masked, req.requested_by),
                needed=("veiligheidshuis",), minor=minor, now=now):
            batch.queue(routed)

    async def _warn(self, s: Tx, req: AdviesAanvraag, seq: int, now: datetime, late: bool, batch: _Batch) -> str:
        """Before the term ends, the requester and the KPC (in the ZSM room, in the request's thread) hear that no
        advice has come yet, so the case is decided on time with or without it."""
        ref = rules.ref_text(req.id)
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        state = (f"bevestigd door {req.acknowledged_by}" if req.state == rules.AanvraagStatus.ACKNOWLEDGED
                 else "nog niet bevestigd door de bereikbaarheidsdienst")
        doc = Doc().line(Bold(f"Termijn loopt af ({ref})"), f": nog geen advies van "
                         f"{vh.naam if vh else req.veiligheidshuis} over {person.masked}; de termijn eindigt ",
                         Bold(format_local(req.deadline)), f" ({rules.describe_left(req.deadline, now)}). "
                         f"De aanvraag is {state}.")
        doc.line("KPC: bewaak de termijn; komt er geen advies, dan beslist ZSM op tijd zonder.")
        if late:
            doc.line(Italic("Deze melding komt later dan gepland: de bot was tijdelijk niet beschikbaar."))
        reply = doc.build(case_data=True)
        await self._to_requester(s, req, NewMessage(
            room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), f"stap{seq}"), case_data=True,
            in_reply_to=req.event_id, subject=self.subject_of(req),
            content=message_content(reply, in_reply_to=req.event_id, mentions=(req.requested_by,))),
            reply, f"Waarschuwing over aanvraag {ref}", now, batch)
        batch.audit(kind="aanvraag.waarschuwing", at=now, person=req.person_value,
                    details={"aanvraag": ref, "te_laat": late})
        return "gedaan"

    async def _expire(self, s: Tx, req: AdviesAanvraag, now: datetime, late: bool, batch: _Batch) -> str:
        ref = rules.ref_text(req.id)
        req.state = rules.AanvraagStatus.EXPIRED
        req.closed_at = now
        await self._close_mail(s, req, now)
        vh = self.veiligheidshuizen.get(req.veiligheidshuis)
        person = PersonId(req.person_kind, req.person_value)  # type: ignore[arg-type]
        subject = self.subject_of(req)
        doc = Doc().line(Bold(f"Termijn verstreken ({ref})"), f": {vh.naam if vh else req.veiligheidshuis} heeft "
                         f"geen advies gegeven over {person.masked} vóór {format_local(req.deadline)}.")
        doc.line(Bold("Beslis deze zaak zonder het advies van het veiligheidshuis."),
                 " De aanvraag is gesloten als verlopen.")
        reply = doc.build(case_data=True)
        await self._to_requester(s, req, NewMessage(
            room_id=req.room_id, txn_id=txn_id_for(source_of(req.id), "verlopen"), case_data=True,
            in_reply_to=req.event_id, subject=subject,
            content=message_content(reply, in_reply_to=req.event_id, mentions=(req.requested_by,))),
            reply, f"Verlopen aanvraag {ref}", now, batch)
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
