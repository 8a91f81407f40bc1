"""Rows written at commit (``storage.commit_tail``): the facts and arrivals a command records stand or fall with it,
in one statement with the audit records on PostgreSQL, whether or not the transaction recorded anything to audit,
whatever their number, and when another writer moved the audit head meanwhile. Both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from storage import audit, commit_tail, outgoing
from storage.audit import (
    ONE_STATEMENT_MAX_RECORDS,
    Auditor,
    HeadElsewhere,
    NeedsTransaction,
    one_statement_sessions,
    prune,
    verify_chain,
)
from storage.db import SessionFactory, create_engine, session_factory
from storage.leader import SOLO, PgLeader
from storage.migrate import upgrade
from storage.models import AuditRecord, OutgoingMessage
from storage.outgoing import NewMessage, Queued
from storage.statistiek_models import CHECK, HIT, Feit, StatistiekFeit, record_facts
from storage.werklijst_models import Binnenkomst
from storage.werklijst_queries import add_arrivals
from tests.harness import pg
from tests.harness.ha import wait_until

KEY = b"k" * 32
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
ROOM = "!kamer:localhost"


async def _counts(sessions: SessionFactory) -> tuple[int, int, int]:
    async with sessions() as s:
        return (int(await s.scalar(select(func.count()).select_from(StatistiekFeit)) or 0),
                int(await s.scalar(select(func.count()).select_from(Binnenkomst)) or 0),
                int(await s.scalar(select(func.count()).select_from(AuditRecord)) or 0))


async def _chain_ok(sessions: SessionFactory) -> bool:
    async with sessions() as s:
        return (await verify_chain(s, Auditor(KEY), now=T0, retention=timedelta(days=1))).ok


async def test_rows_go_in_at_commit_with_or_without_audit_and_never_on_rollback(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    # SQLite has no statement without its transaction's write lock to offer (and no round trips to save)
    assert (one_statement_sessions(sessions) is None) == database_url.startswith("sqlite")
    try:
        await upgrade(engine)
        async with sessions() as s, s.begin():  # nothing audited: the tail writes itself
            await record_facts(s, [Feit(CHECK, T0), Feit(HIT, T0, "utrecht")])
            await add_arrivals(s, subject="s1", masked="***1", veiligheidshuizen=["utrecht", "twente"], via="check",
                               at=T0)
            assert await s.scalar(select(func.count()).select_from(StatistiekFeit)) == 0  # not before the commit
        assert await _counts(sessions) == (2, 2, 0)
        async with sessions() as s, s.begin():  # audited: in the audit's statement
            await record_facts(s, [Feit(CHECK, T0)])
            await add_arrivals(s, subject="s2", masked="***2", veiligheidshuizen=["eemland"], via="check", at=T0)
            await Auditor(KEY).record(s, kind="register.raadpleging", at=T0, person="111222333")
        assert await _counts(sessions) == (3, 3, 1)

        class Undo(Exception):
            pass

        try:
            async with sessions() as s, s.begin():
                await record_facts(s, [Feit(CHECK, T0)])
                await Auditor(KEY).record(s, kind="register.raadpleging", at=T0, person="111222333")
                raise Undo
        except Undo:
            pass
        async with sessions() as s, s.begin():  # the rolled-back rows did not stay queued on the session's info
            await Auditor(KEY).record(s, kind="register.raadpleging", at=T0, person="111222333")
        assert await _counts(sessions) == (3, 3, 2)
    finally:
        await engine.dispose()


async def test_a_bulk_tail_goes_apart_and_the_chain_stays_whole(database_url: str) -> None:
    """More rows than fit beside the audit move (a day's facts at once) are written as statements of their own, and
    so are more records than a command makes (a batch of mails, a deadline recovery)."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    bulk = commit_tail.FOLD_MAX_ROWS * 3 + 7
    try:
        await upgrade(engine)
        many = ONE_STATEMENT_MAX_RECORDS + 2
        for records in (1, many):  # the first append reads the head, the second starts from the one remembered
            async with sessions() as s, s.begin():
                await record_facts(s, [Feit(HIT, T0, "utrecht", minderjarig=i % 2 == 0) for i in range(bulk)])
                for _ in range(records):  # more records than share the move's statement: the move, then them
                    await Auditor(KEY).record(s, kind="statistiek.bulk", at=T0)
        assert await _counts(sessions) == (2 * bulk, 0, 1 + many)
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def test_the_tail_is_written_once_when_another_writer_moved_the_head(database_url: str) -> None:
    """A second engine (another instance, a CLI) appends between two of ours: our move finds the head elsewhere,
    the records are chained again after the real head, and the facts of that transaction are there exactly once."""
    ours, theirs = create_engine(database_url), create_engine(database_url)
    try:
        await upgrade(ours)
        for i, engine in enumerate((ours, theirs, ours, theirs, ours)):
            async with session_factory(engine)() as s, s.begin():
                await record_facts(s, [Feit(CHECK, T0), Feit(HIT, T0, "twente")])
                await Auditor(KEY).record(s, kind="test.afwisselend", at=T0, details={"i": i})
        assert await _counts(session_factory(ours)) == (10, 0, 5)
        async with session_factory(ours)() as s:
            ids = (await s.execute(select(AuditRecord.id).order_by(AuditRecord.id))).scalars().all()
        assert list(ids) == [1, 2, 3, 4, 5]
        assert await _chain_ok(session_factory(theirs))
    finally:
        await ours.dispose()
        await theirs.dispose()


async def test_writers_of_one_process_take_turns_at_the_head(pg_url: str) -> None:
    """PostgreSQL: commits of one process that overlap (a command, and the sender recording the reply it just sent)
    each start from the head the one before committed: none finds the head moved and reads it again under its
    lock, and the chain is whole."""
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    writers = 8
    together = asyncio.Barrier(writers)

    async def writer(i: int) -> None:
        async with sessions() as s:
            await record_facts(s, [Feit(CHECK, T0)])
            await Auditor(KEY).record(s, kind="test.tegelijk", at=T0, details={"i": i})
            await s.execute(select(1))  # the transaction is open on its connection
            await together.wait()  # all commit at once
            await s.commit()

    try:
        await upgrade(engine)
        async with sessions() as s, s.begin():  # the first append of the process reads the head
            await Auditor(KEY).record(s, kind="test.eerst", at=T0)
        statements.clear()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        assert [st for st in statements if "FOR UPDATE" in st] == []
        assert await _counts(sessions) == (writers, 0, writers + 1)
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def _a_command(sessions: SessionFactory, auditor: Auditor) -> None:
    """A command's commit beside a purge: one audit record in a transaction of its own."""
    async with sessions() as s, s.begin():
        await auditor.record(s, kind="test.commando", at=T0)


async def test_the_purge_takes_the_turn_before_the_heads_lock(pg_url: str) -> None:
    """PostgreSQL: the purge locks the audit head to move its checkpoint, and appends its own record at its commit.
    It takes the process's turn before that lock, as every writer does: a command that commits meanwhile waits for
    the turn, not for the row lock while holding the turn, so the purge's commit never waits out TURN_WAIT_S (a
    command took half a second each day when it did)."""
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    auditor = Auditor(KEY)
    try:
        await upgrade(engine)
        async with sessions() as s, s.begin():
            await auditor.record(s, kind="test.oud", at=T0 - timedelta(days=400))
            await auditor.record(s, kind="test.recent", at=T0)
        timeouts = audit.turn_timeouts
        turn = audit._turns[audit._of(engine.sync_engine)]

        async with sessions() as purging, purging.begin():
            assert await prune(purging, auditor, T0 - timedelta(days=1)) == 1
            assert turn.locked()  # taken with the head's row lock
            committing = asyncio.create_task(_a_command(sessions, auditor))
            # The command reaches the turn and waits there (the lock's queue of waiters, asyncio's own).
            await wait_until(lambda: bool(getattr(turn, "_waiters", None)), "the command waiting for the turn", 30)
            await auditor.record(purging, kind="test.purge", at=T0)
        await asyncio.wait_for(committing, timeout=30)
        assert audit.turn_timeouts == timeouts
        assert await _counts(sessions) == (0, 0, 3)  # recent, purge, command; the old one pruned
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def test_a_turn_not_given_in_time_is_counted_and_shown_as_a_metric(pg_url: str) -> None:
    """A writer kept from the turn longer than TURN_WAIT_S goes on without it (the head's row lock still keeps the
    chain whole) and is counted: ``zsm_audit_turn_timeouts_total`` on /metrics. Here a purge holds the turn and the
    head for as long as the test keeps its transaction open."""
    from bot.metrics import Metrics

    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    auditor = Auditor(KEY)
    try:
        await upgrade(engine)
        async with sessions() as s, s.begin():
            await auditor.record(s, kind="test.eerst", at=T0)
        before = audit.turn_timeouts

        async with sessions() as purging, purging.begin():
            await prune(purging, auditor, T0 - timedelta(days=1))
            committing = asyncio.create_task(_a_command(sessions, auditor))
            await wait_until(lambda: audit.turn_timeouts > before, "the command going on without the turn", 30)
        await asyncio.wait_for(committing, timeout=30)
        assert audit.turn_timeouts == before + 1
        shown = [line for line in Metrics().render().decode().splitlines()
                 if line.startswith("zsm_audit_turn_timeouts_total ")]
        assert shown == [f"zsm_audit_turn_timeouts_total {float(before + 1)}"]
        assert await _counts(sessions) == (0, 0, 2)
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def test_the_turn_is_given_back_when_the_commit_fails(pg_url: str) -> None:
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    try:
        await upgrade(engine)
        with pytest.raises(TypeError):
            async with sessions() as s, s.begin():
                bad: dict[str, Any] = {"niet te tekenen": object()}  # fails at commit, after the turn was taken
                await Auditor(KEY).record(s, kind="test.fout", at=T0, details=bad)
        assert not audit._turns[audit._of(engine.sync_engine)].locked()
        async with asyncio.timeout(audit.TURN_WAIT_S / 2), sessions() as s, s.begin():  # not kept waiting
            await Auditor(KEY).record(s, kind="test.daarna", at=T0)
        assert await _counts(sessions) == (0, 0, 1)
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def test_work_without_a_transaction_goes_in_one_statement_or_not_at_all(pg_url: str) -> None:
    """PostgreSQL: the send loop's record of sends (rows marked sent, an audit record each) runs without a
    transaction around it, as the one statement of the append. Where that statement cannot be all of it (this
    process does not know the head yet, or another writer moved it) nothing is written and ``HeadElsewhere`` says
    so; the same work in a transaction then writes it, once."""
    ours, theirs = create_engine(pg_url), create_engine(pg_url)
    sessions = session_factory(ours)
    alone = one_statement_sessions(sessions)
    assert alone is not None and one_statement_sessions(sessions) is alone
    statements: list[str] = []
    event.listen(ours.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))

    async def record(factory: SessionFactory, row: Queued, event_id: str) -> None:
        async with factory() as s, s.begin():
            outgoing.mark_sent(s, [(row.id, row.txn_id, event_id)], T0)
            await Auditor(KEY).record(s, kind="bericht.verzonden", at=T0, details={"txn": row.txn_id})

    async def sent() -> list[tuple[str, str | None]]:
        async with sessions() as s:
            return [(t, e) for t, e in (await s.execute(select(OutgoingMessage.txn_id, OutgoingMessage.event_id)
                                                         .where(OutgoingMessage.status == "sent")
                                                         .order_by(OutgoingMessage.id))).all()]

    try:
        await upgrade(ours)
        async with sessions() as s, s.begin():
            rows = [await outgoing.insert_one(s, NewMessage("!kamer:localhost", {"body": f"m{i}"}, f"t{i}"), T0)
                    for i in range(3)]
        with pytest.raises(HeadElsewhere):  # the first append of the process: the head is not known here yet
            await record(alone, rows[0], "$e0")
        assert await sent() == [] and await _counts(sessions) == (0, 0, 0)
        await record(sessions, rows[0], "$e0")
        statements.clear()
        await record(alone, rows[1], "$e1")
        assert len(statements) == 1 and "UPDATE outgoing_message SET" in statements[0], statements
        async with session_factory(theirs)() as s, s.begin():  # another writer moves the head
            await Auditor(KEY).record(s, kind="test.elders", at=T0)
        with pytest.raises(HeadElsewhere):
            await record(alone, rows[2], "$e2")
        assert await sent() == [("t0", "$e0"), ("t1", "$e1")] and await _counts(sessions) == (0, 0, 3)
        await record(sessions, rows[2], "$e2")  # in a transaction: the head read under its lock
        assert await sent() == [("t0", "$e0"), ("t1", "$e1"), ("t2", "$e2")]
        assert await _counts(sessions) == (0, 0, 4)
        assert await _chain_ok(sessions)
    finally:
        await ours.dispose()
        await theirs.dispose()


