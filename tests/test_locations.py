"""Several ZSM locations, one national registry (docs/deployment.md, "Several ZSM locations").

Two console bots, each a location with its own ``[zsm] regio`` and its own state database (a SQLite file, or a
PostgreSQL database), read one shared registry database on PostgreSQL (``[registry] database_url``). A file
imported once with ``zsm-bot import`` is found by ``!check`` at both; a decision at one location is mailed, queued
and counted there only; and what the region governs (a hit-no-hit veiligheidshuis of one's own region is named,
one elsewhere is "known elsewhere") differs as configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cli.main import main as cli_main
from domain.clock import FixedClock
from storage.besluit_models import OutboxMail
from storage.db import create_engine, session_factory
from storage.models import AuditRecord
from storage.registry_models import MarkeringRow
from tests.harness import pg
from tests.harness.config import VEILIGHEIDSHUIZEN, strict_vh_block, write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn
from tests.harness.tcp_proxy import TcpProxy
from tests.smtp_helpers import SmtpServer, free_port, mail_section
from tests.test_registry_import import row, write_csv

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DECIDED = [bsn(60 + i) for i in range(5)]  # five decisions at location A: the report shows 5, not "< 5"
STRICT = bsn(70)  # known to utrecht (generiek) and to "strikt", a hit-no-hit veiligheidshuis in regio "Test"


def location(tmp_path: Path, name: str, regio: str, registry_url: str, smtp: SmtpServer, cert: Path,
             state_url: str | None = None) -> Path:
    home = tmp_path / name
    home.mkdir()
    vh_file = home / "vh.toml"
    vh_file.write_text(VEILIGHEIDSHUIZEN.read_text(encoding="utf-8") + strict_vh_block(regio="Test"),
                       encoding="utf-8")
    return write_config(home, state_url or f"sqlite+aiosqlite:///{home / 'state.db'}", sections={
        "zsm": {"regio": regio},
        "registry": {"database_url": registry_url},
        "referentie": {"veiligheidshuizen": str(vh_file)},
        "mail": mail_section(smtp.port, cert),
    })


async def count(url: str, query: Any) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return int(await s.scalar(query) or 0)
    finally:
        await engine.dispose()


async def deliver(bot: ConsoleBot) -> None:
    clock = bot.runtime.clock
    assert isinstance(clock, FixedClock) and bot.runtime.mail_worker and bot.runtime.sender
    clock.advance(timedelta(seconds=70))  # past the undo window
    await bot.runtime.mail_worker.drain()
    await bot.runtime.sender.drain()


@pytest.fixture
def cert_path(cert: tuple[Path, Path]) -> Path:
    return cert[0]


@pytest.fixture(params=["sqlite", "postgresql"])
async def state_urls(request: pytest.FixtureRequest) -> AsyncIterator[list[str | None]]:
    """Each location's own state database: a SQLite file in its folder, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield [None, None]
        return
    made = [await pg.create_database(), await pg.create_database()]
    try:
        yield [url for url, _ in made]
    finally:
        for _, name in made:
            await pg.drop_database(name)


async def test_two_locations_share_one_registry_and_keep_their_own_state(
        tmp_path: Path, pg_url: str, smtp: SmtpServer, cert_path: Path, state_urls: list[str | None]) -> None:
    config_a = location(tmp_path, "a", "Test", pg_url, smtp, cert_path, state_urls[0])
    config_b = location(tmp_path, "b", "Midden-Nederland", pg_url, smtp, cert_path, state_urls[1])
    # Imported once, from location A's configuration, into the shared registry database.
    markings = write_csv(tmp_path / "landelijk.csv", [
        *(row(60 + i, advies_datum="2026-10-01", geadviseerde_afdoening="osb") for i in range(5)),
        row(70, "strikt", advies_datum="2026-10-01"), row(70, "utrecht", advies_datum="2026-10-01"),
    ])
    assert await asyncio.to_thread(cli_main, ["import", "--config", str(config_a), str(markings)]) == 0
    assert await count(pg_url, select(func.count()).select_from(MarkeringRow)) == 7

    a = await ConsoleBot.start(config_a, clock=FixedClock(START))
    b = await ConsoleBot.start(config_b, clock=FixedClock(START))
    try:
        state_a, state_b = a.runtime.settings.database_url, b.runtime.settings.database_url
        # Neither location holds a marking of its own: both read the one registry.
        for state in (state_a, state_b):
            assert await count(state, select(func.count()).select_from(MarkeringRow)) == 0

        # Found at both locations.
        for bot in (a, b):
            reply = await bot.say(f"!check {DECIDED[0]}", as_role="ovj")
            assert "Bekend bij 1 veiligheidshuis" in reply and "Veiligheidshuis regio Utrecht" in reply, reply

        # The region decides what a hit-no-hit veiligheidshuis shows: named in its own region (A, regio "Test"),
        # only "known elsewhere" at B (Midden-Nederland); the generiek Utrecht shows at both.
        at_a = await a.say(f"!check {STRICT}", as_role="ovj")
        at_b = await b.say(f"!check {STRICT}", as_role="ovj")
        assert "Veiligheidshuis Strikt" in at_a and "andere regio" not in at_a, at_a
        assert "Veiligheidshuis in een andere regio" in at_b and "Strikt" not in at_b, at_b
        assert "Bekend bij 2 veiligheidshuizen" in at_a and "Bekend bij 2 veiligheidshuizen" in at_b

        # Decisions at A: mailed, queued and counted at A only.
        for person in DECIDED:
            assert "Besluit vastgelegd" in await a.say(f"!besluit {person} osb", as_role="kpc")
        await deliver(a)
        await deliver(b)
        assert len(smtp.collector.received) == 5
        assert {r for m in smtp.collector.received for r in m.rcpt} == {"terugkoppeling@vh-utrecht.example"}
        assert await count(state_a, select(func.count()).select_from(OutboxMail)) == 5
        assert await count(state_b, select(func.count()).select_from(OutboxMail)) == 0
        assert await count(pg_url, select(func.count()).select_from(OutboxMail)) == 0

        for bot in (a, b):
            assert isinstance(bot.runtime.clock, FixedClock)
            bot.runtime.clock.set(START + timedelta(days=1))
            await bot.runtime.fold_now()
        figures_a = await a.say("!rapport 2026-11", as_role="kpc")
        figures_b = await b.say("!rapport 2026-11", as_role="kpc")
        assert "Besluiten over bekende personen: 5; terugkoppeling afgeleverd: 5 (100%)" in figures_a, figures_a
        assert "Besluiten over bekende personen: 0" in figures_b, figures_b

        # The audit trail is per location too: each lookup is recorded where it was made, none in the registry
        # database (which holds the import's record only).
        checks = select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "register.raadpleging")
        assert await count(state_a, checks) >= 2 and await count(state_b, checks) >= 2
        assert await count(pg_url, checks) == 0
        imports = select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "register.import")
        assert await count(pg_url, imports) == 1 and await count(state_a, imports) == 0
    finally:
        await a.close()
        await b.close()


