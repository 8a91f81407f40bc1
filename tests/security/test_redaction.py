"""Redaction: the bot's own room messages that carry case data leave the room when their retention ends, and at once
on a technisch sepot 01; messages without case data stay; nothing personal is left in the bookkeeping row; a
failing redaction is retried with the same transaction id and a hopeless one is recorded, not lost.

The console transport records what it was asked to redact (it has no room history); the same loop against a real
Synapse is in tests/test_matrix_redaction.py.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.dispatcher import IncomingCommand
from bot.redaction import MAX_PERMANENT_FAILURES, Redactor
from bot.transport import RateLimited, SendFailed
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from domain.clock import FixedClock
from services.messages import txn_id_for
from storage.models import AuditRecord, OutgoingMessage
from tests.harness.config import user_for
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW, bsn, markering, seed, start_bot
from tests.smtp_helpers import SmtpServer

PERSON, OTHER = bsn(31), bsn(32)


def redactor(bot: ConsoleBot) -> Redactor:
    assert bot.runtime.redactor is not None
    return bot.runtime.redactor


def console(bot: ConsoleBot) -> ConsoleTransport:
    transport = redactor(bot).transport
    assert isinstance(transport, ConsoleTransport)
    return transport


async def row_for(bot: ConsoleBot, command_event: str) -> OutgoingMessage:
    async with bot.runtime.sessions() as s:
        return (await s.execute(select(OutgoingMessage).where(OutgoingMessage.in_reply_to == command_event)
                                .order_by(OutgoingMessage.id))).scalars().first()  # type: ignore[return-value]


async def audits(bot: ConsoleBot, kind: str) -> list[AuditRecord]:
    async with bot.runtime.sessions() as s:
        return list((await s.execute(select(AuditRecord).where(AuditRecord.kind == kind)
                                     .order_by(AuditRecord.id))).scalars())


async def test_case_message_redacted_after_retention_other_messages_stay(tmp_path: Path, database_url: str) -> None:
    bot = await start_bot(tmp_path, database_url, sections={"privacy.bewaren": {"zaakberichten": 5}})
    try:
        await seed(bot, markering(PERSON))
        assert "Bekend bij" in await bot.say(f"!check {PERSON}", event_id="$check")
        assert await bot.say("!ping", event_id="$ping") == "pong"
        check, ping = await row_for(bot, "$check"), await row_for(bot, "$ping")
        assert check.carries_case_data and not ping.carries_case_data
        assert check.content is None and ping.content is None, "sent content is cleared at send"
        assert check.subject == bot.runtime.auditor.subject_of(PERSON) and ping.subject is None

        # Within the retention period nothing is queued.
        counts = await bot.runtime.purge_now(now=NOW + timedelta(days=4))
        assert counts["te_redigeren"] == 0
        await redactor(bot).drain()
        assert console(bot).redacted == []

        counts = await bot.runtime.purge_now(now=NOW + timedelta(days=6))
        assert counts["te_redigeren"] == 1
        await redactor(bot).drain()
        assert console(bot).redacted == [check.event_id], "only the case-data message goes"
        done, kept = await row_for(bot, "$check"), await row_for(bot, "$ping")
        assert done.redaction == "done" and done.redaction_reason == "bewaartermijn"
        assert done.subject is None and done.content is None and done.last_error is None
        assert kept.redaction is None

        record, = await audits(bot, "bericht.geredigeerd")
        assert record.details == {"aantal": 1, "redenen": {"bewaartermijn": 1}}, "how many and why, never which"
        assert record.subject is None and str(check.event_id) not in str(record.details)
        purge_record = (await audits(bot, "bewaring.opgeschoond"))[-1]
        assert purge_record.details["te_redigeren"] == 1

        # A second purge queues nothing again; the redacted row is then purged with the bookkeeping rows.
        assert (await bot.runtime.purge_now(now=NOW + timedelta(days=7)))["te_redigeren"] == 0
        counts = await bot.runtime.purge_now(now=NOW + timedelta(days=31))
        assert counts["berichten"] == 2
        async with bot.runtime.sessions() as s:
            assert (await s.execute(select(OutgoingMessage))).first() is None
    finally:
        await bot.close()


async def test_bookkeeping_row_of_an_unredacted_case_message_is_kept(tmp_path: Path, database_url: str) -> None:
    """``berichten`` shorter than ``zaakberichten``: the row that says what must still be redacted survives."""
    bot = await start_bot(tmp_path, database_url, sections={"privacy.bewaren": {"berichten": 2, "zaakberichten": 20}})
    try:
        await seed(bot, markering(PERSON))
        await bot.say(f"!check {PERSON}", event_id="$check")
        await bot.say("!ping", event_id="$ping")
        counts = await bot.runtime.purge_now(now=NOW + timedelta(days=3))
        assert counts["berichten"] == 1 and counts["te_redigeren"] == 0
        assert (await row_for(bot, "$check")) is not None and (await row_for(bot, "$ping")) is None
        assert (await bot.runtime.purge_now(now=NOW + timedelta(days=21)))["te_redigeren"] == 1
        assert (await row_for(bot, "$check")).redaction == "pending", "kept until the redaction is done"
        await redactor(bot).drain()
        assert (await bot.runtime.purge_now(now=NOW + timedelta(days=22)))["berichten"] == 1
    finally:
        await bot.close()


async def test_a_message_after_the_purge_is_still_sent(tmp_path: Path, database_url: str) -> None:
    """The purge may remove the newest row; SQLite then hands its id to the next message, which must still go."""
    bot = await start_bot(tmp_path, database_url)
    try:
        assert await bot.say("!ping") == "pong"
        assert (await bot.runtime.purge_now(now=NOW + timedelta(days=31)))["berichten"] == 1
        assert await bot.say("!ping") == "pong"
    finally:
        await bot.close()


class FailingTransport:
    """Stands in for a homeserver that refuses; records every call with its transaction id."""

    def __init__(self, *, permanent: bool) -> None:
        self.permanent = permanent
        self.calls: list[tuple[str, str]] = []
        self.working = False

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        raise AssertionError("not used")

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        self.calls.append((event_id, txn_id))
        if not self.working:
            raise SendFailed("homeserver: M_UNKNOWN" if not self.permanent else "homeserver: M_FORBIDDEN",
                             permanent=self.permanent)


async def test_failed_redaction_is_retried_later_with_the_same_txn_id(tmp_path: Path, database_url: str) -> None:
    clock = FixedClock(NOW)
    bot = await start_bot(tmp_path, database_url, sections={"privacy.bewaren": {"zaakberichten": 1}}, clock=clock)
    try:
        await seed(bot, markering(PERSON))
        await bot.say(f"!check {PERSON}", event_id="$check")
        flaky = FailingTransport(permanent=False)
        redactor(bot).transport = flaky
        clock.advance(timedelta(days=2))
        await bot.runtime.purge_now()
        delay = await redactor(bot).drain()
        row = await row_for(bot, "$check")
        assert row.redaction == "pending" and row.redaction_attempts == 1 and 0 < delay <= 60
        assert row.last_error == "redactie: homeserver: M_UNKNOWN"
        await redactor(bot).drain()
        assert len(flaky.calls) == 1, "not retried before its backoff has passed"
        clock.advance(timedelta(seconds=delay))
        flaky.working = True
        await redactor(bot).drain()
        row = await row_for(bot, "$check")
        assert row.redaction == "done" and row.last_error is None and row.subject is None
        assert [c[1] for c in flaky.calls] == [txn_id_for(str(row.event_id), "redact")] * 2, "same txn id: once"
        assert len(await audits(bot, "bericht.redactie_mislukt")) == 0
    finally:
        await bot.close()


async def test_hopeless_redaction_is_recorded_and_alerts(tmp_path: Path, database_url: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    clock = FixedClock(NOW)
    bot = await start_bot(tmp_path, database_url, sections={"privacy.bewaren": {"zaakberichten": 1}}, clock=clock)
    try:
        await seed(bot, markering(PERSON))
        await bot.say(f"!check {PERSON}", event_id="$check")
        refusing = FailingTransport(permanent=True)
        redactor(bot).transport = refusing
        clock.advance(timedelta(days=2))
        await bot.runtime.purge_now()
        for _ in range(MAX_PERMANENT_FAILURES):
            await redactor(bot).drain()
            clock.advance(timedelta(minutes=5))
        row = await row_for(bot, "$check")
        assert row.redaction == "failed" and row.subject is None and row.content is None
        assert len(refusing.calls) == MAX_PERMANENT_FAILURES
        failed, = await audits(bot, "bericht.redactie_mislukt")
        assert failed.details == {"aantal": 1, "reden": "homeserver: M_FORBIDDEN"}
        assert any("redaction failed for good" in r.getMessage() for r in caplog.records)
        assert PERSON not in caplog.text
        assert await redactor(bot).pending_count() == 0
    finally:
        await bot.close()


async def test_sepot_01_queues_the_case_messages_at_once(tmp_path: Path, database_url: str, smtp: SmtpServer,
                                                         cert: tuple[Path, Path]) -> None:
    clock = FixedClock(NOW)
    mail = {"enabled": False, "host": "127.0.0.1", "port": smtp.port, "tls": "starttls", "ca_bestand": str(cert[0]),
            "afzender": "zsm-bot@om.example", "herroep_seconden": 60, "backoff_seconden": 1.0, "max_pogingen": 3,
            "timeout_seconden": 5.0}
    bot = await start_bot(tmp_path, database_url, sections={"mail": mail}, clock=clock)
    try:
        await seed(bot, markering(PERSON, geadviseerde_afdoening="osb", geboortedatum=date(1990, 1, 1)),
                   markering(OTHER))
        await bot.say(f"!check {PERSON}", event_id="$check")
        await bot.say(f"!check {OTHER}", event_id="$other")
        await bot.say("!help", event_id="$help")
        await bot.say(f"!besluit {PERSON} osb zaak: 2026-9", event_id="$besluit")
        clock.advance(timedelta(seconds=70))
        assert bot.runtime.mail_worker and bot.runtime.sender
        await bot.runtime.mail_worker.drain()
        await bot.runtime.sender.drain()
        assert len(smtp.collector.received) == 1
        async with bot.runtime.sessions() as s:
            notices = list((await s.execute(select(OutgoingMessage).where(
                OutgoingMessage.in_reply_to == "$besluit").order_by(OutgoingMessage.id))).scalars())
        assert len(notices) == 2 and "verzonden" in str(bot.out.getvalue().splitlines()[-1])
        assert all(n.carries_case_data and n.subject == bot.runtime.auditor.subject_of(PERSON) for n in notices)

        reply = await bot.say(f"!besluit {PERSON} 01 zaak: 2026-9", event_id="$sepot")
        assert "3 eerder bericht(en) van de bot over de persoon worden uit de rooms verwijderd" in reply
        # No purge and no retention: the sepot's own commit wakes the loop; here we drain as the loop would.
        await redactor(bot).drain()
        gone = set(console(bot).redacted)
        expected = {(await row_for(bot, "$check")).event_id, *(n.event_id for n in notices)}
        assert gone == expected
        for untouched in ("$other", "$help", "$sepot"):
            assert (await row_for(bot, untouched)).redaction is None
        record, = await audits(bot, "bericht.geredigeerd")
        assert record.details == {"aantal": 3, "redenen": {"technisch sepot 01": 3}}
        removal, = await audits(bot, "zaak.verwijderd")
        assert removal.details["berichten"] == 3
        # Repeating the sepot queues nothing new.
        again = await bot.say(f"!besluit {PERSON} 01 zaak: 2026-9", event_id="$sepot2")
        assert "uit de rooms verwijderd" not in again
    finally:
        await bot.close()


async def test_a_case_message_on_its_way_when_the_sepot_comes_is_redacted_once_it_is_recorded(
        tmp_path: Path, database_url: str) -> None:
    """The window between a send and its record: the homeserver has taken the reply to a ``!check`` and the bot has
    not yet heard back when a technisch sepot 01 for that person commits. The sepot finds the row still unsent and
    withdraws it, but the message is in the room; once the send is recorded it must be redacted as every other
    message about the person is, not stay because the sepot came a moment early. (The console transport's send
    is held at a gate after it wrote the message, as a homeserver's answer is in transit: the only stand-in here.)"""
    bot = await start_bot(tmp_path, database_url)
    transport = console(bot)
    sender = bot.runtime.sender
    assert sender is not None and bot.runtime.dispatcher is not None
    in_room, answer = asyncio.Event(), asyncio.Event()
    send = transport.send

    async def held(room_id: str, content: dict[str, Any], txn_id: str) -> str:
        event_id = await send(room_id, content, txn_id)  # the message is in the room from here
        if "******" in str(content.get("body", "")) and not in_room.is_set():
            in_room.set()
            await answer.wait()
        return event_id

    try:
        await seed(bot, markering(PERSON, geadviseerde_afdoening="osb"))
        await bot.say(f"!besluit {PERSON} osb zaak: 2026-9", event_id="$besluit")
        transport.send = held  # type: ignore[method-assign]
        outcome = await bot.runtime.dispatcher.handle(IncomingCommand(
            event_id="$check", room_id=CONSOLE_ROOM, sender=user_for("ovj"), body=f"!check {PERSON}",
            sent_at=bot.runtime.clock.now()))
        assert outcome.status == "handled"
        sending = asyncio.create_task(sender.drain())
        await asyncio.wait_for(in_room.wait(), 30)
        assert (await row_for(bot, "$check")).status == "pending"  # in the room, not yet recorded
        outcome = await bot.runtime.dispatcher.handle(IncomingCommand(
            event_id="$sepot", room_id=CONSOLE_ROOM, sender=user_for("ovj"), body=f"!besluit {PERSON} 01 zaak: 2026-9",
            sent_at=bot.runtime.clock.now()))
        assert outcome.status == "handled"
        answer.set()
        await asyncio.wait_for(sending, 30)
        await sender.drain()
        check = await row_for(bot, "$check")
        assert check.status == "sent" and check.event_id and check.redaction == "pending"
        await redactor(bot).drain()
        assert check.event_id in console(bot).redacted
        done = await row_for(bot, "$check")
        assert done.redaction == "done" and done.content is None and done.subject is None
    finally:
        answer.set()
        await bot.close()


async def test_a_case_message_held_back_by_a_rate_limit_is_not_sent_after_a_sepot_meanwhile(
        tmp_path: Path, database_url: str) -> None:
    """The homeserver refuses the reply to a ``!check`` for now (429) and, while the bot waits, a technisch sepot 01
    for that person commits. After the wait the bot must not send what was withdrawn: it would be in the room
    until its redaction. (The console transport answers the first send with a 429, the sepot committing while it
    does: the only stand-in here; tests/test_matrix.py has the real homeserver's limit.)"""
    bot = await start_bot(tmp_path, database_url)
    transport = console(bot)
    sender, dispatcher = bot.runtime.sender, bot.runtime.dispatcher
    assert sender is not None and dispatcher is not None
    send = transport.send
    tried: list[str] = []

    async def limited(room_id: str, content: dict[str, Any], txn_id: str) -> str:
        tried.append(txn_id)
        if len(tried) == 1:
            sepot = await dispatcher.handle(IncomingCommand(
                event_id="$sepot", room_id=CONSOLE_ROOM, sender=user_for("ovj"),
                body=f"!besluit {PERSON} 01 zaak: 2026-9", sent_at=bot.runtime.clock.now()))
            assert sepot.status == "handled"
            raise RateLimited(0.01)
        return await send(room_id, content, txn_id)

    try:
        await seed(bot, markering(PERSON, geadviseerde_afdoening="osb"))
        await bot.say(f"!besluit {PERSON} osb zaak: 2026-9", event_id="$besluit")
        transport.send = limited  # type: ignore[method-assign]
        before = transport.out.tell()
        assert (await dispatcher.handle(IncomingCommand(
            event_id="$check", room_id=CONSOLE_ROOM, sender=user_for("ovj"), body=f"!check {PERSON}",
            sent_at=bot.runtime.clock.now()))).status == "handled"
        await sender.drain()
        check = await row_for(bot, "$check")
        assert tried[0] == check.txn_id and tried.count(check.txn_id) == 1  # asked once, refused, never again
        assert (check.status, check.event_id, check.content) == ("dead", None, None)
        transport.out.seek(before)
        said = transport.out.read()
        assert "uit de rooms verwijderd" in said and "Bekend bij" not in said  # the sepot's reply went out, not this
    finally:
        await bot.close()