async def test_a_command_without_a_transaction_writes_its_reply_in_the_one_statement(pg_url: str) -> None:
    """PostgreSQL: a command on a session without a transaction only reads until its commit, and the commit's one
    statement writes the records and the reply, handing back the reply's id and its claim (fenced: none once this
    instance has lost the active lock). A write before the commit, rows without records, or a head moved by
    another writer raise ``NeedsTransaction`` and write nothing."""
    ours, theirs = create_engine(pg_url), create_engine(pg_url)
    sessions = session_factory(ours)
    alone = one_statement_sessions(sessions)
    assert alone is not None
    leader = PgLeader(pg_url)
    election = asyncio.create_task(leader.run())
    statements: list[str] = []
    event.listen(ours.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))

    async def reply(txn_id: str) -> Queued:
        async with alone() as s:
            await s.execute(select(func.count()).select_from(OutgoingMessage))  # a read runs on its own
            await Auditor(KEY).record(s, kind="test.antwoord", at=T0, details={"txn": txn_id})
            written = outgoing.insert_one_at_commit(s, NewMessage(ROOM, {"body": txn_id}, txn_id), T0,
                                                    claim_for=leader)
            await s.commit()
        return written()

    async def stored() -> dict[str, tuple[int, datetime | None]]:
        async with sessions() as s:
            rows = await s.execute(select(OutgoingMessage.txn_id, OutgoingMessage.id, OutgoingMessage.claimed_until))
            return {t: (i, c) for t, i, c in rows.all()}

    try:
        await upgrade(ours)
        await wait_until(lambda: leader.active, "the lock", timeout=60)
        async with sessions() as s, s.begin():  # the first append of the process reads the head
            await Auditor(KEY).record(s, kind="test.eerst", at=T0)
        statements.clear()
        first = await reply("r1")
        assert len(statements) == 2 and statements[1].startswith("WITH moved AS"), statements
        assert first.claimed_until == T0 + outgoing.CLAIM_LEASE
        assert (await stored())["r1"] == (first.id, first.claimed_until)

        async with alone() as s:
            for write in (outgoing.insert_one(s, NewMessage(ROOM, {"body": "x"}, "x"), T0),
                          s.execute(select(OutgoingMessage.id).with_for_update()), s.execute(text("SELECT 1"))):
                with pytest.raises(NeedsTransaction):
                    await write
        with pytest.raises(NeedsTransaction):
            async with alone() as s:
                await record_facts(s, [Feit(CHECK, T0)])  # at commit, with no record to share a statement with
                await s.commit()
        assert list(await stored()) == ["r1"] and await _counts(sessions) == (0, 0, 2)

        await pg.end_backend(leader._pid)  # the active lock is gone; this instance has not noticed yet
        lost = await reply("r2")
        assert lost.claimed_until is None and (await stored())["r2"] == (lost.id, None)

        async with session_factory(theirs)() as s, s.begin():  # another writer moves the head
            await Auditor(KEY).record(s, kind="test.elders", at=T0)
        with pytest.raises(HeadElsewhere):
            await reply("r3")
        assert "r3" not in await stored() and await _counts(sessions) == (0, 0, 4)
        assert await _chain_ok(sessions)
    finally:
        election.cancel()
        await asyncio.gather(election, return_exceptions=True)
        await leader.close()
        await ours.dispose()
        await theirs.dispose()


