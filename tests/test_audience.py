"""The room's audience through the console backend: a reply with case data is shown in the room only as far as
every joined member may see it; otherwise the room gets a notice with the masked id and the asker the details in
the direct room; a newcomer who may not see what the room was shown is announced once. The members are fed in
as the Matrix transport feeds them (``Runtime.members_changed``); the real-Synapse path is in
tests/test_audience_matrix.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.transport.console import CONSOLE_ROOM
from domain.publiek import room_fields, room_may_show
from domain.zichtbaarheid import DEFAULT_ROLE_FIELDS, GEEN, RolVelden
from storage.models import AuditRecord
from tests.harness.config import user_for
from tests.harness.console import ConsoleBot
from tests.harness.markings import bot_knowing_an_adult_and_a_minor, bsn

ADULT, MINOR = bsn(70), bsn(71)
OVJ, POLITIE, RECLASSERING, KPC = (user_for(r) for r in ("ovj", "politie", "reclassering", "kpc"))


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    async with bot_knowing_an_adult_and_a_minor(tmp_path, database_url, ADULT, MINOR) as b:
        yield b


async def members(bot: ConsoleBot, *users: str) -> None:
    await bot.runtime.members_changed(CONSOLE_ROOM, frozenset(users))


def notice(person: str) -> str:
    return f"Antwoord op !check BSN ******{person[-3:]} staat in uw directe bericht van de bot."


def test_the_room_sees_the_intersection_of_its_members() -> None:
    v = DEFAULT_ROLE_FIELDS
    assert room_fields(["ovj", "kpc"], v) == v["ovj"]
    assert room_fields(["ovj", "reclassering"], v) == RolVelden(v["ovj"].meerderjarig, frozenset())
    assert room_fields(["ovj", "politie"], v) == GEEN
    assert room_fields(["ovj", None], v) == GEEN  # a member without a role sees nothing
    assert room_fields([], v) == GEEN
    assert not room_may_show(["advies"], [], room_sees_person=True)
    assert room_may_show(["advies"], ["advies", "status"], room_sees_person=True)


async def test_a_police_member_in_the_room_gets_only_the_notice(bot: ConsoleBot) -> None:
    await members(bot, OVJ, POLITIE)
    out = await bot.say(f"!check {ADULT}", as_role="ovj")
    room, direct = out.split("\n", 1)
    assert room == notice(ADULT)
    assert direct.startswith(f"[naar direct:{OVJ}] Check BSN ******{ADULT[-3:]}")
    assert "Advies: Voorwaardelijk sepot" in direct and ADULT not in out
    async with bot.runtime.sessions() as s:
        kinds = list((await s.execute(select(AuditRecord.kind).order_by(AuditRecord.id))).scalars())
    assert "bericht.direct" in kinds


async def test_a_member_without_a_role_keeps_the_details_out_of_the_room(bot: ConsoleBot) -> None:
    await members(bot, OVJ, "@bezoeker:localhost")
    out = await bot.say(f"!check {bsn(72)}", as_role="ovj")  # even a no-hit: that the person is not known
    assert out.split("\n", 1)[0] == notice(bsn(72)) and f"[naar direct:{OVJ}]" in out


async def test_a_room_of_om_roles_reads_the_reply(bot: ConsoleBot) -> None:
    await members(bot, OVJ, KPC)
    out = await bot.say(f"!check {MINOR}", as_role="ovj")
    assert out.startswith(f"Check BSN ******{MINOR[-3:]}") and "[naar direct" not in out


async def test_reclassering_beside_the_ovj_reads_adults_but_not_minors(bot: ConsoleBot) -> None:
    await members(bot, OVJ, RECLASSERING)
    adult = await bot.say(f"!check {ADULT}", as_role="ovj")
    assert "Advies: Voorwaardelijk sepot" in adult and "[naar direct" not in adult
    minor = await bot.say(f"!check {MINOR}", as_role="ovj")
    assert minor.split("\n", 1)[0] == notice(MINOR) and f"[naar direct:{OVJ}] Check BSN" in minor


async def test_a_newcomer_who_may_not_see_what_was_shown_is_announced_once(bot: ConsoleBot) -> None:
    await members(bot, OVJ, KPC)
    assert "Advies:" in await bot.say(f"!check {ADULT}", as_role="ovj")
    await members(bot, OVJ, KPC, POLITIE)
    await members(bot, OVJ, KPC)
    await members(bot, OVJ, KPC, POLITIE)  # left and came back: the room was told already
    await bot.runtime.sender.drain()  # type: ignore[union-attr]
    told = bot.out.getvalue().split("\n")
    expected = (f"Let op: {POLITIE} (politie) is lid van deze room en mag niet alle informatie van "
                "veiligheidshuizen zien die hier eerder is gedeeld. Antwoorden met zaakgegevens gaan vanaf nu alleen "
                "naar het versleutelde directe bericht van wie erom vraagt; is dat niet de bedoeling, haal het lid "
                "dan uit deze room.")
    assert told.count(expected) == 1
    assert (await bot.say(f"!check {ADULT}", as_role="ovj")).split("\n", 1)[0] == notice(ADULT)


async def test_a_newcomer_who_may_see_it_all_is_not_announced(bot: ConsoleBot) -> None:
    await members(bot, OVJ)
    await bot.say(f"!check {ADULT}", as_role="ovj")
    await members(bot, OVJ, KPC, RECLASSERING)  # reclassering may read what an adult's check showed
    await bot.runtime.sender.drain()  # type: ignore[union-attr]
    assert "Let op:" not in bot.out.getvalue()


async def test_a_room_never_seen_counts_as_unknown_and_is_shown_nothing(bot: ConsoleBot) -> None:
    async with bot.runtime.sessions() as s:
        assert await bot.runtime.publiek.room_velden(s, "!onbekend:localhost", OVJ) == GEEN
        assert await bot.runtime.publiek.room_velden(s, CONSOLE_ROOM, OVJ) == DEFAULT_ROLE_FIELDS["ovj"]


async def test_check_config_names_a_room_whose_members_mix_roles(tmp_path: Path, sqlite_url: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``zsm-bot check-config`` reads the members the bot stored: a configured room with the OvJ and the police
    is named; a room of OM roles is not. Before any database exists it says nothing about rooms (and creates
    none)."""
    from cli.main import main
    from tests.harness.config import write_config

    mixed, om = "!gemengd:localhost", "!om:localhost"
    path = write_config(tmp_path, sqlite_url, sections={"matrix": {"rooms": [mixed, om]}})
    db_file = Path(sqlite_url.split("///", 1)[1])
    assert not db_file.exists()
    await asyncio.to_thread(main, ["check-config", "--config", str(path)])  # a CLI: its own event loop
    assert "zitten rollen" not in capsys.readouterr().out and not db_file.exists()

    b = await ConsoleBot.start(path)
    try:
        await b.runtime.members_changed(mixed, frozenset({OVJ, POLITIE, "@bezoeker:localhost"}))
        await b.runtime.members_changed(om, frozenset({OVJ, KPC}))
    finally:
        await b.close()
    await asyncio.to_thread(main, ["check-config", "--config", str(path)])  # exit 2: no Matrix password here
    out = capsys.readouterr().out
    assert (f"let op: matrix.rooms: in {mixed} zitten rollen met verschillend zicht (OvJ, politie, zonder rol); "
            "antwoorden met zaakgegevens gaan daar naar het directe bericht van de vrager. Maak een room per rol als "
            "dat niet de bedoeling is") in out
    assert om not in out
