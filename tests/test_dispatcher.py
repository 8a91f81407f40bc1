"""Transcripts through the real dispatcher and database, via the console backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.dispatcher import IncomingCommand
from bot.transport.console import CONSOLE_ROOM
from commands.base import Context
from commands.parsing import ParsedArgs
from services.reply import Reply
from storage import inbox
from storage.models import AuditRecord, InboxEntry, OutgoingMessage
from storage.statistiek_models import CHECK, StatistiekFeit
from tests.harness.config import user_for
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn, markering, seed, start_bot


async def test_ping_and_help(console_bot: ConsoleBot) -> None:
    assert await console_bot.say("!ping") == "pong"
    listing = await console_bot.say("!help")
    assert "!ping" in listing and "!help [<commando>]" in listing
    detail = await console_bot.say("!help ping")
    assert "Gebruik: !ping" in detail and "Voorbeelden" in detail


async def test_commands_forgive_case_and_spaces(console_bot: ConsoleBot) -> None:
    assert await console_bot.say("  !PING  ") == "pong"
    assert "Gebruik: !ping" in await console_bot.say("!Help   PING")


async def test_unknown_command_suggests_nearest(console_bot: ConsoleBot) -> None:
    reply = await console_bot.say("!pnig")
    assert reply.startswith("Onbekend commando '!pnig'.") and "!ping" in reply
    assert "Typ !help" in await console_bot.say("!xyzzy")
    assert "Onbekend commando '!'" in await console_bot.say("!")


async def test_bad_arguments_get_usage(console_bot: ConsoleBot) -> None:
    reply = await console_bot.say("!ping nu")
    assert "Te veel woorden" in reply and "Gebruik: !ping" in reply
    assert "Bedoelde u: !ping" in await console_bot.say("!help pong")


async def test_unknown_user_is_refused_and_audited(console_bot: ConsoleBot) -> None:
    reply = await console_bot.say("!ping", as_user="@stranger:localhost")
    assert "geen rol" in reply
    async with console_bot.runtime.sessions() as s:
        kinds = (await s.execute(select(AuditRecord.kind, AuditRecord.actor))).all()
    assert ("opdracht.geweigerd", "@stranger:localhost") in kinds


async def test_plain_text_is_ignored(console_bot: ConsoleBot) -> None:
    assert await console_bot.say("goedemorgen allemaal") == ""
    assert console_bot.outcomes[-1].status == "ignored"


async def test_same_event_is_handled_once(console_bot_any_db: ConsoleBot) -> None:
    bot = console_bot_any_db
    assert await bot.say("!ping", event_id="$same") == "pong"
    assert await bot.say("!ping", event_id="$same") == ""
    assert bot.outcomes[-1].status == "duplicate"
    async with bot.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 1
        rows = (await s.execute(select(OutgoingMessage))).scalars().all()
    assert len(rows) == 1 and rows[0].status == "sent" and rows[0].content is None


async def test_stale_command_after_downtime_gets_notice(console_bot: ConsoleBot) -> None:
    old = console_bot.runtime.clock.now() - timedelta(hours=2)
    reply = await console_bot.say("!ping", sent_at=old)
    assert "niet uitgevoerd" in reply and "opnieuw" in reply
    assert console_bot.outcomes[-1].status == "stale"


async def test_oversized_message_refused_politely(console_bot: ConsoleBot) -> None:
    reply = await console_bot.say("!help " + "x" * 5000)
    assert "te lang" in reply


async def test_messages_sent_are_audited(console_bot_any_db: ConsoleBot) -> None:
    await console_bot_any_db.say("!ping")
    async with console_bot_any_db.runtime.sessions() as s:
        kinds = (await s.execute(select(AuditRecord.kind))).scalars().all()
    assert "bericht.verzonden" in kinds and "configuratie.geladen" in kinds


async def test_a_colliding_inbox_row_is_already_recorded(console_bot_any_db: ConsoleBot) -> None:
    """Two deliveries racing: the second one's row collides on the event id, and the
    dispatcher learns it as ``storage.inbox.AlreadyRecorded`` (no database library of its own)."""
    bot = console_bot_any_db
    assert await bot.say("!ping", event_id="$race") == "pong"
    now = bot.runtime.clock.now()
    async with bot.runtime.sessions() as s:
        with pytest.raises(inbox.AlreadyRecorded):
            async with inbox.exactly_once():
                inbox.claim(s, event_id="$race", room_id="!r:localhost", sender="@a:localhost",
                            command="ping", received_at=now, handled_at=now)
                await s.commit()
        await s.rollback()
        assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 1


async def test_two_deliveries_at_once_are_handled_once(tmp_path: Path, database_url: str) -> None:
    """The inbox row of a writing command is written at its commit: a second delivery of an event being handled
    waits for the first, may then do the work again, and collides at its commit and rolls back whole (one reply,
    one audit record of the lookup, one fact)."""
    bot = await start_bot(tmp_path, database_url)
    try:
        known = bsn(41)
        await seed(bot, markering(known))
        assert bot.runtime.dispatcher
        cmd = IncomingCommand(event_id="$race-check", room_id=CONSOLE_ROOM, sender=user_for("ovj"),
                              body=f"!check {known}", sent_at=bot.runtime.clock.now())
        outcomes = await asyncio.gather(bot.runtime.dispatcher.handle(cmd), bot.runtime.dispatcher.handle(cmd))
        assert sorted(o.status for o in outcomes) == ["duplicate", "handled"]
        async with bot.runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 1
            assert await s.scalar(select(func.count()).select_from(OutgoingMessage).where(
                OutgoingMessage.in_reply_to == "$race-check")) == 1
            assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.kind == "register.raadpleging")) == 1
            assert await s.scalar(select(func.count()).select_from(StatistiekFeit).where(
                StatistiekFeit.kind == CHECK)) == 1
    finally:
        await bot.close()


async def test_a_reading_command_that_runs_out_of_time_says_so(tmp_path: Path, sqlite_url: str) -> None:
    """A read-only command parked past ``command_timeout_seconds`` is answered that it ran out of time, once."""
    bot = await start_bot(tmp_path, sqlite_url, sections={"matrix": {"command_timeout_seconds": 1}})
    spec = bot.runtime.services.table.get("rapport")
    assert spec is not None
    original = spec.handler
    never = asyncio.Event()

    async def parked(ctx: Context, args: ParsedArgs) -> Reply:
        await never.wait()
        return await original(ctx, args)

    object.__setattr__(spec, "handler", parked)
    try:
        reply = await asyncio.wait_for(bot.say("!rapport 2026-06", as_role="kpc"), 20)
        assert reply == "!rapport duurde te lang en is afgebroken; er is niets vastgelegd. Probeer het opnieuw."
        assert [o.status for o in bot.outcomes] == ["failed"]
    finally:
        object.__setattr__(spec, "handler", original)
        await bot.close()
