"""The audit trail is tamper-evident (keyed MACs, a MAC-valid checkpoint, a witness outside the database) and
exportable per person and per user, on both databases.

The five kinds of tampering of issue 13 are each done as someone with write access to the database but without
the audit key would do them, and each is found by ``verify_chain`` (and the ``zsm-bot audit verify`` CLI), naming
the record or the witness."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from storage.audit import GENESIS, Auditor, Witness, chain_hash, current_head, verify_chain
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import AuditHead, AuditRecord
from tests.harness.config import write_config

BSN = "123456782"
OTHER_BSN = "111222333"
KEY = b"test-audit-key"  # the key tests.harness.config writes
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
RETENTION = timedelta(days=1825)
FIELDS = ("at", "kind", "actor", "role", "subject", "details")


async def _seed(url: str, n: int = 6) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    auditor = Auditor(KEY)
    async with sessions() as s, s.begin():
        for i in range(n):
            await auditor.record(s, kind="check.uitgevoerd" if i % 2 == 0 else "besluit.vastgelegd",
                                 at=T0 + timedelta(minutes=i), actor=f"@user{i % 2}:localhost", role="kpc",
                                 person=BSN if i < 4 else OTHER_BSN, details={"n": i})
    await engine.dispose()


async def _verify(url: str, *witnesses: Witness, now: datetime = NOW, key: bytes = KEY) -> tuple[bool, int | None,
                                                                                                  tuple[str, ...]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            r = await verify_chain(s, Auditor(key), now=now, retention=RETENTION, witnesses=witnesses)
            return r.ok, r.problem_at, r.problems
    finally:
        await engine.dispose()


async def _head(url: str) -> Witness:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            h = await current_head(s)
        return Witness(h.seq, h.mac, "getuige test")
    finally:
        await engine.dispose()


async def _tamper(url: str, *stmts: object) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            for stmt in stmts:
                await s.execute(stmt)  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def _rows(url: str) -> list[AuditRecord]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return list((await s.execute(select(AuditRecord).order_by(AuditRecord.id))).scalars())
    finally:
        await engine.dispose()


async def test_intact_chain_verifies_with_and_without_witness(database_url: str) -> None:
    await _seed(database_url)
    witness = await _head(database_url)
    assert witness.seq == 6
    assert await _verify(database_url) == (True, None, ())
    assert await _verify(database_url, witness) == (True, None, ())


async def test_records_carry_a_mac_not_an_unkeyed_hash(database_url: str) -> None:
    await _seed(database_url)
    rows = await _rows(database_url)
    prev = GENESIS
    for r in rows:
        assert r.hash == Auditor(KEY).mac(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, prev)
        assert r.hash != chain_hash(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, prev)
        prev = r.hash
    ok, at, problems = await _verify(database_url, key=b"another-key")
    assert not ok and at == 1 and "MAC klopt niet" in problems[0], "another key does not verify the chain"


async def test_changed_record_is_found(database_url: str) -> None:
    """Tampering 1: change a record (its stored MAC left as it was)."""
    await _seed(database_url)
    await _tamper(database_url, update(AuditRecord).where(AuditRecord.id == 3).values(details={"n": 99}))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3 and problems == ("record 3 is gewijzigd of herberekend: de MAC klopt niet",)


async def test_changed_record_with_recomputed_hashes_is_found(database_url: str) -> None:
    """Change a record and recompute the unkeyed hashes from there on, head included: the MAC gives it away."""
    await _seed(database_url)
    await _recompute_unkeyed(database_url, change={3: {"details": {"n": 99}}})
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3 and "record 3 is gewijzigd of herberekend" in problems[0]


async def _recompute_unkeyed(url: str, *, change: dict[int, dict[str, object]] | None = None,
                             drop: int | None = None) -> None:
    """What someone without the key can do: from the first changed record on, rewrite the rows (dropping one and
    renumbering the rest) with the unkeyed SHA-256 chain of before revision 0012, and set the head to match."""
    rows = await _rows(url)
    start = min([*(change or {}), *([drop] if drop else [])])
    kept = [r for r in rows if r.id != drop]
    prev = GENESIS
    new = []
    for seq, r in enumerate(kept, 1):
        values = {f: getattr(r, f) for f in FIELDS} | (change or {}).get(r.id, {})
        if seq < start:  # the records before the change stay as they are
            new.append({"id": seq, **values, "prev_hash": r.prev_hash, "hash": r.hash})
            prev = r.hash
            continue
        digest = chain_hash(seq, values["at"], values["kind"], values["actor"], values["role"],  # type: ignore[arg-type]
                            values["subject"], values["details"], prev)  # type: ignore[arg-type]
        new.append({"id": seq, **values, "prev_hash": prev, "hash": digest})
        prev = digest
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            await s.execute(delete(AuditRecord))
            for row in new:
                s.add(AuditRecord(**row))
            await s.flush()
            await s.execute(update(AuditHead).values(last_id=len(new), last_hash=prev))
    finally:
        await engine.dispose()


async def test_deleted_middle_record_with_recomputed_chain_is_found(database_url: str) -> None:
    """Tampering 3: delete a middle record, renumber and recompute every unkeyed field (ids, links, hashes, head)."""
    await _seed(database_url)
    witness = await _head(database_url)
    await _recompute_unkeyed(database_url, drop=4)
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 4 and problems[0] == "record 4 is gewijzigd of herberekend: de MAC klopt niet"
    ok, _, problems = await _verify(database_url, witness)
    assert "keten korter dan de getuige: getuige test noemt record 6, de keten eindigt bij record 5" in problems


async def test_deleted_middle_record_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id == 4))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 4 and problems[0] == "record 4 ontbreekt (volgende is 5)"


async def test_deleted_tail_with_rolled_back_head_is_found_by_the_witness(database_url: str) -> None:
    """Tampering 2: delete the last record and roll the head back to the one before: consistent in the database,
    so only the witness outside it can tell, and it does."""
    await _seed(database_url)
    witness = await _head(database_url)
    fifth = next(r for r in await _rows(database_url) if r.id == 5)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id == 6),
                  update(AuditHead).values(last_id=5, last_hash=fifth.hash))
    assert (await _verify(database_url))[0], "without a witness a cut-off tail cannot be seen (docs/audit.md)"
    ok, at, problems = await _verify(database_url, witness)
    assert not ok and at is None
    assert problems == ("keten korter dan de getuige: getuige test noemt record 6, de keten eindigt bij record 5",)


async def test_deleted_tail_without_head_rollback_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id >= 5))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 5 and "de kop van de keten noemt record 6, maar de keten eindigt bij record 4" in problems


async def test_tail_rewritten_after_the_witness_is_found(database_url: str) -> None:
    """Cut the tail and append records under the old numbers: the witness names the record that differs."""
    await _seed(database_url)
    witness = await _head(database_url)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id >= 5))
    fourth = next(r for r in await _rows(database_url) if r.id == 4)
    await _tamper(database_url, update(AuditHead).values(last_id=4, last_hash=fourth.hash))
    await _seed(database_url, n=2)  # the bot itself appends two new records 5 and 6, with valid MACs
    assert (await _verify(database_url))[0]
    ok, _, problems = await _verify(database_url, witness)
    assert not ok and problems == ("record 6 wijkt af van de getuige (getuige test): de keten is herschreven",)


async def test_reordering_is_found(database_url: str) -> None:
    """Tampering 5: swap two records, links and MACs included."""
    await _seed(database_url)
    engine = create_engine(database_url)
    async with session_factory(engine)() as s, s.begin():
        a = (await s.execute(select(AuditRecord).where(AuditRecord.id == 2))).scalar_one()
        b = (await s.execute(select(AuditRecord).where(AuditRecord.id == 3))).scalar_one()
        fields = (*FIELDS, "prev_hash", "hash")
        va, vb = ({f: getattr(a, f) for f in fields}, {f: getattr(b, f) for f in fields})
        for f in fields:
            setattr(a, f, vb[f])
            setattr(b, f, va[f])
    await engine.dispose()
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 2 and problems[0].startswith("record 2 verwijst niet naar het vorige record")


async def test_reordering_with_relinked_records_is_found(database_url: str) -> None:
    """Swap the contents of records 2 and 3 but keep each position's link: the MAC over (sequence, content,
    previous MAC) fails at 2."""
    await _seed(database_url)
    rows = {r.id: r for r in await _rows(database_url)}
    await _tamper(database_url,
                  update(AuditRecord).where(AuditRecord.id == 2).values(**{f: getattr(rows[3], f) for f in FIELDS}),
                  update(AuditRecord).where(AuditRecord.id == 3).values(**{f: getattr(rows[2], f) for f in FIELDS}))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 2 and problems[0] == "record 2 is gewijzigd of herberekend: de MAC klopt niet"


async def test_forged_checkpoint_is_found(database_url: str) -> None:
    """Tampering 4: delete the first records (not old enough) and fake a purge checkpoint over them."""
    await _seed(database_url)
    third = next(r for r in await _rows(database_url) if r.id == 3)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id <= 3),
                  update(AuditHead).values(checkpoint_id=3, checkpoint_hash=third.hash))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3 and problems == ("controlepunt na record 3 is ongeldig: het heeft geen MAC",)
    # A MAC copied from elsewhere (here: a record's) does not fit the checkpoint either.
    await _tamper(database_url, update(AuditHead).values(checkpoint_mac=third.hash, checkpoint_at=third.at))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3 and problems[0].startswith("controlepunt na record 3 is ongeldig: de MAC klopt niet")


async def test_checkpoint_newer_than_the_retention_is_found(database_url: str) -> None:
    """A real, MAC-valid checkpoint, made by a purge run with a clock far ahead: the records it removed were
    younger than the retention allows when verified today."""
    from storage.audit import prune

    await _seed(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            assert await prune(s, Auditor(KEY), T0 + timedelta(minutes=2, seconds=30)) == 3
    finally:
        await engine.dispose()
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3
    assert problems == ("controlepunt na record 3 is jonger dan de bewaartermijn toestaat: record 3 is van "
                        "2026-11-01 09:02 UTC, opschonen mag pas na 1825 dagen",)
    assert (await _verify(database_url, now=T0 + RETENTION + timedelta(days=1)))[0], "old enough: in order"


async def test_unkeyed_records_of_before_the_migration_are_sealed(database_url: str) -> None:
    """A database of before revision 0012 keeps its unkeyed records; the first keyed append seals them with a
    start record, after which rewriting them (even with recomputed hashes) or an unkeyed checkpoint is found."""
    engine = create_engine(database_url)
    await upgrade(engine, "0010")
    sessions = session_factory(engine)
    prev = GENESIS
    async with sessions() as s, s.begin():  # three records as the unkeyed code of revision 0010 wrote them
        for i in range(1, 4):
            at = T0 + timedelta(minutes=i)
            digest = chain_hash(i, at, "check.uitgevoerd", "@a:localhost", "kpc", None, {"n": i}, prev)
            s.add(AuditRecord(id=i, at=at, kind="check.uitgevoerd", actor="@a:localhost", role="kpc", subject=None,
                              details={"n": i}, prev_hash=prev, hash=digest))
            prev = digest
        await s.flush()
        await s.execute(update(AuditHead).values(last_id=3, last_hash=prev))
    await upgrade(engine)
    await engine.dispose()
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 3 and "geen enkel record na controlepunt 0 draagt een MAC" in problems[0]
    await _seed(database_url, n=2)  # upgrades to 0012 and appends: start record 4, then 5 and 6
    rows = await _rows(database_url)
    assert [r.kind for r in rows][3] == "audit.sleutel_ingevoerd"
    assert rows[3].details["ongesleuteld_tot"] == 3 and rows[3].details["laatste_hash"] == prev
    assert await _verify(database_url) == (True, None, ())
    await _recompute_unkeyed(database_url, change={2: {"details": {"n": 42}}})
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 4, problems  # the unkeyed records verify, the start record's MAC does not


async def test_unkeyed_checkpoint_over_sealed_records_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, update(AuditHead).values(keyed_from=None))
    await _seed(database_url, n=1)  # a start record in the middle of a keyed chain: harmless, still verifies
    assert await _verify(database_url) == (True, None, ())
    second = next(r for r in await _rows(database_url) if r.id == 2)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id <= 2),
                  update(AuditHead).values(checkpoint_id=2, checkpoint_hash=second.hash))
    ok, at, problems = await _verify(database_url)
    assert not ok and at == 2 and "controlepunt na record 2 is ongeldig: het heeft geen MAC" in problems


async def test_records_are_written_at_commit_and_dropped_with_a_rollback(database_url: str) -> None:
    """The chain is linked at commit (the head's lock is the last thing a transaction takes); a rolled back
    transaction leaves no record and no gap."""
    await _seed(database_url, n=1)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s:
            await Auditor(KEY).record(s, kind="test.teruggedraaid", at=T0)
            await s.rollback()
        async with sessions() as s:
            await Auditor(KEY).record(s, kind="test.vastgelegd", at=T0)
            await s.commit()  # a session without an explicit begin
        async with sessions() as s:
            kinds = (await s.execute(select(AuditRecord.id, AuditRecord.kind).order_by(AuditRecord.id))).all()
        assert [tuple(k) for k in kinds] == [(1, "check.uitgevoerd"), (2, "test.vastgelegd")]
    finally:
        await engine.dispose()
    assert await _verify(database_url) == (True, None, ())


async def test_head_lock_is_the_last_thing_before_commit(database_url: str) -> None:
    """Issue 15: the head row, which every writer locks, is taken by the last statements of the transaction,
    however early in the command the record was made; two records cost no more statements. The first append of a
    process reads the head under its lock; later ones start from the head it committed, and the move's condition
    takes the lock and checks that head in one statement. The command's facts (``storage.commit_tail``) are
    written there too: on SQLite once the move found the head (the move, the facts, the records), on PostgreSQL in
    the very statement of the move and the records (one round trip)."""
    from sqlalchemy import event

    from storage.models import InboxEntry
    from storage.statistiek_models import CHECK, Feit, StatistiekFeit, record_facts

    await _seed(database_url, n=1)
    engine = create_engine(database_url)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(engine.sync_engine, "before_cursor_execute", seen)

    async def command(event_id: str) -> list[str]:
        statements.clear()
        async with session_factory(engine)() as s, s.begin():
            await Auditor(KEY).record(s, kind="check.uitgevoerd", at=T0, person=BSN)
            await record_facts(s, [Feit(CHECK, T0)])
            await Auditor(KEY).record(s, kind="bericht.direct", at=T0, person=BSN)
            s.add(InboxEntry(event_id=event_id, room_id="!r", sender="@a:localhost", command="check",
                             outcome="handled", received_at=T0, handled_at=T0))
            await s.flush()  # the rest of the command, after the audit records and the facts were made
        return list(statements)

    try:
        first = await command("$e1")
        later = await command("$e2")
        async with session_factory(engine)() as s:
            facts = await s.scalar(select(func.count()).select_from(StatistiekFeit))
    finally:
        await engine.dispose()
    assert facts == 2
    postgres = database_url.startswith("postgresql")
    for done, lock_read in ((first, True), (later, False)):
        tail = done[done.index(next(st for st in done if st.startswith("INSERT INTO INBOX"))) + 1:]
        if lock_read:
            lock, *tail = tail
            assert lock.startswith("SELECT") and "FROM AUDIT_HEAD" in lock
            assert ("FOR UPDATE" in lock) == postgres
        if postgres:
            (one,) = tail
            assert one.startswith("WITH MOVED AS (UPDATE AUDIT_HEAD SET LAST_ID=")
            assert "INSERT INTO AUDIT_LOG" in one and "INSERT INTO STATISTIEK_FEIT" in one
        else:
            move, facts, insert = tail
            assert move.startswith("UPDATE AUDIT_HEAD") and "LAST_ID=" in move.replace(" ", "")
            assert facts.startswith("INSERT INTO STATISTIEK_FEIT")
            assert insert.startswith("INSERT INTO AUDIT_LOG")
    assert await _verify(database_url) == (True, None, ())


async def test_a_head_moved_by_another_writer_is_read_again(database_url: str) -> None:
    """The head this process remembers is a guess that the move checks: a second engine (another instance, a CLI
    beside the bot) that appended meanwhile makes the first read the head again, and the chain stays whole."""
    await _seed(database_url, n=1)
    ours, theirs = create_engine(database_url), create_engine(database_url)
    try:
        for i, engine in enumerate((ours, theirs, ours, theirs, ours)):
            async with session_factory(engine)() as s, s.begin():
                await Auditor(KEY).record(s, kind="test.afwisselend", at=T0, details={"i": i})
        async with session_factory(ours)() as s:
            ids = (await s.execute(select(AuditRecord.id).order_by(AuditRecord.id))).scalars().all()
    finally:
        await ours.dispose()
        await theirs.dispose()
    assert list(ids) == list(range(1, len(ids) + 1)) and len(ids) == 6
    assert await _verify(database_url) == (True, None, ())


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "audit", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tamper", [False, True])
async def test_cli_verify_and_export(tmp_path: Path, sqlite_url: str, tamper: bool) -> None:
    await _seed(sqlite_url)
    config = write_config(tmp_path, sqlite_url)
    if tamper:
        await _tamper(sqlite_url, update(AuditRecord).where(AuditRecord.id == 2).values(kind="x"))
        proc = _cli(config, "verify")
        assert proc.returncode == 1
        assert proc.stderr == "auditketen: record 2 is gewijzigd of herberekend: de MAC klopt niet\n"
        return
    proc = _cli(config, "verify")
    assert proc.returncode == 0 and "6 records, elke MAC klopt" in proc.stdout and "geef --witness" in proc.stdout
    proc = _cli(config, "export", "--persoon", BSN)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["id"] for r in lines] == [1, 2, 3, 4]
    assert {r["regime"].split(" ")[0] for r in lines} == {"OM-gegevens", "veiligheidshuisgegevens"}
    assert BSN not in proc.stdout, "the export lists records, it does not need to repeat the identifier"
    proc = _cli(config, "export", "--gebruiker", "@user1:localhost")
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == [2, 4, 6]
    proc = _cli(config, "export", "--persoon", "12345")
    assert proc.returncode == 2 and "--persoon" in proc.stderr


async def test_cli_verify_holds_the_chain_against_witness_lines(tmp_path: Path, sqlite_url: str) -> None:
    """Witness lines as the bot logs them (JSON and text) and a head given by hand; a tail cut afterwards is
    reported naming the witness; bad witness input gets one Dutch line and exit 2."""
    await _seed(sqlite_url)
    config = write_config(tmp_path, sqlite_url)
    head = await _head(sqlite_url)
    log = tmp_path / "bot.log"
    log.write_text(
        '{"ts": "2026-11-01T09:00:00.000+00:00", "level": "INFO", "msg": "started"}\n'
        f'{{"level": "INFO", "logger": "bot.audit_witness", "msg": "audit witness", "audit_seq": 2, '
        f'"audit_mac": "{next(r for r in await _rows(sqlite_url) if r.id == 2).hash}"}}\n'
        f"INFO    bot.audit_witness: audit witness audit_seq={head.seq} audit_mac={head.mac} reason=interval\n",
        encoding="utf-8")
    proc = _cli(config, "verify", "--witness", str(log))
    assert proc.returncode == 0 and "2 getuige(n) kloppen" in proc.stdout, proc.stderr
    proc = _cli(config, "verify", "--head", f"{head.seq}:{head.mac}")
    assert proc.returncode == 0, proc.stderr
    fifth = next(r for r in await _rows(sqlite_url) if r.id == 5)
    await _tamper(sqlite_url, delete(AuditRecord).where(AuditRecord.id == 6),
                  update(AuditHead).values(last_id=5, last_hash=fifth.hash))
    proc = _cli(config, "verify", "--witness", str(log))
    assert proc.returncode == 1
    assert proc.stderr == ("auditketen: keten korter dan de getuige: getuige bot.log regel 3 noemt record 6, de keten "
                           "eindigt bij record 5\n")
    for bad, says in (("--head", "6:xyz"), ("--witness", str(tmp_path / "nope.log")),
                      ("--witness", str(config))):
        proc = _cli(config, "verify", bad, says)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and bad in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


async def test_cli_verify_does_not_migrate_an_old_database(tmp_path: Path, sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    await upgrade(engine, "0010")
    await engine.dispose()
    proc = _cli(write_config(tmp_path, sqlite_url), "verify")
    assert proc.returncode == 2
    assert proc.stderr == "de database is nog niet bijgewerkt voor deze versie; voer eerst zsm-bot db upgrade uit\n"


async def test_identifiers_not_readable_from_a_dump(sqlite_url: str) -> None:
    await _seed(sqlite_url)
    db = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert BSN.encode() not in raw and OTHER_BSN.encode() not in raw
