"""The caller's view of a lookup: which fields of which markings a reply may show, and which it did show.

``Zicht`` joins the role's fields, the bot's region and the releases valid for this person (``hit-no-hit``)
with the per-profile matrix of ``domain.zichtbaarheid``. The lookup services use it to write exactly the disclosed
fields into the audit record; ``commands.vh_view`` uses the same object to compose the reply, so the audit trail
and the room can never disagree about what was shown. Pure rules: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from domain.advies import Markering, is_minor
from domain.identifiers import PersonId
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen
from domain.zichtbaarheid import PROFILE_FIELDS, RolVelden, visible_fields

# What the signal (instroom) may show at most: dat-informatie and the advice's freshness, never its text.
SIGNAL_FIELDS: Final[frozenset[str]] = frozenset({"veiligheidshuis", "advies_datum", "status", "minderjarig"})

# The per-marking fields of a !check reply, in the order the reply shows them.
_CHECK_ORDER: Final[tuple[str, ...]] = (
    "doelgroep", "status", "advies", "geadviseerde_afdoening", "advies_datum", "regisseur")


@dataclass(frozen=True)
class Zicht:
    """What the reader may see: the role's fields per group (for a room: what every member may see, see
    ``domain.publiek``), the bot's region, and the releases for this person (per veiligheidshuis key, a label such
    as 'vrijgegeven door @x op 12-06-2026')."""

    velden: RolVelden
    regio: str | None = None
    vrijgaven: Mapping[str, str] = field(default_factory=dict)

    def role_fields(self, minor: bool) -> frozenset[str]:
        return self.velden.voor(minor)

    def fields(self, vh: Veiligheidshuis | None, minor: bool) -> frozenset[str]:
        if vh is None:
            return self.role_fields(minor) & PROFILE_FIELDS["generiek"]
        return visible_fields(self.role_fields(minor), vh.profiel, in_regio=self.in_regio(vh),
                              vrijgegeven=vh.key in self.vrijgaven)

    def sees_nothing(self, minor: bool) -> bool:
        """The reader's role sees no field of this group (reclassering and a minor, the RvdK and an adult): the
        reply then says so and nothing else, not even whether the person is known."""
        return not self.role_fields(minor)

    def in_regio(self, vh: Veiligheidshuis) -> bool:
        return self.regio is None or vh.regio == self.regio

    def elsewhere(self, vh: Veiligheidshuis | None) -> bool:
        """A hit-no-hit veiligheidshuis outside the bot's region: shown only as "known elsewhere"."""
        return vh is not None and vh.profiel == "hit-no-hit" and not self.in_regio(vh)


@dataclass(frozen=True)
class BatchItem:
    """One person of a batch lookup with the markings found."""

    person: PersonId
    markeringen: Sequence[Markering]


def person_is_minor(markeringen: Sequence[Markering], today: date) -> bool:
    """A person is a minor when any marking's birth date says so (the conservative reading)."""
    return any(is_minor(m.geboortedatum, today) for m in markeringen)


def check_fields(markeringen: Sequence[Markering], zicht: Zicht, vhs: Veiligheidshuizen,
                 today: date) -> tuple[str, ...]:
    """The fields a ``!check`` reply discloses, in reply order, for the audit record (empty when not known, and
    when the reader's role sees nothing of the person's group)."""
    minor = person_is_minor(markeringen, today)
    if zicht.sees_nothing(minor):
        return ()
    shown: list[str] = []
    for m in markeringen:
        vh = vhs.get(m.veiligheidshuis)
        fields = zicht.fields(vh, minor)
        shown.extend(f for f in _CHECK_ORDER if f in fields)
        if "contact" in fields and vh is not None and vh.contact:
            shown.append("contact")
        if "huishouden" in fields and m.huishouden:
            shown.append("huishouden")
        if not zicht.elsewhere(vh):
            shown.append("veiligheidshuis")
    if minor and "minderjarig" in zicht.fields(None, minor):
        shown.append("minderjarig")
    return tuple(dict.fromkeys(shown))


def signal_fields(items: Sequence[BatchItem], vhs: Veiligheidshuizen, zicht: Zicht, today: date) -> list[str]:
    """The fields a batch summary disclosed, for the audit record."""
    shown: set[str] = set()
    for item in items:
        minor = person_is_minor(item.markeringen, today)
        if zicht.sees_nothing(minor):
            continue
        for m in item.markeringen:
            shown |= zicht.fields(vhs.get(m.veiligheidshuis), minor) & SIGNAL_FIELDS
    return sorted(shown)
