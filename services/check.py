"""The ``!check`` use case: one national lookup of a person, with the role rule, the allowed identifier types,
the releases valid in the room, the audit record ``register.raadpleging`` and the figures of the lookup.

The rules every lookup shares live in ``domain.raadpleging``; the figures of a lookup (``lookup_facts``) are
shared with ``!instroom``. The reply is composed by the chat adapter
(``commands.vh_view``) from the plain ``CheckResult`` returned here; the fields it discloses are computed by the
same rule (``domain.zicht.check_fields``) that fills the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from config.check import CheckSettings
from domain.advies import Markering, is_minor
from domain.clock import local
from domain.identifiers import PersonId
from domain.matrix_ids import direct_target
from domain.publiek import room_fields, room_may_show
from domain.raadpleging import parse_id, purpose_zaak, require_vh_role
from domain.roles import DECIDING_ROLES
from domain.veiligheidshuizen import Veiligheidshuizen
from domain.zicht import Zicht, check_fields, person_is_minor
from domain.zichtbaarheid import GEEN
from integrations.registry.base import Registry, RegistryUnavailable
from services.base import Caller, Tx
from services.lookahead import Ahead, look_up_ahead
from services.publiek import PubliekService
from services.vrijgave import VrijgaveService
from services.werklijst import WerklijstService
from storage.statistiek_models import CHECK, HIT, Feit, record_facts

IDENTIFIER_TYPES = ("bsn", "skn")


def lookup_facts(markeringen: list[Markering], now: datetime) -> list[Feit]:
    """The figures of one lookup: one check, and one hit per veiligheidshuis that knows the person (a minor when
    any of that house's markings says so). Written beside the lookup's audit record, in the same transaction."""
    today = local(now).date()
    minor: dict[str, bool] = {}
    for m in markeringen:
        minor[m.veiligheidshuis] = minor.get(m.veiligheidshuis, False) or is_minor(m.geboortedatum, today)
    return [Feit(CHECK, now), *(Feit(HIT, now, vh, minderjarig=minor[vh]) for vh in sorted(minor))]


@dataclass(frozen=True)
class CheckResult:
    """One lookup, ready to be shown. ``unavailable``: the registry did not answer (nothing else is set then);
    ``direct_to``: the details go to this direct room, the shared room gets a pointer only."""

    person: PersonId
    system: str
    zaak: str | None = None
    markeringen: tuple[Markering, ...] = ()
    zicht: Zicht | None = None
    today: date | None = None
    shown: tuple[str, ...] = ()
    unavailable: bool = False
    direct_to: str | None = None

    @property
    def hit(self) -> bool:
        return bool(self.markeringen)


@dataclass
class CheckService:
    settings: CheckSettings
    registry: Registry
    veiligheidshuizen: Veiligheidshuizen
    vrijgave: VrijgaveService
    publiek: PubliekService
    werklijst: WerklijstService | None = None  # a hit is a known person who came in (issue 14, !werklijst)

    def _asked(self, role: str, word: str, zaak_typed: str | None) -> tuple[PersonId, str | None]:
        """Who may be looked up, for what purpose: refused in Dutch when the role, the identifier or the purpose
        does not hold."""
        require_vh_role(role, "check")
        return parse_id(word, self.settings.identificatie), purpose_zaak(zaak_typed, self.settings.zaak_verplicht)

    async def ahead(self, role: str, word: str, zaak_typed: str | None) -> Ahead:
        """An outside registry asked before the transaction (``services.lookahead``), under ``check``'s own
        preconditions."""
        person, _ = self._asked(role, word, zaak_typed)
        return await look_up_ahead(self.registry, [person])

    async def check(self, tx: Tx, caller: Caller, word: str, zaak_typed: str | None) -> CheckResult:
        person, zaak = self._asked(caller.role, word, zaak_typed)
        cfg = self.settings
        registry = self.registry
        try:
            markeringen = await registry.lookup(person, session=tx)
        except RegistryUnavailable:
            await caller.audit("register.raadpleging", person=person.value, soort=person.kind, zaak=zaak,
                               uitkomst="register onbereikbaar", bron=registry.name, velden=[])
            return CheckResult(person, registry.name, zaak, unavailable=True)
        today = local(caller.now).date()
        zicht = await self.vrijgave.zicht(tx, caller, person, houses={m.veiligheidshuis for m in markeringen})
        shown = check_fields(markeringen, zicht, self.veiligheidshuizen, today)
        await caller.audit(
            "register.raadpleging", person=person.value, soort=person.kind, zaak=zaak, via="check",
            uitkomst="hit" if markeringen else "no-hit", bron=registry.name,
            veiligheidshuizen=sorted({m.veiligheidshuis for m in markeringen}), velden=list(shown),
        )
        await record_facts(tx, lookup_facts(list(markeringen), caller.now))
        if self.werklijst is not None:
            await self.werklijst.came_in(tx, person_value=person.value, masked=person.masked, via="check",
                                         veiligheidshuizen=[m.veiligheidshuis for m in markeringen], at=caller.now)
        direct_to = None
        if cfg.details_direct or not await self._room_may_see(tx, caller, list(markeringen), zicht, shown, today):
            direct_to = direct_target(caller.sender)
            await caller.audit("bericht.direct", person=person.value, aan=caller.sender, velden=list(shown))
        return CheckResult(person, registry.name, zaak, tuple(markeringen), zicht, today, shown,
                           direct_to=direct_to)

    async def _room_may_see(self, tx: Tx, caller: Caller, markeringen: list[Markering], zicht: Zicht,
                            shown: tuple[str, ...], today: date) -> bool:
        """Every member of the room may see what the asker is shown (``domain.publiek``); when so, the room's
        memory of what it was shown grows by these fields."""
        roles, shown_before = await self.publiek.audience(tx, caller.room_id, caller.sender)
        room = replace(zicht, velden=GEEN if roles is None else room_fields(roles, self.publiek.velden),
                       # a release is for the OM: the room reads a released advice only when all its readers are OM
                       vrijgaven=zicht.vrijgaven if roles and set(roles) <= DECIDING_ROLES else {})
        minor = person_is_minor(markeringen, today)
        sees = not room.sees_nothing(minor) if markeringen else not room.velden.leeg
        if not room_may_show(shown, check_fields(markeringen, room, self.veiligheidshuizen, today),
                             room_sees_person=sees, room_sees_all_asker_sees=zicht.velden <= room.velden):
            return False
        await self.publiek.shown(tx, caller.room_id, minor, shown, caller.now, before=shown_before)
        return True
