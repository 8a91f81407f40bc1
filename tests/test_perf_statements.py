"""How much database work a command costs, and that readers never hold the write lock.

The statement bounds document the design (counted by a SQLAlchemy event listener on the real engine, both
databases; SQLite counts its ``BEGIN`` as a statement, PostgreSQL begins through the driver):
- ``!ping`` and ``!help``: exactly what exactly-once needs, the inbox row and the reply (plus ``BEGIN``).
- ``!check``: inbox row (written at commit, where a duplicate collides), registry lookup, the fact rows in one
  statement, the room's joined members with what the room has been shown (one statement; need to know per
  reader, services/publiek.py), the reply, and the audit records (two, last before the commit: the chain head
  this process committed last is moved under a condition that it still is the head, then the records go in;
  storage/audit.py's design). On PostgreSQL the inbox row, the facts, the arrivals, the move and the records are
  one statement at commit (storage/commit_tail.py), and the command runs without a transaction, so the reply goes
  in that statement too: three statements in all, and no ``BEGIN`` or ``COMMIT``. A hit adds the arrival rows for
  all its houses in one statement (``!werklijst``); what the room has been shown is written only when that grows.
  The release lookup only runs when a hit-no-hit veiligheidshuis knows the person.
- a read-only command (``!rapport``): its queries in a reader transaction, then inbox row, audit record and reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.util import await_only

from bot.dispatcher import IncomingCommand, Outcome
from bot.transport.console import CONSOLE_ROOM
from commands.base import Context
from commands.parsing import ParsedArgs
from devtools.synapse import free_port
from services.reply import Reply
from storage.audit import verify_chain
from storage.db import autocommits, create_engine, read_only, session_factory
from storage.leader import database_unreachable
from storage.models import AuditRecord, InboxEntry, OutgoingMessage
from storage.statistiek_models import CHECK, StatistiekFeit
from storage.werklijst_models import Binnenkomst
from tests.harness.config import user_for
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn, markering, seed, start_bot
from tests.harness.tcp_proxy import TcpProxy

PING_MAX = 3
CHECK_MAX = 9  # a hit in a room that has seen such fields before (SQLite, BEGIN counted); a miss needs 8
# PostgreSQL, where each statement is a round trip: the inbox row, the facts, the arrivals, the audit records and
# the reply leave in one statement (storage.commit_tail), beside the lookup and the audience.
CHECK_MAX_POSTGRESQL = 3
RAPPORT_WRITES_MAX = 5  # BEGIN, inbox row, audit record (2), reply


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    # No ticker: the listener counts every statement on the engine, and only the command's may be counted.
    b = await start_bot(tmp_path, database_url, sections={"aanvraag": {"tik_seconden": 0}})
    # The audit witness publishes the chain head once at start (then every five minutes): wait for that, so its
    # read is not counted as a command's.
    for _ in range(600):
        if b.runtime.witness.last is not None:
            break
        await asyncio.sleep(0.05)
    try:
        yield b
    finally:
        await b.close()


@contextmanager
def counted(bot: ConsoleBot) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(" ".join(statement.split())[:60].upper())

    engine = bot.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def handle(bot: ConsoleBot, body: str, event_id: str, role: str = "ovj") -> Outcome:
    assert bot.runtime.dispatcher
    return await bot.runtime.dispatcher.handle(IncomingCommand(
        event_id=event_id, room_id=CONSOLE_ROOM, sender=user_for(role), body=body, sent_at=bot.runtime.clock.now()))


async def test_statements_per_command(bot: ConsoleBot, database_url: str) -> None:
    check_max = CHECK_MAX_POSTGRESQL if database_url.startswith("postgresql") else CHECK_MAX
    known = bsn(1)
    await seed(bot, markering(known), markering(bsn(4)))
    # The room has seen these fields once already (the steady state at a ZSM table): see the module docstring.
    assert (await handle(bot, f"!check {bsn(4)}", "$count-warm")).status == "handled"
    for body, bound in (("!ping", PING_MAX), ("!help", PING_MAX), (f"!check {known}", check_max),
                        (f"!check {bsn(2)}", check_max)):
        with counted(bot) as statements:
            outcome = await handle(bot, body, f"$count-{body}")
        assert outcome.status == "handled", body
        assert len(statements) <= bound, (body, statements)
        assert not any(s.startswith("SELECT INBOX") for s in statements), statements  # no lookup
    with counted(bot) as statements:
        assert (await handle(bot, "!rapport 2026-06", "$count-rapport", role="kpc")).status == "handled"
    first_write = next(i for i, s in enumerate(statements)
                       if s.startswith(("INSERT", "UPDATE", "BEGIN IMMEDIATE", "SELECT AUDIT_HEAD", "WITH MOVED")))
    assert all(not s.startswith(("INSERT", "UPDATE", "DELETE")) for s in statements[:first_write]), statements
    assert len(statements[first_write:]) <= RAPPORT_WRITES_MAX, statements


async def test_a_duplicate_leaves_nothing(bot: ConsoleBot) -> None:
    """A second delivery collides on the inbox row at its commit and rolls back whole: no second reply, audit
    record, fact or arrival."""
    known = bsn(3)
    await seed(bot, markering(known))
    assert (await handle(bot, f"!check {known}", "$twice")).status == "handled"
    assert (await handle(bot, f"!check {known}", "$twice")).status == "duplicate"
    assert (await handle(bot, "!rapport 2026-06", "$twice-rapport", role="kpc")).status == "handled"
    assert (await handle(bot, "!rapport 2026-06", "$twice-rapport", role="kpc")).status == "duplicate"
    async with bot.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 2
        assert await s.scalar(select(func.count()).select_from(OutgoingMessage)) == 2
        assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.kind == "rapport.opgevraagd")) == 1
        assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.kind == "register.raadpleging")) == 1
        assert await s.scalar(select(func.count()).select_from(StatistiekFeit).where(
            StatistiekFeit.kind == CHECK)) == 1
        assert await s.scalar(select(func.count()).select_from(Binnenkomst)) == 1


async def test_a_long_report_does_not_stall_a_check(bot: ConsoleBot) -> None:
    """The report is parked inside its transaction (after its queries and its audit call) until the !check has
    been committed; with the report in the write transaction the !check would wait behind it."""
    known = bsn(4)
    await seed(bot, markering(known))
    spec = bot.runtime.services.table.get("rapport")
    assert spec is not None
    original = spec.handler
    parked, release = asyncio.Event(), asyncio.Event()

    async def slow_report(ctx: Context, args: ParsedArgs) -> Reply:
        reply = await original(ctx, args)
        parked.set()
        await release.wait()
        return reply

    object.__setattr__(spec, "handler", slow_report)
    try:
        report = asyncio.create_task(handle(bot, "!rapport 2026-01-01..2026-12-31", "$year", role="kpc"))
        await asyncio.wait_for(parked.wait(), timeout=20)
        # The bound is a safety net against a hang, not a timing assertion.
        assert (await asyncio.wait_for(handle(bot, f"!check {known}", "$during"), timeout=20)).status == "handled"
        assert not report.done()
        release.set()
        assert (await asyncio.wait_for(report, timeout=20)).status == "handled"
    finally:
        release.set()
        object.__setattr__(spec, "handler", original)
    async with bot.runtime.sessions() as s:
        kinds = [k for (k,) in (await s.execute(select(AuditRecord.kind).order_by(AuditRecord.id))).all()]
    assert kinds[-2:] == ["register.raadpleging", "rapport.opgevraagd"]  # each written when it committed


async def test_a_reader_cannot_write(bot: ConsoleBot, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite readers are a deferred BEGIN without enforcement; PostgreSQL's READ ONLY catches writes")
    async with read_only(bot.runtime.sessions) as s:
        assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 0
        with pytest.raises(Exception) as refused:
            await s.execute(text("INSERT INTO bot_state (key, value, updated_at) VALUES ('k', 'v', '2026-01-01')"))
    assert "read" in str(refused.value).lower()
    async with bot.runtime.sessions() as s, s.begin():  # the pooled connection writes again afterwards
        await s.execute(text("INSERT INTO bot_state (key, value, updated_at) VALUES ('k', 'v', '2026-01-01')"))


def test_a_reply_under_a_fence_reuses_one_statement() -> None:
    """On PostgreSQL every reply is written already claimed under the active lock's fence (``PgLeader``). The
    fence is one expression per lock connection and the reply's insert under it is built once: built and compiled
    anew for every reply, it cost a ``!check`` about 0.4 ms at the median (bench.check_lookup, with the election as
    ``zsm-bot run`` has it)."""
    from storage import commit_tail, leader, outgoing

    fence = leader._holds_active_lock(4242)
    assert leader._holds_active_lock(4242) is fence and leader._holds_active_lock(4243) is not fence
    statement = commit_tail.insert_back(outgoing._insert_back(fence))
    assert commit_tail.insert_back(outgoing._insert_back(fence)) is statement
    assert commit_tail.insert_back(outgoing._insert_back(leader._holds_active_lock(4243))) is not statement


async def _written(bot: ConsoleBot) -> tuple[int, int, int, bool]:
    """Inbox rows, queued messages, lookup records, and whether the audit chain holds."""
    async with bot.runtime.sessions() as s:
        chain = await verify_chain(s, bot.runtime.services.auditor, now=bot.runtime.clock.now(),
                                   retention=timedelta(days=3650))
        return (int(await s.scalar(select(func.count()).select_from(InboxEntry)) or 0),
                int(await s.scalar(select(func.count()).select_from(OutgoingMessage)) or 0),
                int(await s.scalar(select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.kind == "register.raadpleging")) or 0),
                chain.ok)


async def test_a_check_that_writes_first_runs_again_in_a_transaction(bot: ConsoleBot, database_url: str) -> None:
    """On PostgreSQL a ``!check`` starts without a transaction. The first in a room writes what the room has been
    shown before its commit: that write does not run, and the command runs again in a transaction (its lookup twice,
    its effects once). Then a check whose head another writer moved: again in a transaction, once. A duplicate
    delivery of a check without a transaction collides in its one statement. SQLite runs each in a transaction."""
    postgres = database_url.startswith("postgresql")
    known = bsn(5)
    await seed(bot, markering(known))
    with counted(bot) as statements:
        assert (await handle(bot, f"!check {known}", "$first-here")).status == "handled"
    lookups = [s for s in statements if s.startswith("SELECT MARKERING")]
    assert len(lookups) == (2 if postgres else 1), statements
    assert await _written(bot) == (1, 1, 1, True)
    reruns = bot.runtime.metrics.rerun_in_transaction.labels("check")
    assert reruns._value.get() == (1 if postgres else 0)  # what an operator sees of it

    with counted(bot) as statements:
        assert (await handle(bot, f"!check {known}", "$steady")).status == "handled"
    assert len([s for s in statements if s.startswith("SELECT MARKERING")]) == 1, statements
    assert await _written(bot) == (2, 2, 2, True)

    other = create_engine(database_url)  # another writer (an import, the other instance) moves the audit head
    try:
        async with session_factory(other)() as s, s.begin():
            await bot.runtime.services.auditor.record(s, kind="test.elders", at=bot.runtime.clock.now())
    finally:
        await other.dispose()
    assert (await handle(bot, f"!check {known}", "$after-elsewhere")).status == "handled"
    assert (await handle(bot, f"!check {known}", "$after-elsewhere")).status == "duplicate"
    assert (await handle(bot, f"!check {known}", "$steady")).status == "duplicate"
    assert await _written(bot) == (3, 3, 3, True)


async def test_a_check_with_a_note_runs_in_a_transaction(tmp_path: Path, database_url: str) -> None:
    """An answer that goes to the asker's direct room is a note beside the reply: notes are looked up and written
    before the reply, so such a check runs in a transaction, and both messages are queued once."""
    b = await start_bot(tmp_path, database_url, sections={"aanvraag": {"tik_seconden": 0},
                                                          "check": {"details_direct": True}})
    try:
        known = bsn(6)
        await seed(b, markering(known))
        for event_id in ("$direct-1", "$direct-2"):
            assert (await handle(b, f"!check {known}", event_id)).status == "handled"
        assert (await handle(b, f"!check {known}", "$direct-2")).status == "duplicate"
        assert await _written(b) == (2, 4, 2, True)
    finally:
        await b.close()


async def test_a_check_cut_off_at_its_one_statement_is_answered_once_after(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL: the database goes away (a TCP proxy in front of it, stopped) just as a ``!check``'s one statement
    is sent. The dispatcher raises it as an outage, as from a transaction (the sync loop holds the event and hands
    it again); handled again once the database is back, the check is answered once: one inbox row, one reply, one
    lookup record, and the chain holds."""
    proxy = TcpProxy("127.0.0.1", 5432, free_port())
    await proxy.start()
    b = await start_bot(tmp_path, pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"),
                        sections={"aanvraag": {"tik_seconden": 0}})
    cut: list[bool] = []  # whether the statement cut off ran without a transaction around it

    def at_statement(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("WITH moved AS") and not cut:
            cut.append(autocommits(conn.engine))
            await_only(proxy.stop())  # inside the session's greenlet, as the statement leaves

    async def handled_again(event_id: str) -> Outcome:
        for _ in range(10):  # as the sync loop does: a pooled connection that died fails its first statement
            try:
                return await handle(b, f"!check {known}", event_id)
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
        raise AssertionError("the database did not come back")

    try:
        known = bsn(7)
        await seed(b, markering(known))
        assert (await handle(b, f"!check {known}", "$warm")).status == "handled"  # the room's first: a transaction
        event.listen(b.runtime.engine.sync_engine, "before_cursor_execute", at_statement)
        try:
            with pytest.raises(Exception) as outage:
                await handle(b, f"!check {known}", "$cut")
        finally:
            event.remove(b.runtime.engine.sync_engine, "before_cursor_execute", at_statement)
        assert cut == [True] and database_unreachable(outage.value), outage.value
        await proxy.start()
        assert (await handled_again("$cut")).status == "handled"
        assert (await handled_again("$cut")).status == "duplicate"
        assert await _written(b) == (2, 2, 2, True)
    finally:
        await b.close()
        await proxy.stop()
