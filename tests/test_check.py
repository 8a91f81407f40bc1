"""``!check`` on the built-in registry: the full reply, the rules, the audit record, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from commands.vh_view import ALL_FIELDS, MINOR_NOTICE, STATUS_LABELS, Zicht, compose_check
from config.settings import ConfigError
from domain.advies import Freshness, age_text
from domain.identifiers import parse_person_id
from domain.roles import ROLES, VH_INFO_ROLES
from domain.zichtbaarheid import RolVelden
from storage.models import AuditRecord
from tests.harness.console import ConsoleBot
from tests.harness.markings import TODAY, bsn, markering, seed, start_bot


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, database_url)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def sqlite_bot(tmp_path: Path, sqlite_url: str) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, sqlite_url)
    try:
        yield b
    finally:
        await b.close()


async def checks(bot: ConsoleBot) -> list[AuditRecord]:
    async with bot.runtime.sessions() as s:
        return list((await s.execute(
            select(AuditRecord).where(AuditRecord.kind == "register.raadpleging").order_by(AuditRecord.id)
        )).scalars())


async def test_known_at_two_veiligheidshuizen_shows_everything_with_source(bot: ConsoleBot) -> None:
    person = bsn(1)
    await seed(bot,
               markering(person, "utrecht", huishouden=True),
               markering(person, "twente", doelgroep="huiselijk geweld", status="afgesloten",
                         advies="Geen bezwaar tegen taakstraf.", geadviseerde_afdoening=None,
                         advies_datum=date(2025, 11, 1), regisseur="M. Twente, 053-7654321"),
               markering(bsn(2), "rotterdam"))
    reply = await bot.say(f"!check {person}", as_role="ovj")
    vhs = bot.runtime.services.veiligheidshuizen
    utrecht, twente = vhs.get("utrecht"), vhs.get("twente")
    assert utrecht and twente
    assert person not in reply and "******" + person[-3:] in reply
    assert "Bekend bij 2 veiligheidshuizen" in reply
    for vh in (utrecht, twente):
        assert f"{vh.naam} — bron: {vh.naam}, {bot.runtime.services.registry.name}" in reply
    assert vhs.get("rotterdam").naam not in reply  # type: ignore[union-attr]
    assert "Doelgroep: veelpleger" in reply and "Doelgroep: huiselijk geweld" in reply
    assert f"Status: {STATUS_LABELS['actief']}" in reply and f"Status: {STATUS_LABELS['afgesloten']}" in reply
    assert "Advies: Voorwaardelijk sepot met meldplicht" in reply and "Geen bezwaar tegen taakstraf." in reply
    assert "Geadviseerde afdoening: VWSEP" in reply and "Geadviseerde afdoening: geen opgegeven" in reply
    assert f"01-04-2026, {age_text(date(2026, 4, 1), TODAY)} oud: {Freshness.CURRENT.value}" in reply
    assert f"01-11-2025, {age_text(date(2025, 11, 1), TODAY)} oud: {Freshness.LESS_WEIGHT.value}" in reply
    assert "Regisseur: J. de Regisseur, 030-1234567" in reply and "M. Twente, 053-7654321" in reply
    assert reply.count("huishouden/gezin") == 1
    assert MINOR_NOTICE not in reply
    [rec] = await checks(bot)
    assert rec.actor == "@ovj:localhost" and rec.role == "ovj"
    assert rec.subject == bot.runtime.auditor.subject_of(person)
    assert rec.details["uitkomst"] == "hit" and rec.details["veiligheidshuizen"] == ["twente", "utrecht"]
    assert {"advies", "doelgroep", "status", "regisseur", "advies_datum", "huishouden"} <= set(rec.details["velden"])
    assert person not in str(rec.details)


async def test_html_reply_escapes_registry_text(sqlite_bot: ConsoleBot) -> None:
    person = bsn(3)
    await seed(sqlite_bot, markering(person, advies="<b>vet</b> & meer"))
    assert "Advies: <b>vet</b> & meer" in await sqlite_bot.say(f"!check {person}")
    composed = compose_check(parse_person_id(person), [markering(person, advies="<b>vet</b>")], today=TODAY,
                             zicht=Zicht(RolVelden.beide(ALL_FIELDS)), system="x",
                             veiligheidshuizen=sqlite_bot.runtime.services.veiligheidshuizen)
    assert "&lt;b&gt;vet&lt;/b&gt;" in composed.reply.html and "<b>" not in composed.reply.html
    assert composed.reply.case_data


@pytest.mark.parametrize(("advies_datum", "band"), [
    (date(2026, 6, 15), Freshness.CURRENT),
    (date(2025, 12, 15), Freshness.CURRENT),       # exactly 6 months: still current
    (date(2025, 12, 14), Freshness.LESS_WEIGHT),
    (date(2025, 6, 15), Freshness.LESS_WEIGHT),    # exactly 12 months
    (date(2025, 6, 14), Freshness.NOT_CURRENT),
    (date(2019, 1, 1), Freshness.NOT_CURRENT),
])
async def test_freshness_band_shown_plainly(sqlite_bot: ConsoleBot, advies_datum: date, band: Freshness) -> None:
    person = bsn(4)
    await seed(sqlite_bot, markering(person, advies_datum=advies_datum))
    reply = await sqlite_bot.say(f"!check {person}")
    assert f"{advies_datum:%d-%m-%Y}, {age_text(advies_datum, TODAY)} oud: {band.value}" in reply
    assert f"advies van {advies_datum:%d-%m-%Y}" in reply


@pytest.mark.parametrize(("born", "minor"), [
    (date(2010, 3, 1), True),
    (date(2008, 6, 16), True),     # 18 tomorrow
    (date(2008, 6, 15), False),    # 18 today
    (date(1990, 1, 1), False),
])
async def test_minor_statement_by_birth_date_on_day_of_check(sqlite_bot: ConsoleBot, born: date, minor: bool) -> None:
    person = bsn(5)
    await seed(sqlite_bot, markering(person, geboortedatum=born))
    reply = await sqlite_bot.say(f"!check {person}")
    assert (MINOR_NOTICE in reply) is minor
    [rec] = await checks(sqlite_bot)
    assert ("minderjarig" in rec.details["velden"]) is minor


async def test_unknown_person_says_so_and_mentions_aanmelden(bot: ConsoleBot) -> None:
    await seed(bot, markering(bsn(6)))
    reply = await bot.say(f"!check {bsn(7)}", as_role="kpc")
    assert "Niet bekend bij een veiligheidshuis" in reply and "!aanmelden" in reply
    assert "******" + bsn(7)[-3:] in reply and bsn(7) not in reply
    [rec] = await checks(bot)
    assert rec.details["uitkomst"] == "no-hit" and rec.details["velden"] == [] and rec.role == "kpc"


async def test_lookup_by_skn(bot: ConsoleBot) -> None:
    await seed(bot, markering(bsn(8), skn="12345678"))
    reply = await bot.say("!check skn:12345678")
    assert "Check SKN 12345678" in reply and "Bekend bij 1 veiligheidshuis" in reply
    assert "Bekend" in await bot.say("!check 12345678")
    assert "Niet bekend" in await bot.say("!check skn:87654321")


@pytest.mark.parametrize(("typed", "expected"), [
    ("123456789", "elfproef"),
    ("12345", "niet herkend"),
    ("abcdefghi", "geen geldig nummer"),
    ("skn:12", "6 tot 12 cijfers"),
])
async def test_bad_identifier_gets_dutch_answer_with_usage(sqlite_bot: ConsoleBot, typed: str,
                                                           expected: str) -> None:
    reply = await sqlite_bot.say(f"!check {typed}")
    assert expected in reply and "Gebruik: !check" in reply
    assert await checks(sqlite_bot) == []


@pytest.mark.parametrize("typed", ["123-456-782", "123.456.78x", "1-2-3-4-5-6-7-8-2", "12345678x"])
async def test_refused_number_shows_no_more_digits_than_a_masked_bsn(sqlite_bot: ConsoleBot, typed: str) -> None:
    """Whatever the separators, the refusal echoes at most the last three digits, as the masked BSN does."""
    reply = await sqlite_bot.say(f"!check {typed}")
    assert "geen geldig nummer" in reply
    assert sum(c.isdigit() for c in reply.split("Geef")[0]) == 3, reply


async def test_missing_and_extra_words(sqlite_bot: ConsoleBot) -> None:
    assert "Er ontbreekt <id>" in await sqlite_bot.say("!check")
    reply = await sqlite_bot.say(f"!check {bsn(1)} {bsn(2)}")
    assert "Te veel woorden" in reply and "Gebruik: !check" in reply


async def test_zaak_goes_into_audit_record(bot: ConsoleBot) -> None:
    await bot.say(f"!check {bsn(9)} zaak: 10/123456-26")
    [rec] = await checks(bot)
    assert rec.details["zaak"] == "10/123456-26"
    assert "te lang" in await bot.say(f"!check {bsn(9)} zaak: {'x' * 80}")


async def test_zaak_can_be_required(tmp_path: Path, sqlite_url: str) -> None:
    bot = await start_bot(tmp_path, sqlite_url, sections={"check": {"zaak_verplicht": True}})
    try:
        reply = await bot.say(f"!check {bsn(10)}")
        assert "zaaknummer" in reply and "zaak: <parketnummer>" in reply
        assert await checks(bot) == []
        assert "Niet bekend" in await bot.say(f"!check {bsn(10)} zaak: PL0900-2026123456")
        [rec] = await checks(bot)
        assert rec.details["zaak"] == "PL0900-2026123456"
    finally:
        await bot.close()


async def test_allowed_identifier_types_are_a_setting(tmp_path: Path, sqlite_url: str) -> None:
    bot = await start_bot(tmp_path, sqlite_url, sections={"check": {"identificatie": ["bsn"]}})
    try:
        assert "SKN is in deze regio niet toegestaan" in await bot.say("!check skn:12345678")
        assert "Niet bekend" in await bot.say(f"!check {bsn(11)}")
    finally:
        await bot.close()


@pytest.mark.parametrize("config", [{"identificatie": ["bsn", "gba"]}, {"identificatie": []},
                                    {"zaak_verplicht": "ja"}])
async def test_bad_check_settings_stop_the_start(tmp_path: Path, sqlite_url: str, config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^check\."):
        await start_bot(tmp_path, sqlite_url, sections={"check": config})


@pytest.mark.parametrize("role", sorted(ROLES - VH_INFO_ROLES))
async def test_roles_without_vh_access_are_refused(sqlite_bot: ConsoleBot, role: str) -> None:
    await seed(sqlite_bot, markering(bsn(12)))
    reply = await sqlite_bot.say(f"!check {bsn(12)}", as_role=role)
    assert "U mag !check niet gebruiken" in reply and "veelpleger" not in reply
    assert await checks(sqlite_bot) == []


async def test_police_stays_refused_even_if_permissions_grant_it(tmp_path: Path, sqlite_url: str) -> None:
    bot = await start_bot(tmp_path, sqlite_url, sections={"permissions": {"check": ["ovj", "politie"]}})
    try:
        await seed(bot, markering(bsn(13)))
        reply = await bot.say(f"!check {bsn(13)}", as_role="politie")
        assert "geeft geen toegang tot informatie van veiligheidshuizen" in reply and "veelpleger" not in reply
        assert "Bekend" in await bot.say(f"!check {bsn(13)}", as_role="ovj")
    finally:
        await bot.close()


async def test_help_lists_check_for_allowed_roles_only(sqlite_bot: ConsoleBot) -> None:
    assert "!check <id>" in await sqlite_bot.say("!help", as_role="ovj")
    assert "!check" not in await sqlite_bot.say("!help", as_role="politie")
    assert "zaak:" in await sqlite_bot.say("!help check")


def test_disclosed_fields_match_the_reply() -> None:
    """The audit record's fields come from the same rule that composes the reply (domain.zicht.check_fields)."""
    from config.reference import load_veiligheidshuizen
    from domain.zicht import check_fields

    vhs = load_veiligheidshuizen()
    m = markering(bsn(1), geboortedatum=date(TODAY.year - 16, 1, 1), huishouden=True)
    zicht = Zicht(RolVelden.beide(ALL_FIELDS))
    composed = compose_check(parse_person_id(m.bsn), [m], today=TODAY, zicht=zicht, veiligheidshuizen=vhs,
                             system="test")
    assert composed.shown == check_fields([m], zicht, vhs, TODAY)
    assert {"veiligheidshuis", "advies", "huishouden", "minderjarig"} <= set(composed.shown)