async def test_a_row_handed_back_in_a_transaction(database_url: str) -> None:
    """In a transaction (SQLite; PostgreSQL's fallback) the handed-back row is written at commit too, by the
    audit's statement where it can share it or by a statement of its own, and its id and claim come back."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await upgrade(engine)
        for n, audited in enumerate((True, False, True)):
            async with sessions() as s, s.begin():
                if audited:
                    await Auditor(KEY).record(s, kind="test.antwoord", at=T0)
                written = outgoing.insert_one_at_commit(s, NewMessage(ROOM, {"body": n}, f"h{n}"), T0,
                                                        claim_for=SOLO)
            got = written()
            async with sessions() as s:
                row = (await s.execute(select(OutgoingMessage.id, OutgoingMessage.claimed_until)
                                       .where(OutgoingMessage.txn_id == f"h{n}"))).one()
            assert (got.id, got.claimed_until) == tuple(row) and got.claimed_until == T0 + outgoing.CLAIM_LEASE
        with pytest.raises(RuntimeError):  # rolled back: there is nothing to hand back
            async with sessions() as s, s.begin():
                written = outgoing.insert_one_at_commit(s, NewMessage(ROOM, {"body": 9}, "h9"), T0)
                raise RuntimeError("afgebroken")
        with pytest.raises(RuntimeError, match="not written"):
            written()
    finally:
        await engine.dispose()


async def test_a_send_recorded_after_its_row_went_leaves_a_new_row_with_its_id_alone(database_url: str) -> None:
    """SQLite gives the highest id again once its row is deleted: a reply sent, then removed (a person's messages
    removed at sepot 01) before its send was recorded, and a new reply written meanwhile under the same id. The
    record matches the txn id too, so the new reply stays pending and goes out (on PostgreSQL, where ids are never
    reused, the same record with another txn id shows it). Once in a transaction, once in one statement."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    alone = one_statement_sessions(sessions)
    try:
        await upgrade(engine)
        async with sessions() as s, s.begin():  # the audit head known to this process, for the one statement
            await Auditor(KEY).record(s, kind="test.eerst", at=T0)
        for n, factory in enumerate((sessions, alone or sessions)):
            async with sessions() as s, s.begin():
                gone = await outgoing.insert_one(s, NewMessage(ROOM, {"body": "oud"}, f"oud{n}"), T0)
            async with sessions() as s, s.begin():
                await s.execute(OutgoingMessage.__table__.delete().where(OutgoingMessage.id == gone.id))
                new = await outgoing.insert_one(s, NewMessage(ROOM, {"body": "nieuw"}, f"nieuw{n}"), T0)
            if database_url.startswith("sqlite"):
                assert new.id == gone.id  # the situation under test
            async with factory() as s, s.begin():
                outgoing.mark_sent(s, [(new.id, gone.txn_id, f"$oud{n}")], T0)
                await Auditor(KEY).record(s, kind="bericht.verzonden", at=T0, details={"txn": gone.txn_id})
            async with sessions() as s:
                status = await s.scalar(select(OutgoingMessage.status).where(OutgoingMessage.id == new.id))
            assert status == "pending"
        assert await _chain_ok(sessions)
    finally:
        await engine.dispose()


