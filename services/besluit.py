"""The decision use case (``!besluit``): record the OvJ's afdoening and queue the terugkoppeling in the same
transaction; replace an earlier decision on the same case (a correction), undo one within the window, or, for
technisch sepot 01, remove what the bot holds on the case.

The feedback rules are ``domain.afdoeningen.feedback_for``; this service gathers the facts (registry, referrals,
earlier decisions), applies the lifecycles of ``domain.lifecycles``, writes the rows through
``storage.besluit_queries``, and keeps the audit trail and the figures in step. It returns what happened; the
command renders the Dutch reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.aanvraag import AanvraagStatus
from domain.advies import Freshness, freshness, is_minor
from domain.afdoeningen import Afdoening, Catalogus, Kennis, advies_uitkomst, feedback_for
from domain.afwijking import GEEN, Verhouding, weeg
from domain.clock import format_local, local
from domain.errors import UserError
from domain.identifiers import PersonId
from domain.lifecycles import BesluitStatus, may_have_gone
from domain.matrix_ids import direct_target
from domain.veiligheidshuizen import Veiligheidshuizen, mail_identifier
from integrations.registry import Registry, RegistryUnavailable
from services.base import Caller, Tx
from services.lookahead import Ahead, look_up_ahead
from services.mail_outbox import MailService, withdraw
from services.publiek import PubliekService
from storage import aanvraag_queries, werklijst_queries
from storage import besluit_queries as q
from storage.audit import Auditor
from storage.besluit_models import BesluitRow, OutboxMail
from storage.purge import remove_person
from storage.redaction import mark_case
from storage.statistiek_models import BESLUIT_BEKEND, Feit, record_facts

# The confirmation tells whether and where the person is known (the houses fed back, or none): dat-informatie.
CONFIRMATION_FIELDS = frozenset({"veiligheidshuis"})
# "followed" or "deviated from" the advice discloses the advised afdoening as well.
RELATION_FIELDS = frozenset({"geadviseerde_afdoening"})
DEVIATION_UNSEEN = ("Dit wijkt af van een actueel advies van een veiligheidshuis; niet elk lid van deze room mag "
                    "zien welk (!check toont het u in een direct bericht). Voeg een motivering toe: 'motivering: "
                    "<reden van afwijken>'.")


@dataclass(frozen=True)
class BesluitVraag:
    """A decision as the officer typed it, parsed."""

    person: PersonId
    afdoening: Afdoening
    reclassering: bool
    mondeling: bool
    zaak: str  # "" when none was given
    motivering: str | None


@dataclass(frozen=True)
class GeplandeMail:
    ref: str
    correctie: bool
    vh_naam: str
    concept: bool  # strict (hit-no-hit) profile: waits for !outbox bevestig


@dataclass(frozen=True)
class BesluitVastgelegd:
    vraag: BesluitVraag
    vervangt: bool  # an earlier active decision on the case was replaced
    verhouding: Verhouding  # the decision against the current advice (domain.afwijking)
    vervallen: int  # mails of earlier decisions cancelled before they went
    uitleg: str  # why this terugkoppeling (Dutch, one line)
    mondeling_aan: tuple[str, ...]  # names of the houses told by word of mouth (no mail)
    mails: tuple[GeplandeMail, ...]
    herroep_seconden: int
    zonder_mailbox: tuple[str, ...]  # recipient keys with no configured house: feed back by word of mouth
    direct_to: str | None = None  # not every reader of the room may see it: the confirmation goes to this room


@dataclass(frozen=True)
class ZaakVerwijderd:
    """Technisch sepot 01: nothing sent, the case removed."""

    person: PersonId
    besluiten: int
    mails: int
    berichten: int  # earlier bot messages queued for redaction
    # per house that may hold mail about the person (it went, or the relay has it): the kinds it got, in the order
    # they were queued (terugkoppeling, correctie, aanmelding, aanvraag); the house is asked to delete them
    al_verzonden: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class BesluitIngetrokken:
    person: PersonId
    mails: int


def besluit_figures(afd: Afdoening, kennis: list[Kennis]) -> list[list[object]]:
    """[veiligheidshuis, gevolgd|afgeweken|vrijgesteld|geen_advies, minderjarig] per house that knows the person.
    Kept in the decision's audit record, so a later replacement or undo can take back exactly what this decision
    counted."""
    per_vh: dict[str, Kennis] = {}
    for k in kennis:
        first = per_vh.get(k.veiligheidshuis)
        if first is None or (not (first.advies_actueel and first.geadviseerd) and k.advies_actueel and k.geadviseerd):
            per_vh[k.veiligheidshuis] = k
    minor = {vh: any(k.minderjarig for k in kennis if k.veiligheidshuis == vh) for vh in per_vh}
    return [[vh, advies_uitkomst(afd, k), minor[vh]] for vh, k in per_vh.items()]


def _facts(figures: list[list[object]], at: datetime, aantal: int) -> list[Feit]:
    return [Feit(BESLUIT_BEKEND, at, str(vh), minderjarig=bool(minor), outcome=str(uitkomst), aantal=aantal)
            for vh, uitkomst, minor in figures]


class BesluitService:
    def __init__(self, *, auditor: Auditor, catalogus: Catalogus, veiligheidshuizen: Veiligheidshuizen,
                 registry: Registry, mail: MailService, publiek: PubliekService | None = None) -> None:
        self.auditor = auditor
        self.publiek = publiek
        self.catalogus = catalogus
        self.veiligheidshuizen = veiligheidshuizen
        self.registry = registry
        self.mail = mail

    def afdoening(self, typed: str) -> Afdoening:
        """The catalogue entry for a typed code or alias; refused with the nearest codes."""
        found = self.catalogus.get(typed)
        if found is None:
            cat = self.catalogus
            near = cat.nearest(typed)
            hint = f" Bedoelde u: {', '.join(near)}?" if near else ""
            raise UserError(f"Onbekende afdoening '{typed[:20]}'.{hint} Bekende codes: {', '.join(cat.codes())}.")
        return found

    async def ahead(self, vraag: BesluitVraag) -> Ahead:
        """An outside registry asked before the transaction (``services.lookahead``): the decision's houses and,
        for a sepot 01, the identifiers to remove come from this one answer."""
        return await look_up_ahead(self.registry, [vraag.person])

    async def _kennis(self, tx: Tx, person: PersonId, now: datetime) -> tuple[list[Kennis], str | None]:
        try:
            markings = await self.registry.lookup(person, session=tx)
        except RegistryUnavailable:
            raise UserError("Het register is nu niet bereikbaar; er is niets vastgelegd. Probeer het zo opnieuw.") \
                from None
        today = local(now).date()
        out = []
        for m in markings:
            advised = None
            if m.geadviseerde_afdoening:
                hit = self.catalogus.get(m.geadviseerde_afdoening)
                advised = hit.code if hit else m.geadviseerde_afdoening.strip().lower()
            out.append(Kennis(m.veiligheidshuis, is_minor(m.geboortedatum, today), advised,
                              freshness(m.advies_datum, today) is not Freshness.NOT_CURRENT))
        skn = next((m.skn for m in markings if m.skn), None)
        # An advice given on request for a suspect the house had not marked lives on the request only: it counts as
        # that house's advice (deviation duty, feedback to the house that advised, figures). Age unknown: adult.
        marked = {m.veiligheidshuis for m in markings}
        values = [person.value, *(v for m in markings for v in (m.bsn, m.skn) if v)]
        for vh, code, at in await aanvraag_queries.answered_advice(tx, values, AanvraagStatus.ANSWERED):
            if vh in marked:
                continue  # the answer replaced that marking's advice already
            marked.add(vh)
            advised = code if code == GEEN else (hit.code if (hit := self.catalogus.get(code)) else code)
            out.append(Kennis(vh, False, advised, freshness(local(at).date(), today) is not Freshness.NOT_CURRENT))
        return out, skn

    @staticmethod
    def _verhouding_voor(afd: Afdoening, kennis: list[Kennis], vh_key: str) -> str:
        """The relation to this house's own advice, for its mail: "gevolgd", "afgeweken" or "" (nothing to say)."""
        v = weeg(afd.code, afd.technisch, afd.selectie, [k for k in kennis if k.veiligheidshuis == vh_key])
        return v.verhouding.value if v.verhouding in (Verhouding.GEVOLGD, Verhouding.AFGEWEKEN) else ""

    async def _take_back_figures(self, tx: Tx, subject: str, rows: list[BesluitRow]) -> None:
        """A replaced, undone or removed decision no longer counts: a -1 fact at the decision's own time per +1 it
        wrote, so the figures count each decision once, as its final version, in the period it was first taken."""
        active = {b.event_id: b for b in rows if b.status == BesluitStatus.ACTIEF}
        if not active:
            return
        facts: list[Feit] = []
        for details in await q.decision_audit_details(tx, subject):
            row = active.get(str(details.get("event")))
            if row is not None and isinstance(details.get("statistiek"), list):
                facts += _facts(details["statistiek"], row.decided_at, -1)
        await record_facts(tx, facts)

    async def decide(self, tx: Tx, act: Caller, vraag: BesluitVraag) -> BesluitVastgelegd | ZaakVerwijderd:
        person, afd, zaak = vraag.person, vraag.afdoening, vraag.zaak
        subject = self.auditor.subject_of(person.value)
        kennis, skn = await self._kennis(tx, person, act.now)
        referred = await q.referred_houses(tx, subject)
        outcome = feedback_for(afd, kennis, aangemeld_bij=referred, motivering=vraag.motivering)
        if outcome.weigering:
            minor = any(k.minderjarig for k in kennis) if kennis else None
            if self.publiek is not None and not await self.publiek.room_sees(
                    tx, act.room_id, act.sender, CONFIRMATION_FIELDS | RELATION_FIELDS, minor):
                raise UserError(DEVIATION_UNSEEN)  # the refusal would name the house and its advice
            message = outcome.weigering
            for k in kennis:
                if (known := self.veiligheidshuizen.get(k.veiligheidshuis)) is not None:
                    message = message.replace(f"advies van {k.veiligheidshuis} ", f"advies van {known.naam} ")
            raise UserError(message)
        earlier = await q.decisions_on_case(tx, subject, zaak)
        earlier_mails = await q.mails_of_decisions(tx, [b.id for b in earlier])
        await self._take_back_figures(tx, subject, earlier)
        if outcome.verwijderen:
            return await self._remove_case(tx, act, person, earlier, earlier_mails)

        # A mail the relay may have taken already counts as gone: the new one to that house is then a correction,
        # and it is not counted as "not sent": it may be in the mailbox already.
        withdrawn = withdraw(earlier_mails, act.now)
        sent_to, cancelled = withdrawn.gone_to, withdrawn.stopped
        active = [b for b in earlier if b.status == BesluitStatus.ACTIEF]
        for b in active:
            b.status = BesluitStatus.VERVANGEN
        row = await q.add_decision(tx, BesluitRow(
            subject=subject, zaak=zaak, afdoening=afd.code, reclassering=vraag.reclassering,
            mondeling=vraag.mondeling, motivering=vraag.motivering, advies_verhouding=outcome.verhouding.value,
            status=BesluitStatus.ACTIEF,
            decided_by=act.sender, role=act.role, decided_at=act.now, event_id=act.event_id, room_id=act.room_id,
        ))
        figures = besluit_figures(afd, kennis)
        await act.audit("besluit.vastgelegd", person=person.value, afdoening=afd.code,
                        terugkoppeling=outcome.inhoud, ontvangers=list(outcome.ontvangers), mondeling=vraag.mondeling,
                        correctie=bool(active), statistiek=figures, advies=outcome.verhouding.value)
        await record_facts(tx, _facts(figures, act.now, 1))

        missing = tuple(k for k in outcome.ontvangers if self.veiligheidshuizen.get(k) is None)
        targets = [vh for k in outcome.ontvangers if (vh := self.veiligheidshuizen.get(k)) is not None]
        mails: list[GeplandeMail] = []
        if targets and not vraag.mondeling:
            for vh in targets:
                kind = "correctie" if vh.key in sent_to else "terugkoppeling"
                concept = vh.profiel == "hit-no-hit"
                queued = await self.mail.queue(
                    tx, kind=kind, vh=vh, room_id=act.room_id, event_id=act.event_id, subject_hash=subject,
                    now=act.now, besluit_id=row.id, concept=concept, values={
                        "persoon": mail_identifier(vh, person, skn), "zaak": zaak,
                        "datum": format_local(act.now), "afdoening": afd.label, "reclassering": vraag.reclassering,
                        "minderjarig": any(k.minderjarig for k in kennis),  # the report comes from the RvdK
                        "motivering": vraag.motivering if outcome.inhoud == "volledig" else None,
                        "advies": self._verhouding_voor(afd, kennis, vh.key) if outcome.inhoud == "volledig" else "",
                        "beperkt": outcome.inhoud == "beperkt",
                    })
                mails.append(GeplandeMail(queued.ref, kind == "correctie", vh.naam, concept))
        minor = any(k.minderjarig for k in kennis) if kennis else None
        needed = CONFIRMATION_FIELDS | (
            RELATION_FIELDS if outcome.verhouding in (Verhouding.GEVOLGD, Verhouding.AFGEWEKEN) else frozenset())
        return BesluitVastgelegd(
            vraag=vraag, vervangt=bool(active), verhouding=outcome.verhouding, vervallen=cancelled,
            uitleg=outcome.uitleg,
            mondeling_aan=tuple(vh.naam for vh in targets) if vraag.mondeling else (), mails=tuple(mails),
            herroep_seconden=self.mail.settings.herroep_seconden, zonder_mailbox=missing,
            direct_to=await self._audience(tx, act, person, needed, minor))

    async def _audience(self, tx: Tx, act: Caller, person: PersonId, needed: frozenset[str],
                        minor: bool | None) -> str | None:
        """Where the confirmation goes: the room when every reader may see what it says (``services.publiek``),
        else the decider's direct room (returned), and the room gets a notice with the masked id only."""
        if self.publiek is None:
            return None
        if await self.publiek.room_sees(tx, act.room_id, act.sender, needed, minor):
            for group in (minor,) if minor is not None else (False, True):
                await self.publiek.shown(tx, act.room_id, group, needed, act.now)
            return None
        await act.audit("bericht.direct", person=person.value, aan=act.sender, velden=sorted(needed))
        return direct_target(act.sender)

    async def _remove_case(self, tx: Tx, act: Caller, person: PersonId, earlier: list[BesluitRow],
                           mails: list[OutboxMail]) -> ZaakVerwijderd:
        """Technisch sepot 01: nothing is sent, and what the bot holds on this case goes, including its own earlier
        messages in this room about the person (the decision, the mail notices, !check replies): they are queued for
        redaction here, in the command's transaction, and the bot's redaction loop removes them from the room."""
        besluit_ids = [b.id for b in earlier]
        values, subjects = await self._identifiers(tx, person)
        # Every house that may hold mail about the person is named, not only those with this case's feedback: an
        # advice request carried the identifier and the case sketch, a referral the full BSN. A mail the relay has
        # at this moment counts too: the house may have it. A withdrawal carries no personal data.
        held: dict[str, list[str]] = {}
        for m in await q.mails_about(tx, subjects):  # this case's mails among them (the same keyed hash)
            if m.kind != "intrekking" and may_have_gone(m.status, m.claimed_until, act.now):
                kinds = held.setdefault(m.veiligheidshuis, [])
                if m.kind not in kinds:
                    kinds.append(m.kind)
        already = tuple((vh, tuple(held[vh])) for vh in sorted(held))
        await q.delete_case(tx, besluit_ids, [m.id for m in mails])
        for subject in subjects:
            await werklijst_queries.delete_arrivals(tx, subject)
        redact = await mark_case(tx, room_id=act.room_id, subject=self.auditor.subject_of(person.value),
                                 event_ids=[b.event_id for b in earlier if b.room_id == act.room_id], also=subjects)
        removed = await remove_person(tx, subjects=subjects, values=values)
        await self.auditor.record(tx, kind="zaak.verwijderd", at=act.now, actor=act.sender, role=act.role,
                                  details={"reden": "technisch sepot 01", "berichten": redact,
                                           "verwijderd": removed})
        return ZaakVerwijderd(person, len(besluit_ids), len(mails), redact, already)

    async def _identifiers(self, tx: Tx, person: PersonId) -> tuple[list[str], list[str]]:
        """Sepot 01: every identifier the person is known by here (the typed one, and the BSN and SKN of their
        markings) and their keyed hashes, so what was stored or said under any of them goes."""
        try:
            markings = await self.registry.lookup(person, session=tx)
        except RegistryUnavailable:
            markings = []
        values = list(dict.fromkeys([person.value, *(v for m in markings for v in (m.bsn, m.skn) if v)]))
        return values, [self.auditor.subject_of(v) for v in values]

    async def undo(self, tx: Tx, act: Caller, person: PersonId, zaak: str) -> BesluitIngetrokken:
        """Withdraw the active decision on the case, within the undo window and only while no mail went."""
        subject = self.auditor.subject_of(person.value)
        row = await q.active_decision(tx, subject, zaak)
        if row is None:
            raise UserError(f"Er is geen besluit voor {person.masked}" + (f" (zaak {zaak})" if zaak else "")
                            + " om ongedaan te maken.")
        window = self.mail.settings.herroep_seconden
        mails = await q.mails_of_decisions(tx, [row.id])
        if any(may_have_gone(m.status, m.claimed_until, act.now) for m in mails):
            raise UserError("De terugkoppeling is al verzonden of gaat nu uit; ongedaan maken kan niet meer. Geef het "
                            "juiste besluit opnieuw met !besluit: dan gaat er een correctie.")
        if act.now - row.decided_at > timedelta(seconds=window):
            raise UserError(f"Ongedaan maken kan alleen binnen {window} seconden. Geef het juiste besluit opnieuw met "
                            "!besluit: dan gaat er een correctie.")
        await self._take_back_figures(tx, subject, [row])
        row.status = BesluitStatus.INGETROKKEN
        withdraw(mails, act.now)
        await act.audit("besluit.ingetrokken", person=person.value, besluit=row.id)
        return BesluitIngetrokken(person, len(mails))
