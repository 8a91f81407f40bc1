"""Test data for the registry: valid BSNs, markings, a bot with a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.advies import Markering
from domain.clock import FixedClock
from domain.identifiers import elfproef
from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
TODAY = date(2026, 6, 15)


def bsn(n: int) -> str:
    """The n-th valid BSN from a fixed start (elfproef holds)."""
    found = 0
    prefix = 10_000_000 + n * 37
    while True:
        head = f"{prefix:08d}"
        for last in range(10):
            if elfproef(head + str(last)):
                if found == 0:
                    return head + str(last)
                found += 1
        prefix += 1


def markering(bsn_value: str, vh: str = "utrecht", **kw: Any) -> Markering:
    base = Markering(
        bsn=bsn_value, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis=vh,
        doelgroep="veelpleger", status="actief", advies="Voorwaardelijk sepot met meldplicht bij de regisseur.",
        geadviseerde_afdoening="VWSEP", advies_datum=date(2026, 4, 1), regisseur="J. de Regisseur, 030-1234567",
        huishouden=False,
    )
    return replace(base, **kw)


async def seed(bot: ConsoleBot, *items: Markering) -> None:
    async with bot.runtime.sessions() as s, s.begin():
        await upsert(s, items, bot.runtime.clock.now())


async def start_bot(tmp_path: Path, database_url: str, *, sections: dict[str, dict[str, Any]] | None = None,
                    clock: FixedClock | None = None) -> ConsoleBot:
    return await ConsoleBot.start(write_config(tmp_path, database_url, sections=sections),
                                  clock=clock or FixedClock(NOW))


@asynccontextmanager
async def bot_knowing_an_adult_and_a_minor(tmp_path: Path, database_url: str, adult: str,
                                           minor: str) -> AsyncIterator[ConsoleBot]:
    """A console bot whose registry marks one adult and one minor (born 2010) in Utrecht: the pair every
    need-to-know test reads, once per role or per room."""
    b = await start_bot(tmp_path, database_url)
    await seed(b, markering(adult), markering(minor, geboortedatum=date(2010, 3, 1)))
    try:
        yield b
    finally:
        await b.close()
