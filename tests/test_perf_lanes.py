"""The send queue's lanes: a command's reply goes out before a backlog of bulk messages (escalations, notices),
each lane in order and every row exactly once. Through the real dispatcher, send loop and database."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.outbound import RecentlySent
from bot.runtime import Runtime
from bot.shutdown import cancel_within
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from config.settings import load_settings
from services import messages
from services.messages import BULK, INTERACTIVE, NewMessage, txn_id_for
from storage.models import AuditRecord, OutgoingMessage
from storage.redaction import mark_expired
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot, ping_handled

BACKLOG = 120
OTHER_ROOM = "!escalaties:localhost"


class RecordingTransport(ConsoleTransport):
    """The console transport that also keeps the order of what it sent, and can run a hook before a send."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.sent: list[str] = []
        self.before_send: Any = None

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        if self.before_send is not None:
            hook, self.before_send = self.before_send, None
            await hook()
        self.sent.append(str(content.get("body", "")))
        return await super().send(room_id, content, txn_id)


@pytest.fixture
async def lane_bot(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[ConsoleBot, RecordingTransport]]:
    runtime = Runtime(load_settings(write_config(tmp_path, database_url)))
    transport = RecordingTransport()
    await runtime.start(transport, http=False)
    try:
        yield ConsoleBot(runtime), transport
    finally:
        await runtime.close()


async def _backlog(bot: ConsoleBot, n: int) -> None:
    now = bot.runtime.clock.now()
    async with bot.runtime.sessions() as s, s.begin():
        await messages.queue_many(s, [NewMessage(room_id=OTHER_ROOM, content={"body": f"escalatie {i}"},
                                                 txn_id=f"bulk-{i}") for i in range(n)], now)


async def test_interactive_rows_leave_before_older_bulk_rows(
        lane_bot: tuple[ConsoleBot, RecordingTransport]) -> None:
    bot, transport = lane_bot
    await _backlog(bot, BACKLOG)
    now = bot.runtime.clock.now()
    async with bot.runtime.sessions() as s, s.begin():
        for i in range(3):
            await messages.queue(s, NewMessage(room_id=CONSOLE_ROOM, content={"body": f"antwoord {i}"},
                                               txn_id=f"reply-{i}", priority=INTERACTIVE), now)
    assert bot.runtime.sender
    await bot.runtime.sender.drain()
    assert transport.sent[:3] == ["antwoord 0", "antwoord 1", "antwoord 2"]
    assert transport.sent[3:] == [f"escalatie {i}" for i in range(BACKLOG)]  # bulk in its own order, each once


async def test_a_reply_committed_mid_backlog_is_sent_next(lane_bot: tuple[ConsoleBot, RecordingTransport]) -> None:
    bot, transport = lane_bot
    await _backlog(bot, BACKLOG)
    assert bot.runtime.dispatcher and bot.runtime.sender

    async def a_person_asks() -> None:
        await ping_handled(bot.runtime, "$ping-mid-backlog")

    transport.before_send = a_person_asks
    await bot.runtime.sender.drain()
    assert transport.sent.index("pong") == 1  # right after the bulk message that was already on its way
    assert len(transport.sent) == BACKLOG + 1 and transport.sent.count("pong") == 1
    async with bot.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutgoingMessage).where(
            OutgoingMessage.status == "pending")) == 0
        lanes = dict((await s.execute(select(OutgoingMessage.txn_id, OutgoingMessage.priority))).all())
    assert lanes["bulk-0"] == BULK and sum(1 for p in lanes.values() if p == INTERACTIVE) == 1


