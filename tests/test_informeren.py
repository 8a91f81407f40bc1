"""``!informeren``: whether and when the person was informed, or why that is deferred (PRIVACY.md), recorded in
the audit trail and shown back; exact replies through the console backend, on both databases."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.transport.console import CONSOLE_ROOM
from domain.clock import FixedClock
from domain.regimes import OM
from storage.models import AuditRecord
from tests.harness.config import user_for, write_config
from tests.harness.console import ConsoleBot

BSN = "123456782"
MASKED = "BSN ******782"
OVJ, KPC, POLITIE = (user_for(r) for r in ("ovj", "kpc", "politie"))
NOW = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)  # 10:15 in Amsterdam
USAGE = ("!informeren <bsn of skn> gedaan [op: dd-mm-jjjj] [via: brief] of !informeren <bsn of skn> uitgesteld "
         "reden: <waarom>")


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    b = await ConsoleBot.start(write_config(tmp_path, database_url), clock=FixedClock(NOW))
    try:
        yield b
    finally:
        await b.close()


async def records(bot: ConsoleBot) -> list[AuditRecord]:
    async with bot.runtime.sessions() as s:
        rows = list((await s.execute(select(AuditRecord).where(AuditRecord.kind.like("informeren.%"))
                                     .order_by(AuditRecord.id))).scalars())
        await s.commit()
    return rows


async def test_record_and_show_the_standing(bot: ConsoleBot) -> None:
    assert await bot.say(f"!informeren {BSN}") == (
        f"Informeren van {MASKED}: nog niets vastgelegd.\nLeg het vast met {USAGE}.")
    assert await bot.say(f"!informeren {BSN} uitgesteld reden: lopend onderzoek naar medeverdachten",
                         as_role="kpc") == (
        f"Vastgelegd: het informeren van {MASKED} is uitgesteld. Reden: lopend onderzoek naar medeverdachten\n"
        f"Leg het vast met !informeren {MASKED} gedaan zodra het gebeurd is.")
    assert await bot.say(f"!informeren {BSN}") == (
        f"Informeren van {MASKED}: uitgesteld sinds 30-11-2026 10:15 (door {KPC}). "
        "Reden: lopend onderzoek naar medeverdachten")
    assert await bot.say(f"!informeren {BSN} gedaan op: 27-11-2026 via: brief") == (
        f"Vastgelegd: {MASKED} is geïnformeerd op 27-11-2026 (via brief).")
    assert await bot.say(f"!informeren {BSN}", as_role="parketsecretaris") == (
        f"Informeren van {MASKED}: geïnformeerd op 27-11-2026 via brief (vastgelegd door {OVJ} op "
        "30-11-2026 10:15).")
    assert await bot.say(f"!informeren {BSN} gedaan") == f"Vastgelegd: {MASKED} is geïnformeerd op 30-11-2026."

    rows = await records(bot)
    assert [r.kind for r in rows] == ["informeren.opgevraagd", "informeren.uitgesteld", "informeren.opgevraagd",
                                      "informeren.gedaan", "informeren.opgevraagd", "informeren.gedaan"]
    subject = bot.runtime.auditor.subject_of(BSN)
    assert {r.subject for r in rows} == {subject}
    assert [r.details.get("stand") for r in rows if r.kind == "informeren.opgevraagd"] == [
        "geen", "uitgesteld", "gedaan"]
    done = rows[3].details
    assert (done["op"], done["via"], rows[3].actor, rows[3].role) == ("2026-11-27", "brief", OVJ, "ovj")
    assert all(BSN not in json.dumps(r.details) for r in rows)


async def test_bad_input_gets_one_line_that_says_what_to_type(bot: ConsoleBot) -> None:
    assert await bot.say(f"!informeren {BSN} gedan") == f"Onbekende actie 'gedan'. Bedoelde u gedaan? Gebruik: {USAGE}."
    assert await bot.say(f"!informeren {BSN} uitgesteld") == (
        "Geef de reden van het uitstel, bijvoorbeeld: !informeren <bsn> uitgesteld reden: lopend onderzoek naar "
        "medeverdachten.")
    assert await bot.say(f"!informeren {BSN} uitgesteld reden: nee") == (
        "Geef de reden van het uitstel, bijvoorbeeld: !informeren <bsn> uitgesteld reden: lopend onderzoek naar "
        "medeverdachten.")
    assert await bot.say(f"!informeren {BSN} gedaan op: gisteren") == (
        "'gisteren' is geen datum. Schrijf dd-mm-jjjj (of jjjj-mm-dd).")
    assert await bot.say(f"!informeren {BSN} gedaan op: 31-02-2026") == "'31-02-2026' is geen bestaande datum."
    assert await bot.say(f"!informeren {BSN} gedaan op: 2026-11-27") == (
        f"Vastgelegd: {MASKED} is geïnformeerd op 27-11-2026.")
    assert await bot.say(f"!informeren {BSN} gedaan op: 01-12-2026") == (
        "De datum 01-12-2026 ligt in de toekomst; leg het informeren vast als het gebeurd is.")
    assert await bot.say(f"!informeren {BSN} gedaan reden: geen idee waarom") == (
        f"reden: hoort niet bij 'gedaan'. Gebruik: {USAGE}.")
    assert await bot.say(f"!informeren {BSN} op: 01-11-2026") == (
        f"op: hoort bij het vastleggen. Gebruik: {USAGE}.")
    assert "elfproef" in await bot.say("!informeren 123456789")
    refused = await bot.say(f"!informeren {BSN}", as_role="politie")
    assert refused.startswith("U mag !informeren niet gebruiken") and "parketsecretaris" in refused
    # nothing else recorded, nothing looked up
    assert [r.kind for r in await records(bot)] == ["informeren.gedaan"]


async def test_the_standing_goes_direct_when_a_reader_has_no_deciding_role(bot: ConsoleBot) -> None:
    """The standing (and a deferral's reason) is the OM's own process data: beside a police member the room reads
    only where the answer is."""
    await bot.say(f"!informeren {BSN} uitgesteld reden: lopend onderzoek naar medeverdachten")
    await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, POLITIE}))
    out = await bot.say(f"!informeren {BSN}")
    room, direct = out.split("\n", 1)
    assert room == f"Het antwoord op !informeren over {MASKED} staat in het directe bericht van de bot aan {OVJ}."
    assert direct.startswith(f"[naar direct:{OVJ}] Informeren van {MASKED}: uitgesteld sinds")
    await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, KPC}))
    assert (await bot.say(f"!informeren {BSN}")).startswith(f"Informeren van {MASKED}: uitgesteld sinds")


def test_the_inzage_export_lists_the_records_under_the_om_regime(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args, "--config", str(config)], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=Path(__file__).parents[1])

    async def record() -> None:
        bot = await ConsoleBot.start(config)
        try:
            await bot.say(f"!informeren {BSN} gedaan via: mondeling bij de voorgeleiding")
        finally:
            await bot.close()

    asyncio.run(record())
    proc = cli("audit", "export", "--persoon", BSN)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = [r for r in lines if r["soort"] == "informeren.gedaan"]
    assert len(done) == 1 and done[0]["regime"] == OM and done[0]["details"]["via"] == (
        "mondeling bij de voorgeleiding")
