"""One transcript per role at the table, for an adult and a minor: exactly what each reads after ``!check``.

The default field matrix (domain.zichtbaarheid): the OM roles see everything; reclassering sees dat-informatie and
the advice with its date and freshness for adults and nothing of minors; the RvdK the other way round (pilot
report L319-324, L3688-3720); the police and a member without a role see nothing. Console backend: a room whose
only reader is the asker.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import AuditRecord
from tests.harness.console import ConsoleBot
from tests.harness.markings import bot_knowing_an_adult_and_a_minor, bsn, markering, seed, start_bot

ADULT, MINOR = bsn(60), bsn(61)
ALL = ("advies", "advies_datum", "doelgroep", "geadviseerde_afdoening", "regisseur", "status", "veiligheidshuis")


def full(masked: str, *, minor: bool) -> str:
    lines = [
        f"Check BSN {masked}",
        "Bekend bij 1 veiligheidshuis (landelijk gezocht in het ingebouwd register).",
        "Veiligheidshuis regio Utrecht — bron: Veiligheidshuis regio Utrecht, ingebouwd register (register), "
        "advies van 01-04-2026",
        "• Doelgroep: veelpleger",
        "• Status: plan van aanpak actief",
        "• Advies: Voorwaardelijk sepot met meldplicht bij de regisseur.",
        "• Geadviseerde afdoening: VWSEP",
        "• Adviesdatum: 01-04-2026, 2 maanden oud: actueel",
        "• Regisseur: J. de Regisseur, 030-1234567",
    ]
    if minor:
        lines.append("Let op: Minderjarige: informatie van het veiligheidshuis mag de beslissing bij intake en "
                     "selectie niet sturen (Halt en reprimande volgen objectieve criteria). Een Halt- of "
                     "reprimandebeslissing wordt wel teruggekoppeld aan het veiligheidshuis.")
    lines.append("De bot toont informatie; de beslissing blijft bij de officier.")
    return "\n".join(lines)


def nothing_for(masked: str, own: str, other: str, whose: str) -> str:
    """A person of the group the role sees nothing of reads exactly as an unknown person does."""
    return (f"Check BSN {masked}\nVoor uw rol niet bekend bij een veiligheidshuis (landelijk gezocht in het "
            f"ingebouwd register).\nUw rol ziet alleen informatie over {own}; over {other} ziet u niets (dat is voor "
            f"{whose}). Vraag het zo nodig de OvJ of de KPC.\nVermoedt u complexe problematiek? Meld de persoon dan "
            "aan bij het veiligheidshuis met !aanmelden.")


REFUSED = ("U mag !check niet gebruiken: daarvoor is de rol OvJ, parketsecretaris, KPC, reclassering, RvdK nodig "
           "(uw rol: {role}).")
NO_ROLE = ("U heeft geen rol in de ZSM-afstemmingsbot en kunt geen commando's geven. Vraag de beheerder om uw "
           "account aan een rol te koppelen.")

A, M = "******" + ADULT[-3:], "******" + MINOR[-3:]
# role -> (reply for the adult, fields audited; reply for the minor, fields audited); None: refused, no lookup
EXPECTED: dict[str, tuple[str, tuple[str, ...] | None, str, tuple[str, ...] | None]] = {
    "ovj": (full(A, minor=False), ALL, full(M, minor=True), (*ALL, "minderjarig")),
    "parketsecretaris": (full(A, minor=False), ALL, full(M, minor=True), (*ALL, "minderjarig")),
    "kpc": (full(A, minor=False), ALL, full(M, minor=True), (*ALL, "minderjarig")),
    "reclassering": (full(A, minor=False), ALL, nothing_for(M, "meerderjarigen", "minderjarigen", "RvdK"), ()),
    "rvdk": (nothing_for(A, "minderjarigen", "meerderjarigen", "reclassering"), (), full(M, minor=True),
             (*ALL, "minderjarig")),
    "politie": (REFUSED.format(role="politie"), None, REFUSED.format(role="politie"), None),
}


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    async with bot_knowing_an_adult_and_a_minor(tmp_path, database_url, ADULT, MINOR) as b:
        yield b


async def audited_fields(bot: ConsoleBot) -> list[tuple[str, ...]]:
    async with bot.runtime.sessions() as s:
        rows = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging")
                                .order_by(AuditRecord.id))).scalars()
        return [tuple(sorted(r.details["velden"])) for r in rows]


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_each_role_reads_exactly_its_fields_for_an_adult_and_a_minor(bot: ConsoleBot, role: str) -> None:
    adult_reply, adult_fields, minor_reply, minor_fields = EXPECTED[role]
    assert await bot.say(f"!check {ADULT}", as_role=role) == adult_reply
    assert await bot.say(f"!check {MINOR}", as_role=role) == minor_reply
    expected = [tuple(sorted(f)) for f in (adult_fields, minor_fields) if f is not None]
    assert await audited_fields(bot) == expected


async def test_a_hidden_minor_reads_as_an_unknown_person(bot: ConsoleBot) -> None:
    """Reclassering cannot tell a known minor from a person nobody knows, in !check and in !instroom."""
    unknown = bsn(64)
    hidden = await bot.say(f"!check {MINOR}", as_role="reclassering")
    nobody = await bot.say(f"!check {unknown}", as_role="reclassering")
    assert hidden.replace(MINOR[-3:], "###") == nobody.replace(unknown[-3:], "###")
    batch = await bot.say(f"!instroom {MINOR} {unknown} {ADULT}", as_role="reclassering")
    assert "Instroom: 1 van 3 bekend" in batch and f"Niet bekend: BSN {M}, BSN ******{unknown[-3:]}." in batch


async def test_a_member_without_a_role_reads_nothing(bot: ConsoleBot) -> None:
    for person in (ADULT, MINOR):
        assert await bot.say(f"!check {person}", as_user="@bezoeker:localhost") == NO_ROLE
    assert await audited_fields(bot) == []


async def test_a_region_may_give_reclassering_minors_within_the_matrix(tmp_path: Path, sqlite_url: str) -> None:
    """``[permissions.velden]`` per group: this region lets reclassering see minors' dat-informatie only."""
    b = await start_bot(tmp_path, sqlite_url, sections={"permissions.velden.reclassering": {
        "meerderjarig": ["veiligheidshuis", "status"], "minderjarig": ["veiligheidshuis", "regisseur"]}})
    try:
        await seed(b, markering(ADULT), markering(MINOR, geboortedatum=date(2010, 3, 1)))
        adult = await b.say(f"!check {ADULT}", as_role="reclassering")
        minor = await b.say(f"!check {MINOR}", as_role="reclassering")
        assert "Status: plan van aanpak actief" in adult and "Regisseur" not in adult and "Advies" not in adult
        assert "Regisseur: J. de Regisseur" in minor and "Status" not in minor and "Advies" not in minor
    finally:
        await b.close()