class GatedTransport(RecordingTransport):
    """Holds the first bulk send open until released: the homeserver being slow on an escalation. Stands in for
    a slow homeserver, which cannot be made slow on demand here."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.bulk_in_flight = asyncio.Event()
        self.pong_sent = asyncio.Event()

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        if txn_id == "bulk-0":
            self.bulk_in_flight.set()
            await self.gate.wait()
        event_id = await super().send(room_id, content, txn_id)
        if content.get("body") == "pong":
            self.pong_sent.set()
        return event_id


async def test_with_the_send_loop_running_a_reply_does_not_wait_for_a_bulk_send_in_flight(
        tmp_path: Path, sqlite_url: str) -> None:
    runtime = Runtime(load_settings(write_config(tmp_path, sqlite_url)))
    transport = GatedTransport()
    await runtime.start(transport, http=False)
    bot = ConsoleBot(runtime)
    assert runtime.sender and runtime.dispatcher
    loop = asyncio.create_task(runtime.sender.run())
    try:
        await _backlog(bot, 5)
        runtime.sender.wake()
        await asyncio.wait_for(transport.bulk_in_flight.wait(), timeout=20)
        await ping_handled(runtime, "$ping-beside")
        # The bound is a safety net: without its own lane the reply would wait for the gate for ever.
        await asyncio.wait_for(transport.pong_sent.wait(), timeout=20)
        assert transport.sent == ["pong"]
        transport.gate.set()

        async def backlog_sent() -> None:
            while len(transport.sent) < 6:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(backlog_sent(), timeout=20)
        assert transport.sent[1:] == [f"escalatie {i}" for i in range(5)]
        async with runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.kind == "bericht.verzonden")) == 6  # each message sent and audited once
    finally:
        transport.gate.set()
        await cancel_within([loop])
        await runtime.close()


async def _sending(tmp_path: Path, database_url: str,
                   transport: RecordingTransport) -> tuple[Runtime, asyncio.Task[None]]:
    """A started runtime without the ticker (only the command's statements happen) and its send loop running."""
    runtime = Runtime(load_settings(write_config(tmp_path, database_url, sections={"aanvraag": {"tik_seconden": 0}})))
    await runtime.start(transport, http=False)
    assert runtime.sender and runtime.dispatcher
    return runtime, asyncio.create_task(runtime.sender.run())


class NotingTransport(RecordingTransport):
    """Notes how much the database had been asked (on any connection) when each message went out."""

    def __init__(self, asked: list[str]) -> None:
        super().__init__()
        self.asked = asked
        self.asked_at_send: dict[str, int] = {}
        self.one_sent = asyncio.Event()

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self.asked_at_send[txn_id] = len(self.asked)
        event_id = await super().send(room_id, content, txn_id)
        self.one_sent.set()
        return event_id


async def test_a_reply_goes_out_with_no_transaction_between_its_commit_and_the_send(
        tmp_path: Path, database_url: str) -> None:
    """The reply is written claimed (and fenced) in the command's own transaction, so the lane sends it on that
    claim: between the command's commit and the send no statement writes and no transaction commits."""
    asked: list[str] = []
    transport = NotingTransport(asked)
    runtime, loop = await _sending(tmp_path, database_url, transport)
    assert runtime.sender and runtime.dispatcher
    engine = runtime.engine.sync_engine

    whole: list[str] = []  # the same statements, not cut short

    def statement(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        whole.append(" ".join(sql.split()).upper())
        asked.append(whole[-1][:60])

    def commit(_conn: Any) -> None:
        whole.append("COMMIT")
        asked.append("COMMIT")

    try:
        # The audit witness publishes the chain head once at start: its work is not the command's.
        for _ in range(600):
            if runtime.witness.last is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.wait_for(runtime.sender.drain(), timeout=20)  # nothing of the start left to send
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", commit)
        await ping_handled(runtime, "$ping-on-its-claim")
        await asyncio.wait_for(transport.one_sent.wait(), timeout=20)
        txn = txn_id_for("$ping-on-its-claim")

        async def recorded() -> None:
            while True:
                async with runtime.sessions() as s:
                    if await s.scalar(select(OutgoingMessage.status).where(OutgoingMessage.txn_id == txn)) == "sent":
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(recorded(), timeout=20)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
        await cancel_within([loop])
        await runtime.close()
    assert transport.sent == ["pong"]
    at_send = transport.asked_at_send[txn]
    written = next(i for i, sql in enumerate(asked) if sql.startswith("INSERT INTO OUTGOING_MESSAGE"))
    committed = asked.index("COMMIT", written)  # the command's transaction: inbox row, reply, commit
    between = asked[committed + 1:at_send]
    assert not [sql for sql in between if sql == "COMMIT" or "PG_LOCKS" in sql
                or sql.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE"))], between
    # The listener does see the sender's own work: what records the send, after it (on PostgreSQL a part of the
    # audit records' statement, on SQLite a statement of its own).
    after = whole[at_send:]
    assert any("UPDATE OUTGOING_MESSAGE SET" in sql for sql in after) and "COMMIT" in after, after


class HeldTransport(NotingTransport):
    """Holds the first send open until released, so the replies committed meanwhile wait in the lane behind it."""

    def __init__(self, asked: list[str]) -> None:
        super().__init__(asked)
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        if not self.held.is_set():
            self.held.set()
            await self.release.wait()
        return await super().send(room_id, content, txn_id)


async def test_a_run_of_replies_is_recorded_in_one_transaction_after_it(tmp_path: Path, database_url: str) -> None:
    """Replies that wait in the lane go out one after the other, each without waiting for the previous one's
    record; the run is recorded (sent, audited) in one transaction once the lane has nothing more to send."""
    asked: list[str] = []
    transport = HeldTransport(asked)
    runtime, loop = await _sending(tmp_path, database_url, transport)
    assert runtime.sender and runtime.dispatcher
    engine = runtime.engine.sync_engine
    events = [f"$run-{i}" for i in range(3)]

    def statement(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        asked.append(" ".join(sql.split()).upper())


    async def recorded() -> None:
        while True:
            async with runtime.sessions() as s:
                if await s.scalar(select(func.count()).select_from(OutgoingMessage).where(
                        OutgoingMessage.status == "sent")) == len(events):
                    return
            await asyncio.sleep(0.05)

    try:
        await ping_handled(runtime, events[0])
        await asyncio.wait_for(transport.held.wait(), timeout=20)
        for event_id in events[1:]:
            await ping_handled(runtime, event_id)
        event.listen(engine, "before_cursor_execute", statement)
        transport.release.set()
        await asyncio.wait_for(recorded(), timeout=20)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        transport.release.set()
        await cancel_within([loop])
        await runtime.close()
    assert list(transport.asked_at_send) == [txn_id_for(e) for e in events]  # in order, each once
    sends = sorted(transport.asked_at_send.values())
    # The record sets sent_at (on PostgreSQL inside the audit records' statement); the start's take-over of stale
    # claims (an UPDATE of its own, which may run late on a busy machine) does not.
    records = [i for i, sql in enumerate(asked) if "UPDATE OUTGOING_MESSAGE SET" in sql and "SENT_AT" in sql]
    # ``sends`` holds how many statements had run at each send: the record is a later one.
    assert len(records) == 1 and records[0] >= sends[-1], (sends, asked)  # one record, after the last send
    async with runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.kind == "bericht.verzonden")) == len(events)


class SlowReplyTransport(RecordingTransport):
    """Holds the reply 'pong' on its way until released (a slow homeserver), and notes sends and redactions in
    one order."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.reply_on_its_way = asyncio.Event()
        self.release = asyncio.Event()
        self.redacted_one = asyncio.Event()

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        if content.get("body") == "pong":
            self.reply_on_its_way.set()
            await self.release.wait()
        self.order.append(f"send {content.get('body')}")
        return await super().send(room_id, content, txn_id)

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        self.order.append(f"redact {event_id}")
        await super().redact(room_id, event_id, reason, txn_id)
        self.redacted_one.set()


async def test_a_redaction_waits_for_the_reply_on_its_way(tmp_path: Path, sqlite_url: str) -> None:
    """The redaction loop shares the bot's rate limit at the homeserver with the replies: a purge's redactions
    wait while a person's answer is being sent, then go on."""
    runtime = Runtime(load_settings(write_config(tmp_path, sqlite_url)))
    transport = SlowReplyTransport()
    await runtime.start(transport, http=False)
    assert runtime.sender and runtime.redactor and runtime.dispatcher and runtime.redactor.replies_first
    yielded = asyncio.Event()
    replies_first = runtime.redactor.replies_first
    reply_out_when_done: list[bool] = []

    async def noted(max_wait_s: float) -> None:
        """The loop's own wait, observed (with a bound generous enough for a busy machine): when it ends, was the
        reply out?"""
        yielded.set()
        await replies_first(60.0)
        reply_out_when_done.append("send pong" in transport.order)

    runtime.redactor.replies_first = noted
    now = runtime.clock.now()
    async with runtime.sessions() as s, s.begin():  # an old case message, sent long ago
        s.add(OutgoingMessage(room_id=CONSOLE_ROOM, txn_id="old-case", content=None, status="sent",
                              event_id="$old-case", carries_case_data=True, created_at=now - timedelta(days=60),
                              next_attempt_at=now - timedelta(days=60), sent_at=now - timedelta(days=60)))
    loops = [asyncio.create_task(runtime.sender.run()), asyncio.create_task(runtime.redactor.run())]
    try:
        await ping_handled(runtime, "$asks", sent_at=now)
        await asyncio.wait_for(transport.reply_on_its_way.wait(), timeout=20)
        async with runtime.sessions() as s, s.begin():  # the retention purge marks the old message
            assert await mark_expired(s, before=now - timedelta(days=30)) == 1
        runtime.redactor.wake()
        await asyncio.wait_for(yielded.wait(), timeout=20)
        assert transport.redacted == [], "no redaction while the reply is on its way"
        transport.release.set()
        await asyncio.wait_for(transport.redacted_one.wait(), timeout=20)
        assert reply_out_when_done == [True], "the redaction waited for the reply"
        assert transport.order == ["send pong", "redact $old-case"]
    finally:
        transport.release.set()
        await cancel_within(loops)
        await runtime.close()


async def test_a_stop_gives_back_the_replies_it_will_not_send(tmp_path: Path, database_url: str) -> None:
    """Stopped while one reply is on its way and two wait behind it: the two lose this instance's claim, so the
    next instance sends them at once; the one on its way keeps it (it may have reached the homeserver)."""
    transport = HeldTransport([])
    runtime, loop = await _sending(tmp_path, database_url, transport)
    assert runtime.sender and runtime.dispatcher
    try:
        for i in range(3):
            await ping_handled(runtime, f"$stop-{i}")
            if i == 0:
                await asyncio.wait_for(transport.held.wait(), timeout=20)
        await cancel_within([loop])
        async with runtime.sessions() as s:
            claims = dict((await s.execute(select(OutgoingMessage.txn_id, OutgoingMessage.claimed_until)
                                           .where(OutgoingMessage.status == "pending"))).all())
        assert claims.keys() == {txn_id_for(f"$stop-{i}") for i in range(3)}
        assert claims[txn_id_for("$stop-0")] is not None, "the reply on its way keeps its claim"
        assert claims[txn_id_for("$stop-1")] is None and claims[txn_id_for("$stop-2")] is None
    finally:
        transport.release.set()
        await cancel_within([loop])
        await runtime.close()


def test_the_sender_remembers_the_latest_sent_ids() -> None:
    """What neither lane sends again: the last ``size`` txn ids, each once, the oldest given up first (asked on
    every send, so kept in a set rather than scanned)."""
    recent = RecentlySent(3)
    for txn_id in ("a", "b", "a", "c", "d"):
        recent.add(txn_id)
    assert [t in recent for t in "abcd"] == [False, True, True, True]
