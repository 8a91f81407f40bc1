"""The rules every lookup of a person shares (``!check``, ``!vraag-vrijgave``, ``!instroom``): who may look, which
identifiers are accepted, and the case reference as the stated purpose of the lookup.

Pure and in one place, so the three lookups refuse with the same Dutch lines.
"""

from __future__ import annotations

from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.roles import VH_INFO_ROLES, labels
from domain.zaak import parse_zaak


def require_vh_role(role: str, command: str) -> None:
    """PROCESS.md: the police role does not unlock veiligheidshuis information, whatever the permission matrix."""
    if role not in VH_INFO_ROLES:
        raise UserError(f"Uw rol ({role}) geeft geen toegang tot informatie van veiligheidshuizen; "
                        f"!{command} is voor {labels(VH_INFO_ROLES)}.")


def parse_id(word: str, allowed: frozenset[str]) -> PersonId:
    """The person to look up, of an identifier type this location allows (``[check] identificatie``)."""
    try:
        return parse_person_id(word, allowed)
    except InvalidIdentifier as exc:
        raise UserError(f"{exc} Gebruik: !check <bsn-of-skn> [zaak: <parketnummer>].") from None


def purpose_zaak(typed: str | None, verplicht: bool) -> str | None:
    """The case reference as the purpose of a lookup: ``domain.zaak``'s rule, required when configured so."""
    zaak = parse_zaak(typed)
    if zaak is None and verplicht:
        raise UserError("Geef het zaaknummer mee als doel van de raadpleging: "
                        "!check <bsn-of-skn> zaak: <parketnummer>.")
    return zaak
