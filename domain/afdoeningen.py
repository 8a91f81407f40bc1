"""The afdoening catalogue (read from ``afdoeningen.toml`` by ``config.reference``) and the feedback rules.

``feedback_for`` is the ONE place that decides whether, how much and to whom feedback goes; ``!besluit``
and the reports both call it. Pure: no I/O, no clock, no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.afwijking import Kennis, Verhouding, verhouding, weeg
from domain.errors import ConfigError
from domain.suggest import nearest

__all__ = ["Afdoening", "Catalogus", "Kennis", "Terugkoppeling", "advies_uitkomst", "feedback_for",
           "parse_afdoeningen"]

RULES = ("geen-verwijderen", "beperkt", "volledig")
_CODE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,31}$")


@dataclass(frozen=True)
class Afdoening:
    code: str
    label: str
    groep: str
    terugkoppeling: str  # one of RULES
    aliassen: tuple[str, ...] = ()
    technisch: bool = False  # a technical sepot: no duty to follow an advice (domain.afwijking)
    selectie: bool = False  # may be taken at intake-and-selection: for a minor, no duty to follow an advice


class Catalogus:
    def __init__(self, items: Iterable[Afdoening]) -> None:
        self._by_code: dict[str, Afdoening] = {}
        self._lookup: dict[str, Afdoening] = {}
        for a in items:
            for name in (a.code, *a.aliassen):
                if name in self._lookup:
                    raise ConfigError(f"afdoeningen: code of alias {name!r} komt twee keer voor")
                self._lookup[name] = a
            self._by_code[a.code] = a

    def get(self, typed: str) -> Afdoening | None:
        """By code or alias; a registry's advised afdoening may also be written as the label."""
        key = typed.strip().lower()
        found = self._lookup.get(key)
        if found is None:
            found = next((a for a in self._by_code.values() if a.label.lower() == key), None)
        return found

    def codes(self) -> list[str]:
        return list(self._by_code)

    def all(self) -> list[Afdoening]:
        return list(self._by_code.values())

    def nearest(self, typed: str, limit: int = 3) -> list[str]:
        hits = nearest(typed, list(self._lookup), limit=limit * 2, cutoff=0.4)
        out: list[str] = []
        for h in hits:
            code = self._lookup[h].code
            if code not in out:
                out.append(code)
        return out[:limit]


def parse_afdoeningen(entries: list[dict[str, Any]]) -> Catalogus:
    """The ``[[afdoening]]`` blocks of the reference file, checked; the file itself is read in ``config``."""
    items = []
    for i, raw in enumerate(entries):
        code = raw.get("code")
        if not isinstance(code, str) or not _CODE.match(code):
            raise ConfigError(f"afdoeningen[{i}].code: verwacht een korte code (kleine letters, cijfers, -), "
                              f"kreeg {code!r}")
        for key in ("label", "groep"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ConfigError(f"afdoeningen.{code}.{key} ontbreekt: verwacht tekst")
        rule = raw.get("terugkoppeling")
        if rule not in RULES:
            raise ConfigError(f"afdoeningen.{code}.terugkoppeling: verwacht een van {', '.join(RULES)}, kreeg {rule!r}")
        aliassen = raw.get("aliassen", [])
        if not isinstance(aliassen, list) or not all(isinstance(a, str) and _CODE.match(a) for a in aliassen):
            raise ConfigError(f"afdoeningen.{code}.aliassen: verwacht een lijst korte codes")
        flags = {}
        for key in ("technisch", "selectie"):
            value = raw.get(key, False)
            if not isinstance(value, bool):
                raise ConfigError(f"afdoeningen.{code}.{key}: verwacht true of false, kreeg {value!r}")
            flags[key] = value
        items.append(Afdoening(code, raw["label"].strip(), raw["groep"].strip(), rule, tuple(aliassen), **flags))
    return Catalogus(items)


@dataclass(frozen=True)
class Terugkoppeling:
    """The outcome of the rules for one decision."""

    ontvangers: tuple[str, ...]  # veiligheidshuis keys, in order
    inhoud: str  # "geen" | "beperkt" | "volledig"
    verwijderen: bool  # technisch sepot 01: remove what the bot holds on the case
    weigering: str | None  # Dutch refusal (missing motivation), nothing is recorded
    uitleg: str  # Dutch, one line: why this outcome
    verhouding: Verhouding = Verhouding.GEEN_ADVIES  # the decision against the advice (domain.afwijking)


def feedback_for(
    afdoening: Afdoening,
    kennis: Iterable[Kennis],
    *,
    aangemeld_bij: Iterable[str] = (),
    motivering: str | None = None,
) -> Terugkoppeling:
    """PROCESS.md 'Rules the software must hold' and step 4, all in one place."""
    known = list(kennis)
    referred = [k for k in dict.fromkeys(aangemeld_bij)]
    if afdoening.terugkoppeling == "geen-verwijderen":
        return Terugkoppeling((), "geen", True, None,
                              "technisch sepot 01: nooit terugkoppeling; gegevens over deze zaak worden verwijderd")
    halt_of_reprimande = afdoening.groep.lower() in {"halt", "reprimande"}
    weging = weeg(afdoening.code, afdoening.technisch, afdoening.selectie, known)
    if weging.afgeweken_van is not None and not (motivering and motivering.strip()):
        k = weging.afgeweken_van
        return Terugkoppeling(
            (), "geen", False,
            f"Dit wijkt af van het actuele advies van {k.veiligheidshuis} ({k.geadviseerd}). "
            "Voeg een motivering toe: 'motivering: <reden van afwijken>'.",
            "afwijking van actueel advies zonder motivering",
        )
    ontvangers = list(dict.fromkeys([*(k.veiligheidshuis for k in known), *referred]))
    if not ontvangers:
        return Terugkoppeling((), "geen", False, None,
                              "geen veiligheidshuis kent deze persoon en er is geen aanmelding: geen terugkoppeling")
    if afdoening.terugkoppeling == "beperkt":
        return Terugkoppeling(tuple(ontvangers), "beperkt", False, None,
                              "sepot: alleen 'binnengekomen bij ZSM, zaak geseponeerd'", weging.verhouding)
    if halt_of_reprimande and any(k.minderjarig for k in known):
        uitleg = "bekende minderjarige met Halt of reprimande: terugkoppeling"
    elif known:
        uitleg = "persoon bekend bij het veiligheidshuis: terugkoppeling"
    else:
        uitleg = "persoon aangemeld bij het veiligheidshuis: terugkoppeling"
    return Terugkoppeling(tuple(ontvangers), "volledig", False, None, uitleg, weging.verhouding)


def advies_uitkomst(afdoening: Afdoening, k: Kennis) -> str:
    """How a decision relates to one veiligheidshuis's advice, for the figures: ``gevolgd``, ``afgeweken``,
    ``vrijgesteld`` (an exempt decision, domain.afwijking: neither followed nor deviated from, and counted apart so
    it does not swell "no advice") or ``geen_advies``."""
    return verhouding(afdoening.code, afdoening.technisch, afdoening.selectie, k).value
