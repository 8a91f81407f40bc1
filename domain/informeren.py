"""Informing the person (PRIVACY.md): whether and when the person was told that the OM processes their data in
this chain, or why telling them is deferred. The rules for what a record must hold; the record itself is an audit
record (``services.informeren``): it is the evidence, tamper-evident, kept for the audit trail's period and found
by the inzage export with the rest of what happened to the person."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from domain.clock import DayError, parse_day
from domain.errors import UserError
from domain.suggest import nearest


class InformerenStatus(StrEnum):
    GEDAAN = "gedaan"  # the person was informed, on a date, in some way (letter, in person)
    UITGESTELD = "uitgesteld"  # informing is deferred, for a stated reason (an ongoing investigation)


# The audit kinds of the two acts; the latest of them about the person is the person's standing.
KIND = {InformerenStatus.GEDAAN: "informeren.gedaan", InformerenStatus.UITGESTELD: "informeren.uitgesteld"}
STATUS_OF_KIND = {kind: status for status, kind in KIND.items()}
VIEWED = "informeren.opgevraagd"

MIN_REDEN = 10  # a deferral without a real reason is not a record anyone can check later
MAX_TEXT = 300
USAGE = ("!informeren <bsn of skn> gedaan [op: dd-mm-jjjj] [via: brief] of !informeren <bsn of skn> uitgesteld "
         "reden: <waarom>")


def status_of(word: str) -> InformerenStatus:
    for status in InformerenStatus:
        if word.lower() == status.value:
            return status
    near = nearest(word.lower(), [s.value for s in InformerenStatus], limit=1)
    hint = f" Bedoelde u {near[0]}?" if near else ""
    raise UserError(f"Onbekende actie '{word[:20]}'.{hint} Gebruik: {USAGE}.")


def datum(typed: str | None, today: date) -> date:
    """The day the person was informed: today when not given; never in the future."""
    if not typed:
        return today
    try:
        day = parse_day(typed)
    except DayError as exc:
        raise UserError(str(exc)) from None
    if day > today:
        raise UserError(f"De datum {day:%d-%m-%Y} ligt in de toekomst; leg het informeren vast als het gebeurd is.")
    return day


def reden(typed: str | None) -> str:
    text = " ".join((typed or "").split())
    if len(text) < MIN_REDEN:
        raise UserError("Geef de reden van het uitstel, bijvoorbeeld: !informeren <bsn> uitgesteld reden: lopend "
                        "onderzoek naar medeverdachten.")
    return text[:MAX_TEXT]


def via(typed: str | None) -> str | None:
    text = " ".join((typed or "").split())
    return text[:MAX_TEXT] or None