async def test_a_location_without_registry_database_keeps_the_markings_in_its_own(tmp_path: Path,
                                                                                 sqlite_url: str) -> None:
    """The default is unchanged: no ``[registry] database_url``, the import and the lookup use the own database."""
    config = write_config(tmp_path, sqlite_url)
    markings = write_csv(tmp_path / "m.csv", [row(80, advies_datum="2026-10-01")])
    assert await asyncio.to_thread(cli_main, ["import", "--config", str(config), str(markings)]) == 0
    assert await count(sqlite_url, select(func.count()).select_from(MarkeringRow)) == 1
    bot = await ConsoleBot.start(config, clock=FixedClock(START))
    try:
        assert "Bekend bij 1 veiligheidshuis" in await bot.say(f"!check {bsn(80)}", as_role="ovj")
    finally:
        await bot.close()


@pytest.mark.parametrize(("extra", "message"), [
    ({"database_url": "mysql://x/y"}, "registry.database_url: verwacht postgresql+asyncpg://"),
    ({"database_url": "sqlite+aiosqlite:///relatief.db"}, "registry.database_url: geef bij SQLite een absoluut pad"),
    ({"adapter": "http", "url": "https://gcos.example.nl/api", "token": "t",
      "database_url": "postgresql+asyncpg://h/db"}, 'registry.database_url hoort bij adapter = "builtin"'),
    ({"databse_url": "postgresql+asyncpg://h/db"}, "database_url"),
])
def test_bad_registry_database_settings_are_refused_with_one_line(
        tmp_path: Path, extra: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sections={"registry": extra})
    assert cli_main(["import", "--config", str(config), str(tmp_path / "none.csv")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and message in err[-1] and "Traceback" not in "\n".join(err), err


async def test_db_upgrade_and_the_environment_reach_the_registry_database(
        tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The password belongs in the environment: ``ZSM_BOT_REGISTRY_DATABASE_URL`` sets the key; ``db upgrade``
    migrates the registry database beside the bot's own."""
    monkeypatch.setenv("ZSM_BOT_REGISTRY_DATABASE_URL", pg_url)
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")
    assert await asyncio.to_thread(cli_main, ["db", "upgrade", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "database bijgewerkt tot revisie" in out and "registerdatabase bijgewerkt tot revisie" in out
    assert await count(pg_url, select(func.count()).select_from(MarkeringRow)) == 0  # the table is there


async def test_registry_database_down_is_told_plainly_and_back_without_a_restart(tmp_path: Path) -> None:
    """The shared registry database behind a TCP proxy that the test stops: the location's own database stays up,
    so a !check is answered at once that the registry cannot be reached (and audited so), and once the registry
    is back the next one finds the marking, without a restart."""
    url, name = await pg.create_database()
    proxy = TcpProxy("127.0.0.1", 5432, free_port())
    await proxy.start()
    registry_url = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    own = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
    config = write_config(tmp_path, own, sections={"registry": {"database_url": registry_url}})
    markings = write_csv(tmp_path / "m.csv", [row(90, advies_datum="2026-10-01")])
    try:
        assert await asyncio.to_thread(cli_main, ["import", "--config", str(config), str(markings)]) == 0
        bot = await ConsoleBot.start(config, clock=FixedClock(START))
        try:
            assert "Bekend bij 1 veiligheidshuis" in await bot.say(f"!check {bsn(90)}", as_role="ovj")
            await proxy.stop()
            down = await bot.say(f"!check {bsn(90)}", as_role="ovj")
            assert "niet bereikbaar" in down and "Bekend bij" not in down and bsn(90) not in down, down
            assert "Traceback" not in down
            unreachable = select(func.count()).select_from(AuditRecord).where(
                AuditRecord.kind == "register.raadpleging")
            assert await count(own, unreachable) == 2
            await proxy.start()
            assert "Bekend bij 1 veiligheidshuis" in await bot.say(f"!check {bsn(90)}", as_role="ovj")
        finally:
            await bot.close()
    finally:
        await proxy.stop()
        await pg.drop_database(name)
