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

from collections.abc import Mapping
from typing import Final

from domain.roles import DECIDING_ROLES, VH_INFO_ROLES

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

# Defaults: the deciding roles see everything the profile allows; the other partners at the table advise on their
# own part and get the dat-informatie (whom to call) but not the veiligheidshuis's advice to the OM; roles outside
# VH_INFO_ROLES (police among them: PROCESS.md) see nothing, whatever the configuration says.
DEFAULT_ROLE_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    **{r: frozenset(FIELDS) for r in DECIDING_ROLES},
    **{r: DAT_FIELDS for r in VH_INFO_ROLES - DECIDING_ROLES},
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
