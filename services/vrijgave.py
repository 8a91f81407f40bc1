"""Release per case under the ``hit-no-hit`` covenant profile: ask (``!vraag-vrijgave``), release
(``!vrijgeven``) or refuse (``!weigeren``), and the caller's view of a person with the releases valid in the room.

PRIVACY.md: the veiligheidshuis's responsible person decides, case by case, whether the advice is released to the
OM; a release holds for the ZSM room that asked, for a limited time. The person is known here only by the
auditor's keyed hash. Pings and notices are composed by the chat adapter from the plain results returned here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from config.check import CheckSettings
from domain.clock import format_local
from domain.errors import UserError
from domain.identifiers import PersonId
from domain.raadpleging import parse_id, purpose_zaak, require_vh_role
from domain.roles import DECIDING_ROLES
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen
from domain.zicht import Zicht
from domain.zichtbaarheid import GEEN, RolVelden
from integrations.registry.base import Registry
from services.base import Caller, Tx
from services.lookahead import Ahead, look_up_ahead
from services.publiek import PubliekService
from storage.audit import Auditor
from storage.vrijgave_models import Vrijgave
from storage.vrijgave_queries import add_request, open_request, request_by_id, valid_releases

MAX_TEXT = 500


def ref_text(row_id: int) -> str:
    return f"V{row_id}"


def parse_ref(text: str) -> int | None:
    m = re.fullmatch(r"#?v-?(\d{1,12})", text.strip().lower())
    return int(m.group(1)) if m else None


def toelichting(rest: str) -> str | None:
    """The free text after the number, as typed (trimmed); too long is refused."""
    rest = rest.strip()
    if len(rest) > MAX_TEXT:
        raise UserError(f"De toelichting is te lang (maximaal {MAX_TEXT} tekens).")
    return rest or None


@dataclass(frozen=True)
class Verzoek:
    """One veiligheidshuis asked: ``nieuw`` a request just opened, else one that was already waiting."""

    vh: Veiligheidshuis
    row_id: int
    nieuw: bool

    @property
    def ref(self) -> str:
        return ref_text(self.row_id)


@dataclass(frozen=True)
class VraagResult:
    person: PersonId
    zaak: str | None
    reden: str | None
    verzoeken: tuple[Verzoek, ...]


@dataclass(frozen=True)
class Antwoord:
    """A request answered: what the room that asked is told, and where."""

    row_id: int
    ref: str
    masked: str
    room_id: str
    requested_by: str
    toelichting: str | None
    expires_at: datetime | None = None
    dagen: int = 0
    direct: bool = False  # not every reader of that room may see it: the notice goes to the requester directly


@dataclass
class VrijgaveService:
    settings: CheckSettings
    registry: Registry
    veiligheidshuizen: Veiligheidshuizen
    auditor: Auditor
    velden: Mapping[str, RolVelden]
    regio: str | None
    dagen: int
    publiek: PubliekService | None = None  # the room's audience

    async def _direct(self, tx: Tx, row: Vrijgave) -> bool:
        """A release or refusal names the veiligheidshuis and its advice about the person: the asking room hears
        it only when every reader there may see both (``services.publiek``; the group is not known here)."""
        return self.publiek is not None and not await self.publiek.room_sees(
            tx, row.room_id, row.requested_by, ("veiligheidshuis", "advies"), None)

    async def zicht(self, tx: Tx, caller: Caller, person: PersonId, houses: Iterable[str] | None = None) -> Zicht:
        """The caller's view of one person: role fields, own region and the releases valid in this room.

        Releases go to the OM (the deciding roles) in the room that asked; other roles never see released advice.
        ``houses``: the veiligheidshuizen that know the person; a release only changes what is shown for a
        hit-no-hit house among them, so without one the release lookup (a statement per !check) is skipped."""
        vrijgaven: dict[str, str] = {}
        if caller.role in DECIDING_ROLES and (houses is None or self._any_strict(houses)):
            subject = self.auditor.subject_of(person.value)
            for row in await valid_releases(tx, subject, caller.room_id, caller.now):
                vrijgaven[row.veiligheidshuis] = (f"vrijgegeven door {row.decided_by} op "
                                                  f"{format_local(row.decided_at)} ({ref_text(row.id)})"
                                                  if row.decided_at else "vrijgegeven")
        return Zicht(self.velden.get(caller.role, GEEN), regio=self.regio, vrijgaven=vrijgaven)

    def _any_strict(self, houses: Iterable[str]) -> bool:
        for key in houses:
            vh = self.veiligheidshuizen.get(key)
            if vh is None or vh.profiel != "generiek":
                return True
        return False

    def _asked(self, role: str, word: str, zaak_typed: str | None,
               reden_typed: str | None) -> tuple[PersonId, str | None, str | None]:
        """Whose advice is asked for, for what purpose and why; refused in Dutch when any of it does not hold."""
        require_vh_role(role, "vraag-vrijgave")
        person = parse_id(word, self.settings.identificatie)
        zaak = purpose_zaak(zaak_typed, self.settings.zaak_verplicht)
        reden = (reden_typed or "").strip() or None
        if reden and len(reden) > MAX_TEXT:
            raise UserError(f"De reden is te lang (maximaal {MAX_TEXT} tekens).")
        return person, zaak, reden

    async def ahead(self, role: str, word: str, zaak_typed: str | None, reden_typed: str | None) -> Ahead:
        """An outside registry asked before the transaction (``services.lookahead``), under ``vraag``'s own
        preconditions."""
        person, _, _ = self._asked(role, word, zaak_typed, reden_typed)
        return await look_up_ahead(self.registry, [person])

    async def vraag(self, tx: Tx, caller: Caller, word: str, zaak_typed: str | None,
                    reden_typed: str | None) -> VraagResult:
        person, zaak, reden = self._asked(caller.role, word, zaak_typed, reden_typed)
        markeringen = await self.registry.lookup(person, session=tx)
        vhs = self.veiligheidshuizen
        strict = [vh for vh in (vhs.get(m.veiligheidshuis) for m in markeringen) if vh and vh.profiel == "hit-no-hit"]
        if not markeringen:
            raise UserError("Deze persoon is niet bekend bij een veiligheidshuis; er is niets om vrij te geven.")
        if not strict:
            raise UserError("Geen vrijgave nodig: de veiligheidshuizen die deze persoon kennen tonen hun advies al "
                            "(convenant generiek). Gebruik !check.")
        subject = self.auditor.subject_of(person.value)
        verzoeken: list[Verzoek] = []
        for vh in dict.fromkeys(strict):
            waiting = await open_request(tx, subject, vh.key, caller.room_id)
            if waiting is not None:
                verzoeken.append(Verzoek(vh, waiting.id, nieuw=False))
                continue
            row = await add_request(tx, Vrijgave(
                veiligheidshuis=vh.key, subject=subject, masked=person.masked, zaak=zaak or "", reden=reden,
                state="open", requested_by=caller.sender, room_id=caller.room_id, event_id=caller.event_id,
                opened_at=caller.now))
            ref = ref_text(row.id)
            assert vh.vrijgave_ruimte is not None  # the profile requires it (domain.veiligheidshuizen)
            await caller.audit("vrijgave.gevraagd", person=person.value, ref=ref, veiligheidshuis=vh.key, zaak=zaak,
                               gepingd=list(vh.verantwoordelijken), ruimte=vh.vrijgave_ruimte)
            verzoeken.append(Verzoek(vh, row.id, nieuw=True))
        return VraagResult(person, zaak, reden, tuple(verzoeken))

    async def _open_request(self, tx: Tx, caller: Caller, ref: str) -> Vrijgave:
        row_id = parse_ref(ref)
        if row_id is None:
            raise UserError(f"'{ref[:20]}' is geen vrijgavenummer; typ het nummer uit de melding, zoals V12.")
        row = await request_by_id(tx, row_id)
        if row is None:
            raise UserError(f"Vrijgaveverzoek {ref_text(row_id)} bestaat niet; kijk naar het nummer in de melding.")
        vh = self.veiligheidshuizen.get(row.veiligheidshuis)
        if vh is None or caller.sender not in vh.verantwoordelijken:
            raise UserError(f"Alleen de verantwoordelijke van {vh.naam if vh else row.veiligheidshuis} mag verzoek "
                            f"{ref_text(row.id)} beantwoorden.",
                            audit=("vrijgave.geweigerd_recht", {"ref": ref_text(row.id), "vh": row.veiligheidshuis}))
        if row.state != "open":
            raise UserError(f"Verzoek {ref_text(row.id)} is al beantwoord ({row.state}).")
        return row

    async def vrijgeven(self, tx: Tx, caller: Caller, ref: str, rest: str) -> Antwoord:
        row = await self._open_request(tx, caller, ref)
        days = self.dagen
        row.state, row.decided_by, row.decided_at = "vrijgegeven", caller.sender, caller.now
        row.toelichting, row.expires_at = toelichting(rest), caller.now + timedelta(days=days)
        await caller.audit("vrijgave.vrijgegeven", ref=ref_text(row.id), veiligheidshuis=row.veiligheidshuis,
                           dagen=days, aan=row.requested_by, ruimte=row.room_id, subject=row.subject)
        return Antwoord(row.id, ref_text(row.id), row.masked, row.room_id, row.requested_by, row.toelichting,
                        row.expires_at, days, direct=await self._direct(tx, row))

    async def weigeren(self, tx: Tx, caller: Caller, ref: str, rest: str) -> Antwoord:
        reden = toelichting(rest)
        if not reden:
            raise UserError("Geef een reden: !weigeren <nummer> <reden>.")
        row = await self._open_request(tx, caller, ref)
        row.state, row.decided_by, row.decided_at, row.toelichting = "geweigerd", caller.sender, caller.now, reden
        await caller.audit("vrijgave.geweigerd", ref=ref_text(row.id), veiligheidshuis=row.veiligheidshuis,
                           aan=row.requested_by, subject=row.subject)
        return Antwoord(row.id, ref_text(row.id), row.masked, row.room_id, row.requested_by, reden,
                        direct=await self._direct(tx, row))