@pytest.mark.parametrize(("velden", "message"), [
    ({"kinderen": ["status"]}, "permissions.velden.reclassering.kinderen: onbekende groep; kies uit meerderjarig"),
    ({"minderjarig": "status"}, "permissions.velden.reclassering.minderjarig: verwacht een lijst"),
    ({"minderjarig": ["diagnose"]}, "permissions.velden.reclassering.minderjarig: onbekend veld 'diagnose'"),
])
def test_a_bad_group_line_is_refused_with_what_to_write(tmp_path: Path, velden: dict[str, object],
                                                        message: str) -> None:
    from config.settings import ConfigError, load_settings
    from tests.harness.config import write_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db",
                                   sections={"permissions.velden.reclassering": velden}))


def test_the_police_get_no_group_either(tmp_path: Path) -> None:
    from config.settings import ConfigError, load_settings
    from tests.harness.config import write_config

    with pytest.raises(ConfigError, match=re.escape("permissions.velden.politie.minderjarig: de rol politie mag geen")):
        load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db",
                                   sections={"permissions.velden.politie": {"minderjarig": ["status"]}}))


async def test_the_mail_names_the_rvdk_for_a_minors_report(bot: ConsoleBot) -> None:
    """The terugkoppeling's report line: reclassering for an adult, the RvdK for a minor (PROCESS.md step 2)."""
    from storage.besluit_models import OutboxMail

    adult, minor = bsn(62), bsn(63)
    await seed(bot, markering(adult, geadviseerde_afdoening="vs"),
               markering(minor, geadviseerde_afdoening="vs", geboortedatum=date(2010, 3, 1)))
    for person, zaak in ((adult, "2026-1"), (minor, "2026-2")):
        reply = await bot.say(f"!besluit {person} vs reclassering zaak: {zaak}", as_role="ovj")  # as advised
        assert "Besluit" in reply or "besluit" in reply, reply
    async with bot.runtime.sessions() as s:
        bodies = [m.body_text or "" for m in (await s.execute(select(OutboxMail).order_by(OutboxMail.id))).scalars()]
    assert len(bodies) == 2
    assert "\nReclassering om een rapport gevraagd: ja\n" in bodies[0] and "RvdK" not in bodies[0]
    assert "\nRaad voor de Kinderbescherming (RvdK) om een rapport gevraagd: ja\n" in bodies[1]
    assert "Reclassering om" not in bodies[1]
