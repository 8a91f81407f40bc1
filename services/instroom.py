"""The instroom use case: check a batch of incoming suspects at once, from the room (``!instroom``) or from a
case system through the web API (``POST /api/instroom``).

Every id is checked first; a bad one rejects the batch with its position, so nobody is silently skipped. Each
person looked up gets its own audit record ``register.raadpleging`` (with the fields the summary disclosed) and
its figures. The summary itself is composed by the adapters (``commands.vh_view.compose_batch``); for the API,
the adapter's ``publish`` posts it in the same transaction as the audit records.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from config.check import CheckSettings
from domain.clock import Clock, local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.matrix_ids import direct_target
from domain.publiek import room_may_show
from domain.raadpleging import require_vh_role
from domain.veiligheidshuizen import Veiligheidshuizen
from domain.zaak import parse_zaak
from domain.zicht import BatchItem, Zicht, person_is_minor, signal_fields
from domain.zichtbaarheid import FIELDS as ALL_FIELDS
from domain.zichtbaarheid import GEEN, RolVelden
from integrations.registry.base import Registry, RegistryUnavailable
from services.base import Caller, Tx
from services.check import lookup_facts
from services.lookahead import Ahead, look_up_ahead
from services.publiek import PubliekService
from services.werklijst import WerklijstService
from storage.audit import Auditor
from storage.db import SessionFactory
from storage.statistiek_models import record_facts

MAX_BATCH = 50
API_ACTOR = "api:instroom"
_SPLIT = re.compile(r"[\s,;]+")


def split_ids(words: Sequence[str]) -> list[str]:
    return [w for word in words for w in _SPLIT.split(word) if w]


def parse_batch(raw: Sequence[str], allowed: frozenset[str]) -> tuple[list[PersonId], list[tuple[int, str]]]:
    """Parsed ids (duplicates dropped, order kept) and the problems as (1-based position, Dutch reason)."""
    people: list[PersonId] = []
    problems: list[tuple[int, str]] = []
    for i, word in enumerate(raw, start=1):
        try:
            p = parse_person_id(word, allowed)
        except InvalidIdentifier as exc:
            problems.append((i, str(exc)))
            continue
        if p not in people:
            people.append(p)
    return people, problems


async def lookup_all(registry: Registry, people: list[PersonId], session: Tx | None = None) -> list[BatchItem]:
    return [BatchItem(p, await registry.lookup(p, session=session)) for p in people]


@dataclass(frozen=True)
class InstroomResult:
    """A batch looked up, ready for the summary; ``unavailable``: the registry did not answer."""

    system: str
    items: tuple[BatchItem, ...] = ()
    zicht: Zicht | None = None
    today: date | None = None
    unavailable: bool = False
    direct_to: str | None = None  # the summary goes to this direct room; the shared room gets a notice


@dataclass(frozen=True)
class SignaalResult:
    """The API's batch: ``problems`` (position, reason) when ids were bad and nothing was checked."""

    system: str
    items: tuple[BatchItem, ...] = ()
    zicht: Zicht | None = None
    now: datetime | None = None
    problems: tuple[tuple[int, str], ...] = ()
    unavailable: bool = False
    # a known person of whom some reader of the signal room may see nothing: the room gets a notice only
    verborgen: bool = False

    @property
    def known(self) -> list[BatchItem]:
        return [i for i in self.items if i.markeringen]


PublishFn = Callable[[Tx, SignaalResult], Awaitable[None]]


