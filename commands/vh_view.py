"""The one place that turns markings into what a user sees: ``!check``, ``!instroom`` and the instroom signal.

Everything shown is composed here from the fields the caller may see (``visible_fields``). The privacy issue
restricts that set per covenant profile (``generiek`` / ``hit-no-hit``) and per veiligheidshuis; the composers
below never show a field that is not in the set, and they return the list of fields they did show, so the
audit record says exactly what was disclosed.

Every item names its source (which veiligheidshuis, which system) and its date. The bot shows information;
it never proposes a decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from domain.advies import Markering, age_text, freshness
from domain.identifiers import PersonId
from domain.roles import label
from domain.veiligheidshuizen import Veiligheidshuizen
from domain.zicht import SIGNAL_FIELDS, BatchItem, Zicht, check_fields, person_is_minor, signal_fields
from domain.zichtbaarheid import FIELDS as ALL_FIELDS
from services.reply import Bold, Code, Doc, Italic, Part, Reply, text

__all__ = ["ALL_FIELDS", "SIGNAL_FIELDS", "BatchItem", "Composed", "Zicht", "compose_batch", "compose_check",
           "signal_fields", "signal_notice", "unavailable_reply"]

STATUS_LABELS: Final[dict[str, str]] = {"actief": "plan van aanpak actief", "afgesloten": "plan afgesloten"}

MINOR_NOTICE: Final[str] = (
    "Minderjarige: informatie van het veiligheidshuis mag de beslissing bij intake en selectie niet sturen "
    "(Halt en reprimande volgen objectieve criteria). Een Halt- of reprimandebeslissing wordt wel "
    "teruggekoppeld aan het veiligheidshuis."
)


@dataclass(frozen=True)
class Composed:
    reply: Reply
    shown: tuple[str, ...]  # field names disclosed, for the audit record
    hit: bool


def _vh_name(vhs: Veiligheidshuizen, key: str) -> str:
    vh = vhs.get(key)
    return vh.naam if vh else f"veiligheidshuis '{key}'"


def _date(d: date) -> str:
    return d.strftime("%d-%m-%Y")


def freshness_text(advies_datum: date, today: date) -> str:
    """'12-03-2026, 3 maanden oud: actueel' — date, age and band, always together."""
    return f"{_date(advies_datum)}, {age_text(advies_datum, today)} oud: {freshness(advies_datum, today).value}"


def compose_check(
    person: PersonId, markeringen: Sequence[Markering], *, today: date, zicht: Zicht,
    veiligheidshuizen: Veiligheidshuizen, system: str, zaak: str | None = None,
) -> Composed:
    doc = Doc()
    title = f"Check {person.masked}" + (f" (zaak {zaak})" if zaak else "")
    minor = person_is_minor(markeringen, today)
    if not markeringen or zicht.sees_nothing(minor):
        # A person of the group this role sees nothing of reads exactly as one nobody knows: the reply must not
        # tell reclassering that a minor is known (or the RvdK an adult).
        doc.heading(title)
        caveat = one_group_line(zicht)
        doc.line("Voor uw rol niet" if caveat else "Niet", " bekend bij een veiligheidshuis (landelijk gezocht in het ",
                 system, ").")
        if caveat is not None:
            doc.line(caveat)
        doc.line("Vermoedt u complexe problematiek? Meld de persoon dan aan bij het veiligheidshuis met ",
                 Code("!aanmelden"), ".")
        return Composed(doc.build(case_data=True), (), False)

    n = len(markeringen)
    doc.heading(title)
    doc.line(Bold(f"Bekend bij {n} veiligheidshui{'s' if n == 1 else 'zen'}"), " (landelijk gezocht in het ",
             system, ").")
    needs_release = False
    for m in markeringen:
        vh = veiligheidshuizen.get(m.veiligheidshuis)
        fields = zicht.fields(vh, minor)
        elsewhere = zicht.elsewhere(vh)
        name = "Veiligheidshuis in een andere regio" if elsewhere else _vh_name(veiligheidshuizen, m.veiligheidshuis)
        items: list[Sequence[Part]] = []
        if "doelgroep" in fields:
            items.append(("Doelgroep: ", m.doelgroep))
        if "status" in fields:
            items.append(("Status: ", STATUS_LABELS.get(m.status, m.status)))
        if "advies" in fields:
            items.append(("Advies: ", Italic(m.advies)))
        if "geadviseerde_afdoening" in fields:
            items.append(("Geadviseerde afdoening: ", Code(m.geadviseerde_afdoening) if m.geadviseerde_afdoening
                          else "geen opgegeven"))
        if "advies_datum" in fields:
            items.append(("Adviesdatum: ", freshness_text(m.advies_datum, today)))
        if "regisseur" in fields:
            items.append(("Regisseur: ", m.regisseur))
        if "contact" in fields and vh is not None and vh.contact:
            items.append(("Contact: ", vh.contact))
        if "huishouden" in fields and m.huishouden:
            items.append(("Let op: ", Bold("de markering geldt het huishouden/gezin"), ", niet alleen deze persoon."))
        if vh is not None and vh.profiel == "hit-no-hit":
            if vh.key in zicht.vrijgaven and "advies" in fields:
                items.append(("Advies ", zicht.vrijgaven[vh.key], "."))
            elif "advies" in zicht.role_fields(minor):
                items.append(("Het advies wordt per zaak vrijgegeven door het veiligheidshuis (convenant).",))
                needs_release = True
        dated = f", advies van {_date(m.advies_datum)}" if "advies_datum" in fields else ""
        source = "bekend elders" if elsewhere else f"bron: {name}, {system} ({m.bron}){dated}"
        doc.line(Bold(name), f" — {source}")
        doc.bullets(items)
    if needs_release:
        doc.line("Advies nodig voor deze zaak? Vraag vrijgave met ",
                 Code("!vraag-vrijgave <id> [zaak: <parketnummer>]"), ".")
    if minor and "minderjarig" in zicht.fields(None, minor):
        doc.line(Bold("Let op: "), MINOR_NOTICE)
    doc.line(Italic("De bot toont informatie; de beslissing blijft bij de officier."))
    return Composed(doc.build(case_data=True), check_fields(markeringen, zicht, veiligheidshuizen, today), True)


def one_group_line(zicht: Zicht) -> str | None:
    """For a role that sees only adults or only minors (reclassering, RvdK): what a 'not known' means for it."""
    if zicht.velden.meerderjarig and not zicht.velden.minderjarig:
        own, other, whose = "meerderjarigen", "minderjarigen", label("rvdk")
    elif zicht.velden.minderjarig and not zicht.velden.meerderjarig:
        own, other, whose = "minderjarigen", "meerderjarigen", label("reclassering")
    else:
        return None
    return (f"Uw rol ziet alleen informatie over {own}; over {other} ziet u niets (dat is voor {whose}). "
            "Vraag het zo nodig de OvJ of de KPC.")


def _signal_line(item: BatchItem, today: date, vhs: Veiligheidshuizen, zicht: Zicht) -> list[Part]:
    parts: list[Part] = [Bold(item.person.masked), ": bekend bij "]
    where = []
    minor = person_is_minor(item.markeringen, today)
    for m in item.markeringen:
        vh = vhs.get(m.veiligheidshuis)
        fields = zicht.fields(vh, minor) & SIGNAL_FIELDS
        if vh is not None and vh.profiel == "hit-no-hit" and not zicht.in_regio(vh):
            where.append("een veiligheidshuis in een andere regio")
            continue
        details = []
        if "status" in fields:
            details.append(STATUS_LABELS.get(m.status, m.status))
        if "advies_datum" in fields:
            band = freshness(m.advies_datum, today).value
            details.append(f"advies van {_date(m.advies_datum)}, {age_text(m.advies_datum, today)} oud: {band}")
        where.append(_vh_name(vhs, m.veiligheidshuis) + (f" ({'; '.join(details)})" if details else ""))
    parts.append("; ".join(where))
    if minor:
        parts.append(" — minderjarig: VH-informatie stuurt de selectie niet")
    return parts


def compose_batch(
    items: Sequence[BatchItem], *, today: date, veiligheidshuizen: Veiligheidshuizen, system: str,
    zicht: Zicht, known_only: bool = False, source: str = "",
) -> Reply:
    """The compact instroom summary: who is known, where, with how fresh an advice (no advice text)."""
    # Someone of a group the reader sees nothing of is listed as not known (see compose_check).
    known = [i for i in items if i.markeringen and not zicht.sees_nothing(person_is_minor(i.markeringen, today))]
    unknown = [i for i in items if i not in known]
    doc = Doc()
    heading = "Instroomsignaal" if known_only else "Instroom"
    doc.heading(f"{heading}{' van ' + source if source else ''}: {len(known)} van {len(items)} bekend bij een "
                f"veiligheidshuis (bron: {system})")
    doc.bullets([_signal_line(i, today, veiligheidshuizen, zicht) for i in known])
    if not known_only and unknown:
        doc.line("Niet bekend: ", ", ".join(i.person.masked for i in unknown), ".")
    if known:
        doc.line("Details per persoon: ", Code("!check <id>"), ".")
    return doc.build(case_data=True)


def signal_notice(checked: int, source: str) -> Reply:
    """The instroom signal for a room where not every member may see who is known: no persons, no outcome."""
    return Doc().line(Bold("Instroomsignaal" + (f" van {source}" if source else "")), f": {checked} nummer(s) "
                      "gecontroleerd. Niet elk lid van deze room mag de uitkomst zien; een OvJ, parketsecretaris of "
                      "KPC ziet die met ", Code("!instroom <id> ..."), ".").build(case_data=True)


def unavailable_reply(system: str) -> Reply:
    return text(f"Het register ({system}) is nu niet bereikbaar; er is niets gevonden of aangenomen. "
                "Probeer het over enkele minuten opnieuw of bel de bereikbaarheidsdienst van het veiligheidshuis.")