async def test_the_one_statement_hands_values_through_their_types_both_ways(pg_url: str) -> None:
    """PostgreSQL runs the commit's one statement as the driver's own SQL (``storage.driven``), so the types' work
    is done there: a record's time goes in as UTC to the millisecond whatever zone it came in, its details as JSON
    (text beyond ASCII, a nested null), the reply row gets its columns' defaults, and the claim handed back is the
    stored one, an aware time in UTC. The chain's MACs, computed over the values as given, verify over the values as
    stored."""
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    alone = one_statement_sessions(sessions)
    assert alone is not None
    leader = PgLeader(pg_url)
    election = asyncio.create_task(leader.run())
    amsterdam = T0.astimezone(timezone(timedelta(hours=1)))  # 10:00 in winter time is 09:00 UTC
    details = {"tekst": "één café — ‘citaat’", "leeg": None, "lijst": [1, {"a": None}]}
    try:
        await upgrade(engine)
        await wait_until(lambda: leader.active, "the lock", timeout=60)
        async with sessions() as s, s.begin():  # the first append of the process reads the head
            await Auditor(KEY).record(s, kind="test.eerst", at=T0)
        async with alone() as s:
            await Auditor(KEY).record(s, kind="test.typen", at=amsterdam + timedelta(microseconds=123_456),
                                      details=details)
            written = outgoing.insert_one_at_commit(s, NewMessage(ROOM, {"body": "één"}, "t1"), amsterdam,
                                                    claim_for=leader)
            await s.commit()
        back = written()
        async with sessions() as s:
            record = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "test.typen"))).scalar_one()
            row = (await s.execute(select(OutgoingMessage).where(OutgoingMessage.txn_id == "t1"))).scalar_one()
        assert record.at == T0 + timedelta(milliseconds=123) and record.at.utcoffset() == timedelta(0)
        assert record.details == details
        assert (row.status, row.attempts, row.redaction_attempts, row.priority, row.carries_case_data) == (
            "pending", 0, 0, 1, False)
        assert row.content == {"body": "één"}
        assert back.id == row.id and back.claimed_until == row.claimed_until == T0 + outgoing.CLAIM_LEASE
        assert back.claimed_until is not None and back.claimed_until.utcoffset() == timedelta(0)
        assert await _chain_ok(sessions)
    finally:
        election.cancel()
        await asyncio.gather(election, return_exceptions=True)
        await leader.close()
        await engine.dispose()


def test_a_shape_whose_defaults_the_driver_cannot_fill_is_refused_when_built() -> None:
    """A default computed per row (a callable) is filled in by SQLAlchemy's own execution, which the one statement
    does not go through: such a shape is refused once, when it is first built, and never written without it. A
    constant default is part of the built statement's fixed parameters."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    meta = MetaData()
    computed = Table("berekend", meta, Column("id", Integer, primary_key=True),
                     Column("staat", String, default=lambda: "open"))
    with pytest.raises(RuntimeError, match="cannot fill in the default"):
        audit._driven_of(dialect(), False, 1, ((insert(computed), ("id",), 1),))
    constant = Table("vast", meta, Column("id", Integer, primary_key=True), Column("staat", String, default="open"))
    built = audit._driven_of(dialect(), False, 1, ((insert(constant), ("id",), 1),))
    assert built.fixed["staat"] == "open" and "staat" in built.names and built.sql.startswith("WITH moved AS")
