"""Rules about the veiligheidshuis advice: freshness bands and minors (PROCESS.md, "Rules the software must hold").

``!check``, ``!besluit`` and the reports all call these; none of them keeps its own copy of a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum


class Freshness(Enum):
    CURRENT = "actueel"
    LESS_WEIGHT = "minder zwaar (ouder dan 6 maanden)"
    NOT_CURRENT = "niet meer actueel (ouder dan 12 maanden)"


def _add_months(d: date, months: int) -> date:
    year, month = divmod(d.month - 1 + months, 12)
    year += d.year
    month += 1
    # Clamp to the month's last day (31 Aug + 6 months = 28/29 Feb).
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def freshness(advies_datum: date, today: date) -> Freshness:
    if today > _add_months(advies_datum, 12):
        return Freshness.NOT_CURRENT
    if today > _add_months(advies_datum, 6):
        return Freshness.LESS_WEIGHT
    return Freshness.CURRENT


def age_text(advies_datum: date, today: date) -> str:
    """Plain Dutch age: '12 dagen', '3 maanden', '1 jaar en 2 maanden'."""
    days = (today - advies_datum).days
    if days < 0:
        return "datum in de toekomst"
    if days < 60:
        return f"{days} dag" if days == 1 else f"{days} dagen"
    months = (today.year - advies_datum.year) * 12 + today.month - advies_datum.month
    if today.day < advies_datum.day:
        months -= 1
    years, rest = divmod(months, 12)
    if years == 0:
        return f"{months} maanden"
    y = "1 jaar" if years == 1 else f"{years} jaar"
    return y if rest == 0 else f"{y} en {rest} maand" + ("en" if rest > 1 else "")


def age_in_years(geboortedatum: date, today: date) -> int:
    years = today.year - geboortedatum.year
    if (today.month, today.day) < (geboortedatum.month, geboortedatum.day):
        years -= 1
    return years


def is_minor(geboortedatum: date, today: date) -> bool:
    """Minor on the day of the check (PROCESS.md: VH information must not steer the selection decision)."""
    return age_in_years(geboortedatum, today) < 18


@dataclass(frozen=True)
class Markering:
    """One veiligheidshuis's marking of a person: dat-informatie plus waarom-informatie (the advice)."""

    bsn: str
    skn: str | None
    geboortedatum: date
    veiligheidshuis: str
    doelgroep: str
    status: str  # actief | afgesloten
    advies: str
    geadviseerde_afdoening: str | None
    advies_datum: date
    regisseur: str
    huishouden: bool = False
    bron: str = "register"
