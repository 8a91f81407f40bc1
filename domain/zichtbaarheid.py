"""Who may see which part of a veiligheidshuis's marking: the field matrix and the covenant profiles (PRIVACY.md).

Two rules meet here, and a field is shown only when both allow it:
- the role's fields (configurable per role in ``[permissions.velden]``; defaults below): need to know per function;
- the veiligheidshuis's covenant profile: ``generiek`` (the pilot model) shows dat- and waarom-informatie;
  ``hit-no-hit`` shows known / not known, which veiligheidshuis and a contact, the advice only once its
  responsible person released it for this case, and a hit outside the bot's own region only as "known elsewhere"
  with the contact.
``commands.vh_view`` composes every reply from ``visible_fields``; check-config reads the same tables;
``config.permissions`` parses ``[permissions.velden]`` against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from domain.roles import DECIDING_ROLES

# Every field a marking can show, in the order of the reply. There is no field for care content (diagnosis,
# treatment): the bot cannot show what it does not have.
FIELDS: Final[tuple[str, ...]] = (
    "veiligheidshuis", "doelgroep", "status", "advies", "geadviseerde_afdoening", "advies_datum",
    "regisseur", "contact", "huishouden", "minderjarig",
)
# Waarom-informatie: what a hit-no-hit veiligheidshuis releases per case.
ADVICE_FIELDS: Final[frozenset[str]] = frozenset({"advies", "geadviseerde_afdoening", "advies_datum"})
# Dat-informatie: that the person is known, where, since when, and whom to call.
DAT_FIELDS: Final[frozenset[str]] = frozenset(
    {"veiligheidshuis", "doelgroep", "status", "regisseur", "contact", "huishouden", "minderjarig"})



@dataclass(frozen=True)
class RolVelden:
    """A role's fields, per group: reclassering weighs the advice for adults and the RvdK for minors (PROCESS.md
    step 2), so a role can see a person of one group and nothing of the other. Whether a person is a minor comes
    from the markings' birth dates (``domain.advies.is_minor``)."""

    meerderjarig: frozenset[str]
    minderjarig: frozenset[str]

    @classmethod
    def beide(cls, fields: Iterable[str]) -> RolVelden:
        both = frozenset(fields)
        return cls(both, both)

    def voor(self, minor: bool) -> frozenset[str]:
        return self.minderjarig if minor else self.meerderjarig

    def __and__(self, other: RolVelden) -> RolVelden:
        return RolVelden(self.meerderjarig & other.meerderjarig, self.minderjarig & other.minderjarig)

    def __le__(self, other: RolVelden) -> bool:
        return self.meerderjarig <= other.meerderjarig and self.minderjarig <= other.minderjarig

    @property
    def leeg(self) -> bool:
        return not (self.meerderjarig or self.minderjarig)


GEEN: Final[RolVelden] = RolVelden(frozenset(), frozenset())

# Defaults: the deciding roles see everything the profile allows. Reclassering (adults) and the RvdK (minors)
# weigh the veiligheidshuis's advice in step 2 and bring it up to date (pilot report L319-324, L3688-3720): each
# sees dat-informatie and the advice with its date for its own group and nothing of the other group. Roles
# outside VH_INFO_ROLES (police among them: PROCESS.md) see nothing, whatever the configuration says.
DEFAULT_ROLE_FIELDS: Final[Mapping[str, RolVelden]] = {
    **{r: RolVelden.beide(FIELDS) for r in DECIDING_ROLES},
    "reclassering": RolVelden(frozenset(FIELDS), frozenset()),
    "rvdk": RolVelden(frozenset(), frozenset(FIELDS)),
}

PROFILE_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "generiek": frozenset(FIELDS),
    "hit-no-hit": frozenset({"veiligheidshuis", "contact", "minderjarig"}),
}
# A hit-no-hit veiligheidshuis outside the bot's region: only "known elsewhere" and the contact.
ELSEWHERE_FIELDS: Final[frozenset[str]] = frozenset({"contact", "minderjarig"})


def visible_fields(role_fields: frozenset[str], profiel: str, *, in_regio: bool = True,
                   vrijgegeven: bool = False) -> frozenset[str]:
    """The fields of one marking this user may see: the role's fields within what the profile allows."""
    if profiel == "hit-no-hit":
        allowed = PROFILE_FIELDS[profiel] if in_regio else ELSEWHERE_FIELDS
        if vrijgegeven:
            allowed = allowed | ADVICE_FIELDS
    else:
        allowed = PROFILE_FIELDS["generiek"]
    return role_fields & allowed


# How long an advice released with !vrijgeven stays visible to the asking room ([privacy] vrijgave_dagen).
DEFAULT_RELEASE_DAYS: Final[int] = 7
