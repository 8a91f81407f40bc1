"""An answer to an advice request with a registry database shared by several locations (``[registry]
database_url``): the answer becomes the marking's newest advice in that shared database, so ``!check`` at every
location shows it, and the location's own database holds no marking."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from domain.advies import Markering
from domain.clock import FixedClock
from storage.db import create_engine, session_factory
from storage.registry_models import MarkeringRow
from storage.registry_queries import upsert
from tests.harness.console import ConsoleBot
from tests.test_aanvraag import BSN, DUTY, MONDAY_10, config, open_request, roster


async def test_the_answer_lands_in_the_shared_registry(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    path = config(tmp_path, sqlite_url)
    with path.open("a", encoding="utf-8") as f:
        f.write(f'\n[registry]\ndatabase_url = "{pg_url}"\n')
    bot = await ConsoleBot.start(path, clock=FixedClock(MONDAY_10))
    registry = create_engine(pg_url)
    try:
        async with session_factory(registry)() as s, s.begin():  # the registry the bot migrated at start
            await upsert(s, [Markering(
                bsn=BSN, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis="utrecht",
                doelgroep="huiselijk geweld", status="actief", advies="Oud advies: sepot.",
                geadviseerde_afdoening="sepot", advies_datum=date(2025, 1, 1), regisseur="mw. De Groot")], MONDAY_10)
        await roster(bot)
        await open_request(bot)
        reply = await bot.say("!advies A1 vs Voorwaardelijk sepot; het plan van aanpak loopt.", as_user=DUTY)
        assert "!check toont het nu als nieuwste advies." in reply, reply
        async with session_factory(registry)() as s:
            row = (await s.execute(select(MarkeringRow).where(MarkeringRow.bsn == BSN))).scalar_one()
            assert (row.advies, row.geadviseerde_afdoening, row.bron) == (
                "Voorwaardelijk sepot; het plan van aanpak loopt.", "vs", "advies op aanvraag")
        async with bot.runtime.sessions() as s:  # the location's own database holds no marking
            assert await s.scalar(select(func.count()).select_from(MarkeringRow)) == 0
        check = await bot.say(f"!check {BSN}", as_role="ovj")
        assert "Voorwaardelijk sepot; het plan van aanpak loopt." in check, check
    finally:
        await bot.close()
        await registry.dispose()


async def test_without_a_marking_the_answer_says_the_registry_was_not_updated(tmp_path: Path,
                                                                             sqlite_url: str) -> None:
    bot = await ConsoleBot.start(config(tmp_path, sqlite_url), clock=FixedClock(MONDAY_10))
    try:
        await roster(bot)
        await open_request(bot, "vh: utrecht type: hg")
        reply = await bot.say("!advies A1 vs Voorwaardelijk sepot; het plan van aanpak loopt.", as_user=DUTY)
        assert ("er is geen markering van dit veiligheidshuis om bij te werken; !besluit weegt dit advies wel mee."
                in reply), reply
        assert "!check toont het nu" not in reply
    finally:
        await bot.close()
