"""How a decision relates to the veiligheidshuis's advice: followed, deviated, exempt, or no advice to weigh.

PROCESS.md step 3: a current advice that fits the offence leads the decision and the OvJ may deviate with reasons.
The duty to give a motivation holds only for a current (not older than 12 months), coded advice. Two kinds of
decisions are exempt: a technical sepot (the case cannot go on at all, whatever the advice says) and, for a minor,
a decision at the intake-and-selection stage (sepot, Halt, reprimande), because the pilots agreed that VH
information does not steer that decision (pilot report L3638-3648). The decision row, the mail and the figures all
take the relation from here, so they cannot disagree. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

GEEN = "geen"  # the explicit "no particular afdoening advised" of an advice


class Verhouding(StrEnum):
    GEVOLGD = "gevolgd"
    AFGEWEKEN = "afgeweken"
    VRIJGESTELD = "vrijgesteld"  # technical sepot, or a minor's selection-stage decision
    GEEN_ADVIES = "geen_advies"  # no current coded advice (none, "geen", or older than 12 months)


@dataclass(frozen=True)
class Kennis:
    """What the registry says about the person for one house, reduced to what the rules need."""

    veiligheidshuis: str
    minderjarig: bool
    geadviseerd: str | None  # catalogue code, "geen", or None when the marking carries no coded advice
    advies_actueel: bool  # not older than 12 months (domain.advies.freshness)


def verhouding(code: str, technisch: bool, selectie: bool, k: Kennis) -> Verhouding:
    """The relation of one decision to one house's advice."""
    if not k.advies_actueel or not k.geadviseerd or k.geadviseerd == GEEN:
        return Verhouding.GEEN_ADVIES
    if k.geadviseerd == code:
        return Verhouding.GEVOLGD
    if technisch or (k.minderjarig and selectie):
        return Verhouding.VRIJGESTELD
    return Verhouding.AFGEWEKEN


@dataclass(frozen=True)
class Weging:
    """The decision against every house's advice: the overall relation and the advice deviated from, if any."""

    verhouding: Verhouding
    afgeweken_van: Kennis | None


_RANK = {Verhouding.AFGEWEKEN: 3, Verhouding.GEVOLGD: 2, Verhouding.VRIJGESTELD: 1, Verhouding.GEEN_ADVIES: 0}


def weeg(code: str, technisch: bool, selectie: bool, kennis: Iterable[Kennis]) -> Weging:
    """A deviation from any current coded advice makes the decision a deviation (the motivation is owed to that
    house); otherwise followed when it follows one, exempt when an advice existed but does not apply."""
    best = Verhouding.GEEN_ADVIES
    van: Kennis | None = None
    for k in kennis:
        v = verhouding(code, technisch, selectie, k)
        if _RANK[v] > _RANK[best]:
            best = v
            van = k if v is Verhouding.AFGEWEKEN else None
    return Weging(best, van)


def motivering_verplicht(w: Weging, motivering: str | None) -> bool:
    return w.verhouding is Verhouding.AFGEWEKEN and not (motivering and motivering.strip())