@dataclass
class InstroomService:
    settings: CheckSettings
    registry: Registry
    veiligheidshuizen: Veiligheidshuizen
    auditor: Auditor
    sessions: SessionFactory
    clock: Clock
    velden: Mapping[str, RolVelden]
    regio: str | None
    publiek: PubliekService | None = None  # the room's audience
    signal_room: str | None = None  # where the API's signal goes ([instroom] room)
    werklijst: WerklijstService | None = None  # a hit is a known person who came in (issue 14, !werklijst)

    async def _came_in(self, tx: Tx, items: Sequence[BatchItem], via: str, at: datetime) -> None:
        if self.werklijst is None:
            return
        for item in items:
            await self.werklijst.came_in(tx, person_value=item.person.value, masked=item.person.masked, via=via,
                                         veiligheidshuizen=[m.veiligheidshuis for m in item.markeringen], at=at)

    def _asked(self, role: str, words: Sequence[str], zaak_typed: str | None) -> tuple[list[PersonId], str | None]:
        """The batch to look up and its purpose; refused in Dutch as a whole when anything in it does not hold."""
        require_vh_role(role, "instroom")
        zaak = parse_zaak(zaak_typed)
        raw = split_ids(words)
        if not raw:
            raise UserError("Geef minstens één BSN of SKN. Gebruik: !instroom <id> [<id> ...].")
        if len(raw) > MAX_BATCH:
            raise UserError(f"Te veel nummers ({len(raw)}); maximaal {MAX_BATCH} per keer. Splits de lijst.")
        people, problems = parse_batch(raw, self.settings.identificatie)
        if problems:
            listed = "; ".join(f"nr. {i}: {reason}" for i, reason in problems)
            raise UserError(f"Niets gecontroleerd: {listed} Verbeter of laat die weg en stuur !instroom opnieuw.")
        return people, zaak

    async def ahead(self, role: str, words: Sequence[str], zaak_typed: str | None) -> Ahead:
        """An outside registry asked before the transaction (``services.lookahead``), under ``instroom``'s own
        preconditions."""
        people, _ = self._asked(role, words, zaak_typed)
        return await look_up_ahead(self.registry, people)

    async def instroom(self, tx: Tx, caller: Caller, words: Sequence[str], zaak_typed: str | None
                       ) -> InstroomResult:
        people, zaak = self._asked(caller.role, words, zaak_typed)
        registry = self.registry
        try:
            items = await lookup_all(registry, people, tx)
        except RegistryUnavailable:
            await caller.audit("register.raadpleging", via="instroom", uitkomst="register onbereikbaar",
                               aantal=len(people), bron=registry.name)
            return InstroomResult(registry.name, unavailable=True)
        zicht = Zicht(self.velden.get(caller.role, GEEN), regio=self.regio)
        vhs = self.veiligheidshuizen
        for item in items:
            await caller.audit(
                "register.raadpleging", person=item.person.value, soort=item.person.kind, zaak=zaak, via="instroom",
                uitkomst="hit" if item.markeringen else "no-hit", bron=registry.name,
                veiligheidshuizen=sorted({m.veiligheidshuis for m in item.markeringen}),
                velden=signal_fields([item], vhs, zicht, local(caller.now).date()),
            )
        await record_facts(tx, [f for item in items for f in lookup_facts(list(item.markeringen), caller.now)])
        await self._came_in(tx, items, "instroom", caller.now)
        today = local(caller.now).date()
        direct_to = None
        if self.publiek is not None:
            room = replace(zicht, velden=await self.publiek.room_velden(tx, caller.room_id, caller.sender))
            if not (zicht.velden <= room.velden or all(room_may_show(
                    signal_fields([i], vhs, zicht, today), signal_fields([i], vhs, room, today),
                    room_sees_person=not room.sees_nothing(person_is_minor(i.markeringen, today))
                    if i.markeringen else not room.velden.leeg) for i in items)):
                direct_to = direct_target(caller.sender)
                await caller.audit("bericht.direct", aan=caller.sender, via="instroom", aantal=len(items))
            else:
                for i in items:
                    await self.publiek.shown(tx, caller.room_id, person_is_minor(i.markeringen, today),
                                             signal_fields([i], vhs, zicht, today), caller.now)
        return InstroomResult(registry.name, tuple(items), zicht, today, direct_to=direct_to)

    async def signaal(self, ids: Sequence[str], bron: str, ref: str | None, publish: PublishFn) -> SignaalResult:
        """The API's batch, in a transaction of its own: audit records for everyone looked up and, when anyone is
        known, ``publish`` (the signal for the ZSM room) in the same transaction."""
        people, problems = parse_batch(ids, self.settings.identificatie)
        registry = self.registry
        if problems:
            return SignaalResult(registry.name, problems=tuple(problems))
        try:
            items = await lookup_all(registry, people)
        except RegistryUnavailable:
            return SignaalResult(registry.name, unavailable=True)
        now = self.clock.now()
        today = local(now).date()
        async with self.sessions() as session:
            # The signal lands in a shared room: only what every member there may see (``services.publiek``).
            velden = RolVelden.beide(ALL_FIELDS)
            if self.publiek is not None and self.signal_room is not None:
                velden = await self.publiek.room_velden(session, self.signal_room, None)
            zicht = Zicht(velden, regio=self.regio)
            verborgen = any(zicht.sees_nothing(person_is_minor(i.markeringen, today)) for i in items if i.markeringen)
            if verborgen:
                zicht = Zicht(GEEN, regio=self.regio)
            result = SignaalResult(registry.name, tuple(items), zicht, now, verborgen=verborgen)
            for item in items:
                await self.auditor.record(
                    session, kind="register.raadpleging", at=now, actor=API_ACTOR, role=None,
                    person=item.person.value,
                    details={"soort": item.person.kind, "via": "api-instroom", "bron": bron or None,
                             "referentie": ref, "uitkomst": "hit" if item.markeringen else "no-hit",
                             "register": registry.name,
                             "veiligheidshuizen": sorted({m.veiligheidshuis for m in item.markeringen}),
                             "velden": signal_fields([item], self.veiligheidshuizen, zicht, local(now).date())},
                )
            await self._came_in(session, items, "signaal", now)
            if result.known:
                await publish(session, result)
            await session.commit()
        return result
