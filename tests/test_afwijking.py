"""Deviation from the veiligheidshuis's advice (issue 14, point 3), as transcripts with the exact replies.

Against a real SMTP server (aiosmtpd) so the terugkoppeling mail is read as the house receives it. The clock is
fixed at 20-11-2026 11:00 (Amsterdam); an advice of 01-10-2026 is current, one of 01-10-2025 is older than 12
months and gives no duty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from config.reference import load_afdoeningen
from domain.afdoeningen import Kennis, advies_uitkomst, feedback_for
from domain.afwijking import Verhouding, weeg
from storage.besluit_models import BesluitRow
from tests.harness.console import ConsoleBot
from tests.smtp_helpers import SmtpServer
from tests.test_besluit import ADULT, MINOR, deliver, marking, plain, start_bot

STALE = "111222333"  # an adult whose advice (osb) dates from 01-10-2025: older than 12 months on 20-11-2026


@pytest.fixture
async def bot(tmp_path: Path, sqlite_url: str, smtp: SmtpServer,
              cert: tuple[Path, Path]) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, sqlite_url, smtp.port, cert[0], [
        marking(ADULT, born=date(1990, 1, 1), advised="osb"),
        marking(MINOR, born=date(2011, 5, 5), advised="vs"),
        marking(STALE, born=date(1985, 3, 3), advised="osb", advies_datum=date(2025, 10, 1)),
    ])
    yield b
    await b.close()


async def decisions(bot: ConsoleBot) -> list[BesluitRow]:
    async with bot.runtime.sessions() as s:
        rows = list((await s.execute(select(BesluitRow).order_by(BesluitRow.id))).scalars())
        await s.commit()
    return rows


def without_ref(reply: str) -> str:
    """The mail reference (T-...) is a hash of the event; everything before it is compared exactly."""
    return reply.rsplit("\n• T-", 1)[0]


QUEUED = "Mail klaargezet (ongedaan maken kan binnen 60 s zolang niet verzonden):"


async def test_coded_advice_followed(bot: ConsoleBot, smtp: SmtpServer) -> None:
    reply = await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    assert without_ref(reply) == (
        "Besluit vastgelegd voor BSN ******782: OM-strafbeschikking.\n"
        "Advies van het veiligheidshuis: gevolgd.\n"
        "Terugkoppeling: persoon bekend bij het veiligheidshuis: terugkoppeling.\n" + QUEUED)
    await deliver(bot)
    text = plain(smtp.collector.received[0]).replace("\r\n", "\n")
    assert "Advies van het veiligheidshuis: gevolgd\n" in text and "Motivering" not in text
    assert [r.advies_verhouding for r in await decisions(bot)] == ["gevolgd"]


async def test_deviation_without_then_with_motivation(bot: ConsoleBot, smtp: SmtpServer) -> None:
    refused = await bot.say(f"!besluit {ADULT} pr", as_role="ovj")
    assert refused == ("Dit wijkt af van het actuele advies van Veiligheidshuis regio Utrecht (osb). "
                       "Voeg een motivering toe: 'motivering: <reden van afwijken>'.")
    assert await decisions(bot) == []  # nothing recorded, nothing queued
    reply = await bot.say(f"!besluit {ADULT} pr motivering: licht feit, eerste keer", as_role="ovj")
    assert without_ref(reply) == (
        "Besluit vastgelegd voor BSN ******782: Dagvaarding politierechter.\n"
        "Afgeweken van het advies van het veiligheidshuis; motivering: licht feit, eerste keer.\n"
        "Terugkoppeling: persoon bekend bij het veiligheidshuis: terugkoppeling.\n" + QUEUED)
    await deliver(bot)
    text = plain(smtp.collector.received[0]).replace("\r\n", "\n")
    assert ("Advies van het veiligheidshuis: afgeweken\n"
            "Motivering van de afwijking van het advies: licht feit, eerste keer\n") in text
    [row] = await decisions(bot)
    assert (row.advies_verhouding, row.motivering) == ("afgeweken", "licht feit, eerste keer")
    empty = await bot.say(f"!besluit {ADULT} pr motivering:", as_role="ovj")
    assert empty == "'motivering:' is leeg. Schrijf de reden erachter, bijvoorbeeld: motivering: licht feit."


async def test_minor_selection_stage_sepot_needs_no_motivation(bot: ConsoleBot, smtp: SmtpServer) -> None:
    """The minor's advice is vs; a sepot for lack of evidence (02) and a policy sepot are taken at the selection
    stage, where VH information does not steer the decision (L3638-3648): no motivation asked, no deviation
    counted. The same policy sepot for an adult against a current advice is a deviation."""
    reply = await bot.say(f"!besluit {MINOR} 02", as_role="ovj")
    assert without_ref(reply) == (
        "Besluit vastgelegd voor BSN ******990: Technisch sepot 02: onvoldoende wettig bewijs.\n"
        "Het advies hoeft hier niet gevolgd te worden (technisch sepot of selectiebeslissing bij een minderjarige).\n"
        "Terugkoppeling: sepot: alleen 'binnengekomen bij ZSM, zaak geseponeerd'.\n" + QUEUED)
    policy = await bot.say(f"!besluit {MINOR} bs-gering zaak: 2026-2", as_role="ovj")
    assert policy.startswith("Besluit vastgelegd voor BSN ******990: Beleidssepot: gering feit (zaak 2026-2).\n"
                             "Het advies hoeft hier niet gevolgd te worden")
    adult = await bot.say(f"!besluit {ADULT} bs-gering", as_role="ovj")
    assert adult.startswith("Dit wijkt af van het actuele advies van Veiligheidshuis regio Utrecht (osb).")
    assert [r.advies_verhouding for r in await decisions(bot)] == ["vrijgesteld", "vrijgesteld"]
    await deliver(bot)
    assert all("afgeweken" not in plain(m) for m in smtp.collector.received)


async def test_stale_advice_gives_no_duty(bot: ConsoleBot, smtp: SmtpServer) -> None:
    reply = await bot.say(f"!besluit {STALE} pr", as_role="ovj")
    assert without_ref(reply) == (
        "Besluit vastgelegd voor BSN ******333: Dagvaarding politierechter.\n"
        "Terugkoppeling: persoon bekend bij het veiligheidshuis: terugkoppeling.\n" + QUEUED)
    await deliver(bot)
    text = plain(smtp.collector.received[0]).replace("\r\n", "\n")
    assert "Advies van het veiligheidshuis" not in text
    assert [r.advies_verhouding for r in await decisions(bot)] == ["geen_advies"]


def test_rule_table() -> None:
    """The one rule (domain.afwijking) behind the refusal, the row, the mail and the figures."""
    cat = load_afdoeningen()
    adult, minor = Kennis("utrecht", False, "osb", True), Kennis("utrecht", True, "vs", True)
    cases = [
        ("osb", adult, Verhouding.GEVOLGD), ("pr", adult, Verhouding.AFGEWEKEN),
        ("sepot02", adult, Verhouding.VRIJGESTELD), ("beleidssepot-gering", adult, Verhouding.AFGEWEKEN),
        ("beleidssepot-gering", minor, Verhouding.VRIJGESTELD), ("halt", minor, Verhouding.VRIJGESTELD),
        ("pr", minor, Verhouding.AFGEWEKEN), ("pr", Kennis("utrecht", False, "osb", False), Verhouding.GEEN_ADVIES),
        ("pr", Kennis("utrecht", False, "geen", True), Verhouding.GEEN_ADVIES),
        ("pr", Kennis("utrecht", False, None, True), Verhouding.GEEN_ADVIES),
    ]
    for code, k, want in cases:
        a = cat.get(code)
        assert a is not None
        assert weeg(a.code, a.technisch, a.selectie, [k]).verhouding is want, (code, k)
        assert feedback_for(a, [k]).weigering is None or want is Verhouding.AFGEWEKEN
        assert advies_uitkomst(a, k) == want.value  # exempt decisions are counted apart ("vrijgesteld")


async def test_advies_answer_needs_a_code_and_then_steers_besluit(tmp_path: Path, sqlite_url: str) -> None:
    """An ``!advies`` answer without a coded afdoening is refused; with one it replaces the registry's advice, so a
    later ``!besluit`` that deviates from it needs a motivation and is counted as a deviation (L1120-1124)."""
    from tests.test_aanvraag import BSN, DUTY, open_request, roster, seed
    from tests.test_aanvraag import start as start_aanvraag

    bot, _clock = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed(bot)
        await roster(bot)
        await open_request(bot)
        no_code = await bot.say("!advies A1 Voorwaardelijk sepot met hulpverlening; plan loopt.", as_user=DUTY)
        assert no_code == ("Begin het advies met de code van de geadviseerde afdoening of met 'geen'. Bedoelde u vs "
                           "of rc of raadsonderzoek? Bijvoorbeeld: !advies A1 vs voorwaardelijk sepot, plan van "
                           "aanpak loopt.")
        near = await bot.say("!advies A1 vss met hulpverlening; plan van aanpak loopt.", as_user=DUTY)
        assert near.startswith("Begin het advies met de code van de geadviseerde afdoening of met 'geen'. "
                               "Bedoelde u vs")
        short = await bot.say("!advies A1 vs", as_user=DUTY)
        assert short == ("Er ontbreekt <tekst> (het advies met reden). Gebruik: !advies <nummer> <afdoening> <tekst> "
                         "... — zie !help advies.")
        ok = await bot.say("!advies A1 vs Voorwaardelijk sepot met hulpverlening; plan van aanpak loopt.",
                           as_user=DUTY)
        assert "Geadviseerde afdoening: Voorwaardelijk sepot (vs)." in ok
        refused = await bot.say(f"!besluit {BSN} pr", as_role="ovj")
        assert refused == ("Dit wijkt af van het actuele advies van Veiligheidshuis regio Utrecht (vs). "
                           "Voeg een motivering toe: 'motivering: <reden van afwijken>'.")
        reply = await bot.say(f"!besluit {BSN} pr motivering: ernstig geweld, zitting nodig", as_role="ovj")
        assert "Afgeweken van het advies van het veiligheidshuis; motivering: ernstig geweld, zitting nodig." in reply
        assert [r.advies_verhouding for r in await decisions(bot)] == ["afgeweken"]
        figures = await bot.say("!rapport", as_role="kpc")
        assert "afgeweken" in figures.lower(), figures
    finally:
        await bot.close()


async def test_advies_geen_gives_no_duty(tmp_path: Path, sqlite_url: str) -> None:
    from tests.test_aanvraag import BSN, DUTY, open_request, roster, seed
    from tests.test_aanvraag import start as start_aanvraag

    bot, _clock = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed(bot)
        await roster(bot)
        await open_request(bot)
        ok = await bot.say("!advies A1 geen Geen voorkeur; wel graag terugkoppeling.", as_user=DUTY)
        assert "Geadviseerde afdoening: geen specifieke afdoening." in ok
        reply = await bot.say(f"!besluit {BSN} pr", as_role="ovj")
        assert reply.startswith("Besluit vastgelegd voor BSN ******782: Dagvaarding politierechter.\n"
                                "Terugkoppeling:")
        assert [r.advies_verhouding for r in await decisions(bot)] == ["geen_advies"]
    finally:
        await bot.close()


async def test_an_advies_answer_on_an_unmarked_suspect_brings_the_deviation_duty(tmp_path: Path,
                                                                                  database_url: str) -> None:
    """No house marked the suspect, so the !advies answer has no marking to replace: it is kept on the request and
    the next !besluit weighs it like a marking's advice (issue 14: deviation after an answer on request)."""
    from tests.test_aanvraag import roster
    from tests.test_aanvraag import start as start_aanvraag

    unmarked = "111222333"
    bot, _clock = await start_aanvraag(tmp_path, database_url)
    try:
        await roster(bot)
        opened = await bot.say(f"!aanvraag {unmarked} type: hg vh: utrecht feit: mishandeling partner in de woning "
                               "voornemen: voorwaardelijk sepot", as_role="kpc")
        assert opened.startswith("Aanvraag A1 verstuurd"), opened
        await bot.say("!advies A1 vs Voorwaardelijk sepot met hulpverlening.", as_user="@jan.dienst:localhost")
        refused = await bot.say(f"!besluit {unmarked} osb", as_role="ovj")
        assert refused == ("Dit wijkt af van het actuele advies van Veiligheidshuis regio Utrecht (vs). Voeg een "
                           "motivering toe: 'motivering: <reden van afwijken>'.")
        deviated = await bot.say(f"!besluit {unmarked} osb motivering: eerder geweld", as_role="ovj")
        assert "Afgeweken van het advies van het veiligheidshuis; motivering: eerder geweld." in deviated
        followed = await bot.say(f"!besluit {unmarked} vs zaak: 2", as_role="ovj")
        assert "Advies van het veiligheidshuis: gevolgd." in followed
    finally:
        await bot.close()
