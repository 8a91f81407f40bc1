"""Who may see which part of a veiligheidshuis's marking: the field matrix and the covenant profiles (PRIVACY.md).

Two rules meet here, and a field is shown only when both allow it:
- the role's fields (configurable per role in ``[permissions.velden]``; defaults below): need to know per function;
- the veiligheidshuis's covenant profile: ``generiek`` (the pilot model) shows dat- and waarom-informatie;
  ``hit-no-hit`` shows known / not known, which veiligheidshuis and a contact, the advice only once its
  responsible person released it for this case, and a hit outside the bot's own region only as "known elsewhere"
  with the contact.
``commands.vh_view`` composes every reply from ``visible_fields``; check-config reads the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from domain.errors import ConfigError
from domain.roles import DECIDING_ROLES, ROLES, VH_INFO_ROLES

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


def parse_role_fields(section: Mapping[str, object]) -> dict[str, frozenset[str]]:
    """``[permissions.velden]``: ``<rol> = [velden]`` replaces that role's default; other roles keep theirs.

    A role outside VH_INFO_ROLES cannot be given a field: the police role does not unlock veiligheidshuis
    information (PROCESS.md), so such a line is a configuration error, not a silent no-op."""
    out = dict(DEFAULT_ROLE_FIELDS)
    for role, listed in section.items():
        where = f"permissions.velden.{role}"
        if role not in ROLES:
            raise ConfigError(f"{where}: onbekende rol; kies uit {', '.join(sorted(ROLES))}")
        if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
            raise ConfigError(f"{where}: verwacht een lijst met velden, zoals [\"veiligheidshuis\", \"status\"]")
        unknown = [f for f in listed if f not in FIELDS]
        if unknown:
            raise ConfigError(f"{where}: onbekend veld {unknown[0]!r}; kies uit {', '.join(FIELDS)}")
        if listed and role not in VH_INFO_ROLES:
            raise ConfigError(f"{where}: de rol {role} mag geen informatie van veiligheidshuizen zien "
                              "(PRIVACY.md); laat de lijst leeg of verwijder de regel")
        out[role] = frozenset(listed)
    return out


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


DEFAULT_RELEASE_DAYS: Final[int] = 7


def release_days(raw: Mapping[str, object]) -> int:
    """``[privacy] vrijgave_dagen``: how long a released advice stays visible to the asking room (default 7)."""
    section = raw.get("privacy", {})
    value = section.get("vrijgave_dagen", DEFAULT_RELEASE_DAYS) if isinstance(section, Mapping) else None
    if isinstance(value, str) and value.isdigit():  # from the environment
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 90:
        raise ConfigError(f"privacy.vrijgave_dagen: verwacht een aantal dagen van 1 tot en met 90, kreeg {value!r}")
    return value
