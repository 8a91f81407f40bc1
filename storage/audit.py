"""The audit trail: every lookup, decision and message leaves a record, chained by a keyed MAC.

Personal identifiers are stored as a keyed hash (HMAC-SHA256 with a key from the environment): a database
dump does not reveal whom a record is about, yet an inzage export for a known BSN finds every record.

Each record carries a sequence number (its id) and a MAC (HMAC-SHA256 with a key derived from the audit key, which
lives outside the database) over its content and the previous record's MAC. Whoever can write the database but
lacks the key cannot change, insert, reorder or renumber a record without breaking a MAC; a purge checkpoint
carries a MAC of its own. What the database alone cannot show is a cut-off tail (delete the last records, roll
back the head): the witness does, the head published outside the database (``bot.audit_witness``) and given to
``zsm-bot audit verify --witness``. docs/audit.md says what this proves and what it does not.

Records are linked at commit, not when recorded: ``record`` only collects them on the session, and the session's
``before_commit`` hook takes the head row, inserts them and moves the head as the last statements of the
transaction. The head row (one lock that every writer takes) is thus held for three short statements and the
commit, not for the rest of the command.

Records written before revision 0012 carry an unkeyed SHA-256 chain. The first keyed append writes a start record
(``SEAL_KIND``) whose MAC covers the last unkeyed hash and the checkpoint of that time, so that older tail cannot be
rewritten afterwards either.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import time
import typing
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    event,
    exists,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.selectable import GenerativeSelect
from sqlalchemy.util import await_only

from storage import commit_tail
from storage.db import SessionFactory, autocommits, sessions_with
from storage.driven import Driven
from storage.models import AuditHead, AuditRecord

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SEAL_KIND = "audit.sleutel_ingevoerd"  # the first keyed record after records of the unkeyed chain
_PENDING = "zsm_audit_pending"
_MAX_WITNESS_LINES = 5


def _canonical(record_id: int, at: datetime, kind: str, actor: str | None, role: str | None,
               subject: str | None, details: dict[str, Any], prev_hash: str) -> bytes:
    payload = [record_id, at.isoformat(), kind, actor, role, subject, details, prev_hash]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(record_id: int, at: datetime, kind: str, actor: str | None, role: str | None,
               subject: str | None, details: dict[str, Any], prev_hash: str) -> str:
    """The unkeyed hash of the records written before revision 0012 (verified as such, never written now)."""
    return hashlib.sha256(_canonical(record_id, at, kind, actor, role, subject, details, prev_hash)).hexdigest()


def _ms(at: datetime) -> datetime:
    """UTC to the millisecond, as both databases hand it back, so the MAC is recomputed over the same text."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=(at.microsecond // 1000) * 1000)


@dataclass(frozen=True)
class Auditor:
    key: bytes
    # The chain's MAC key is derived, so a record's MAC and a person's keyed hash never share a key.
    _chain_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_chain_key", hmac.new(self.key, b"zsm-bot audit chain v1", hashlib.sha256).digest())

    def subject_of(self, identifier: str) -> str:
        """Keyed hash of a person's identifier (BSN, SKN): stable, not reversible without the key."""
        normalized = "".join(identifier.split()).upper()
        return hmac.new(self.key, normalized.encode(), hashlib.sha256).hexdigest()

    def mac(self, record_id: int, at: datetime, kind: str, actor: str | None, role: str | None,
            subject: str | None, details: dict[str, Any], prev_mac: str) -> str:
        return hmac.new(self._chain_key, _canonical(record_id, at, kind, actor, role, subject, details, prev_mac),
                        hashlib.sha256).hexdigest()

    def checkpoint_mac(self, checkpoint_id: int, last_mac: str, last_at: datetime) -> str:
        """The purge's checkpoint: the last removed record's sequence, MAC and time (checked against retention)."""
        payload = json.dumps(["controlepunt", checkpoint_id, last_mac, last_at.isoformat()], separators=(",", ":"))
        return hmac.new(self._chain_key, payload.encode(), hashlib.sha256).hexdigest()

    async def record(
        self,
        session: AsyncSession,
        *,
        kind: str,
        at: datetime,
        actor: str | None = None,
        role: str | None = None,
        person: str | None = None,
        subject: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one record to the caller's transaction: it is linked and written at commit, with the act, or
        not at all. ``person`` is hashed here; ``subject`` is an already keyed hash (``subject_of``)."""
        self._collect(session, [{"at": at, "kind": kind, "actor": actor, "role": role,
                                 "subject": self.subject_of(person) if person else subject,
                                 "details": dict(details or {})}])

    async def record_many(self, session: AsyncSession, entries: list[dict[str, Any]]) -> None:
        """Several records in one go; each entry takes ``record``'s keywords except ``subject``."""
        self._collect(session, [{"at": e["at"], "kind": e["kind"], "actor": e.get("actor"), "role": e.get("role"),
                                 "subject": self.subject_of(e["person"]) if e.get("person") else None,
                                 "details": dict(e.get("details") or {})} for e in entries])

    def _collect(self, session: AsyncSession, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        info = session.sync_session.info
        pending = info.get(_PENDING)
        if pending is None:
            info[_PENDING] = (self, entries)
            return
        owner, collected = pending
        if owner.key != self.key:
            raise RuntimeError("two audit keys in one transaction")
        collected.extend(entries)

    def _append(self, session: Session, entries: list[dict[str, Any]], tail: commit_tail.Tail) -> None:
        """Number and MAC the records, move the head, insert them: two statements when this process knows the head
        (see ``_heads``; one on PostgreSQL, with the rows of the commit tail), else the head read under its lock
        first. A session of ``one_statement_sessions`` gets the one statement or nothing (``HeadElsewhere``)."""
        engine = session.get_bind()
        _take_turn(session, engine)
        known = _heads.get(_of(engine))
        alone = autocommits(engine)
        if alone and (known is None or len(entries) > ONE_STATEMENT_MAX_RECORDS or commit_tail.foldable(tail)[1]):
            raise HeadElsewhere("no single statement for this append")
        if known is not None:
            if self._append_after(session, entries, *known, keyed_from_now=False, tail=tail):
                return
            if alone:  # without a transaction there is no lock to read the head under: nothing was written
                raise HeadElsewhere("the audit head moved")
        last_id, last_mac, keyed_from, cp_id, cp_hash = session.execute(
            select(AuditHead.last_id, AuditHead.last_hash, AuditHead.keyed_from, AuditHead.checkpoint_id,
                   AuditHead.checkpoint_hash).where(AuditHead.id == 1).with_for_update()).one()
        if keyed_from is None:  # records of the unkeyed chain precede: seal them under the key first
            entries = [{"at": entries[0]["at"], "kind": SEAL_KIND, "actor": None, "role": None, "subject": None,
                        "details": {"ongesleuteld_tot": last_id, "laatste_hash": last_mac,
                                    "controlepunt": cp_id, "controlepunt_hash": cp_hash}}, *entries]
        if not self._append_after(session, entries, last_id, last_mac, keyed_from_now=keyed_from is None,
                                  tail=tail):
            raise RuntimeError("audit head moved under its lock")

    def _append_after(self, session: Session, entries: list[dict[str, Any]], last_id: int, last_mac: str, *,
                      keyed_from_now: bool, tail: commit_tail.Tail) -> bool:
        """Chain ``entries`` after the head (``last_id``, ``last_mac``) if that is still the head: the UPDATE's
        condition checks it and takes the head row's lock in the same statement (on PostgreSQL a concurrent
        writer waits there, then finds the head moved and falls back to reading it). All or nothing: the records
        and the commit tail are written when the head was there, and nothing at all (False) when it had moved, so
        the caller chains them again after the real head."""
        first, prev = last_id + 1, last_mac
        rows = []
        for e in entries:
            last_id += 1
            at = _ms(e["at"])
            mac = self.mac(last_id, at, e["kind"], e["actor"], e["role"], e["subject"], e["details"], last_mac)
            rows.append({**e, "id": last_id, "at": at, "prev_hash": last_mac, "hash": mac})
            last_mac = mac
        values: dict[str, Any] = {"last_id": last_id, "last_hash": last_mac}
        if keyed_from_now:
            values["keyed_from"] = first
        move = _MOVE_KEYED if keyed_from_now else _MOVE
        params = {**values, "was_id": first - 1, "was_hash": prev}
        if session.get_bind().dialect.name == "postgresql" and len(rows) <= ONE_STATEMENT_MAX_RECORDS:
            folded, rest = commit_tail.foldable(tail)
            shape, values_of = _one_statement(move, rows, folded)
            conn = session.connection()
            got = _driven_of(conn.dialect, *shape).run(conn, {**params, **values_of})[0]
            ok = got[0] == 1
            if ok:
                if len(got) > 1:  # the values of a row the writer wants back (``commit_tail.InsertBack``)
                    back = commit_tail.receiver(session)
                    assert back is not None
                    back.receive(got[1:])
                commit_tail.write(session, rest)
        else:
            ok = session.execute(move, params).rowcount == 1  # type: ignore[attr-defined]
            if ok:
                commit_tail.write(session, tail)
                session.execute(_INSERT, rows)
        if not ok:
            _heads.pop(_of(session.get_bind()), None)
            return False
        session.info[_NEXT_HEAD] = (last_id, last_mac)
        return True


class NeedsTransaction(RuntimeError):
    """Work on a session of ``one_statement_sessions`` could not be done in one statement: it wanted to write
    before its commit, or its commit could not be one statement. Nothing was written; do it in a transaction."""


class HeadElsewhere(NeedsTransaction):
    """The append could not be one statement (the head is not known to this process, moved meanwhile, or the append
    is too large)."""


def one_statement_sessions(sessions: SessionFactory) -> SessionFactory | None:
    """PostgreSQL: sessions without a transaction of their own (AUTOCOMMIT), for work whose only writes are its audit
    records and its commit tail: all of it goes in the one statement of the append, which is its own transaction,
    one round trip instead of four (``BEGIN``, the statement, ``COMMIT`` and the work's own statement), and the head
    is held for that round trip alone. Before the commit such a session only reads: any other statement raises
    ``NeedsTransaction`` before it runs, and the append raises ``HeadElsewhere`` rather than write part of it, so
    work that turns out to need a transaction has written nothing and is simply done again in one. None on SQLite,
    where a statement is no round trip and the append needs its transaction's write lock."""
    if sessions.kw["bind"].dialect.name != "postgresql":
        return None
    made = sessions_with(sessions, isolation_level="AUTOCOMMIT")
    engine = made.kw["bind"].sync_engine
    if not event.contains(engine, "before_execute", _reads_only):
        event.listen(engine, "before_execute", _reads_only)  # on this variant only, not the engine it was made from
    return made


def _reads_only(_conn: Any, statement: Any, *_: Any) -> None:
    """A statement of a transaction-less session: plain reads run (each is its own snapshot, as every statement of
    a READ COMMITTED transaction is); a write, a lock or text SQL would take effect on its own, so it does not run.
    The commit's one statement is a SELECT whose data-modifying parts are gated by the audit head's move."""
    if not isinstance(statement, GenerativeSelect) or statement._for_update_arg is not None:
        raise NeedsTransaction("a write before the commit")


# Built once, on the tables rather than through the ORM's bulk path: every command appends, and building and
# routing these statements cost it more in Python than SQLite spends on them.
_head_t = typing.cast(Table, AuditHead.__table__)
_MOVE = (update(_head_t).where(_head_t.c.id == 1, _head_t.c.last_id == bindparam("was_id"),
                               _head_t.c.last_hash == bindparam("was_hash"))
         .values(last_id=bindparam("last_id"), last_hash=bindparam("last_hash")))
_MOVE_KEYED = _MOVE.values(keyed_from=bindparam("keyed_from"))
_audit_t = typing.cast(Table, AuditRecord.__table__)
_INSERT = insert(_audit_t).execution_options(render_nulls=True)
_COLUMNS = ("id", "at", "kind", "actor", "role", "subject", "details", "prev_hash", "hash")
# A command's few records share one statement with its move; a batch (the deadline ticker's recovery, a mail batch)
# goes as the move and one executemany: a statement of hundreds of parameter rows took longer to compile and plan,
# at every new count, than the round trip it saves.
ONE_STATEMENT_MAX_RECORDS = 8


_Shape = tuple[bool, int, tuple[tuple[Insert | Update | commit_tail.InsertBack, tuple[str, ...], int], ...]]


def _one_statement(move: Any, rows: list[dict[str, Any]], tail: commit_tail.Tail) -> tuple[_Shape, dict[str, Any]]:
    """PostgreSQL: the shape of the one statement that holds the head's move, the records and the commit tail (one
    round trip; ``_statement_of_shape``), and its parameters. The records and the tail's rows are written only when
    the move found the head where this process left it (the move's RETURNING row); the statement's first value says
    whether it did."""
    shape = tuple((statement, tuple(batch[0]), len(batch)) for statement, batch in tail)
    params: dict[str, Any] = {f"a_{j}_{name}": row[name] for j, row in enumerate(rows) for name in _COLUMNS}
    for i, (statement, batch) in enumerate(tail):
        extra = statement.extra if isinstance(statement, commit_tail.InsertBack) else ()
        params.update({name if name in extra else f"t{i}_{j}_{name}": value
                       for j, row in enumerate(batch) for name, value in row.items()})
    return (move is _MOVE_KEYED, len(rows), shape), params


@functools.lru_cache(maxsize=64)
def _driven_of(dialect: Any, keyed: bool, records: int,
               tail: tuple[tuple[Insert | Update | commit_tail.InsertBack, tuple[str, ...], int], ...]) -> Driven:
    """The one statement of a shape as the driver's own SQL (``storage.driven``): SQLAlchemy's execution of it (the
    cache key of a statement of some hundred parameters, each processed through the compiled form) took an eighth of
    a ``!check``, twice per command with the record of the reply's send, where the driver took a few tenths of a
    percent. Its parameters must be numbered (``$1``), each name once."""
    built = Driven.compile(_statement_of_shape(keyed, records, tail), dialect)
    if dialect.paramstyle != "numeric_dollar" or len(set(built.names)) != len(built.names):
        raise RuntimeError(f"the one statement needs numbered parameters, not {dialect.paramstyle}")
    return built


@functools.lru_cache(maxsize=64)
def _statement_of_shape(keyed: bool, records: int,
                        tail: tuple[tuple[Insert | Update | commit_tail.InsertBack, tuple[str, ...], int], ...],
                        ) -> Select[Any]:
    """Built once per shape (how many records, which tail tables with how many rows), with named parameters, so
    SQLAlchemy compiles it once and the driver prepares it once per connection: compiling it anew took longer than
    the round trips it saves. Rows come as a UNION ALL of typed parameters: a multi-row VALUES is not cacheable.
    Its one row: whether the move found the head (1 or 0), then the values an ``InsertBack`` row hands back."""
    moved = (_MOVE_KEYED if keyed else _MOVE).returning(_head_t.c.id).cte("moved")
    there = exists(select(moved.c.id))  # every part below refers to the move, so it runs first and gates them
    incoming = _given(_audit_t, "a", _COLUMNS, records)
    ctes = [insert(_audit_t).from_select(_COLUMNS, select(*incoming.c).where(there)).cte("records")]
    back: list[Any] = []
    for i, (statement, names, count) in enumerate(tail):
        table = statement.table
        if isinstance(statement, commit_tail.InsertBack):
            columns = statement.columns(names)
            rows = _given(table, f"t{i}", columns, count)
            computed = [expression.label(name) for name, expression in statement.computed]
            written = (insert(table).from_select([*columns, *(name for name, _ in statement.computed)],
                                                 select(*rows.c, *computed).where(there))
                       .returning(*(table.c[n] for n in statement.returning)).cte(f"tail_{i}"))
            ctes.append(written)
            back.extend(select(written.c[n]).scalar_subquery() for n in statement.returning)
            continue
        rows = _given(table, f"t{i}", names, count)
        if isinstance(statement, Update):
            match = [n for n in names if n.startswith(commit_tail.MATCH)]
            # Typed loosely: the stubs of SQLAlchemy's releases disagree on this chain's types.
            update: Any = statement
            ctes.append(update.where(table.c.id == rows.c.id, there,
                                     *(table.c[commit_tail.column_of(n)] == rows.c[n] for n in match))
                        .values({n: rows.c[n] for n in names if n != "id" and n not in match}).cte(f"tail_{i}"))
        else:
            ctes.append(insert(table).from_select(names, select(*rows.c).where(there)).cte(f"tail_{i}"))
    return select(func.count(), *back).select_from(moved).add_cte(*ctes)


def _given(table: Any, prefix: str, names: tuple[str, ...], count: int) -> Any:
    """``count`` rows of parameters ``{prefix}_{row}_{column}``, typed as ``table``'s columns."""
    given = [select(*(bindparam(f"{prefix}_{j}_{name}", type_=table.c[commit_tail.column_of(name)].type).label(name)
                      for name in names))
             for j in range(count)]
    return (union_all(*given) if count > 1 else given[0]).subquery(f"{prefix}_rows")


# The head as this process last committed it, per database (``_of``): the next append starts from it without reading
# the head row, and the UPDATE's condition (``_append_after``) catches any other writer that moved it meanwhile
# (another instance, a CLI import, the purge). Kept only after a commit; a rollback leaves the head as it was.
_heads: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def _of(engine: Any) -> Any:
    """The key of a process's writers to one database: the engine's pool, which an engine with other options (the
    sessions of ``one_statement_sessions``) shares with the engine it was made from, so both know one head and take
    one turn."""
    return engine.pool
_NEXT_HEAD = "zsm_audit_next_head"

# PostgreSQL: the writers of one process take turns at the head, from the move to the end of the commit. Without
# it two of them (a command and the sender recording a reply just sent) both move from the head they know: the
# second waits for the first's row lock, then finds the head moved and reads it again under that lock, two more
# round trips for about one command in five. With it the second waits here instead and starts from the head the
# first just committed. A turn not given within ``TURN_WAIT_S`` is not waited for further: the database's row lock
# and the move's condition keep the chain right without it. (SQLite writers take turns for the whole transaction
# already: ``storage.db``.)
TURN_WAIT_S = 0.5
# A turn held this long is not a large commit (a deadline recovery's batch takes a second or two) but one that was
# never given back: that is logged, as every append then waits out TURN_WAIT_S.
TURN_HELD_TOO_LONG_S = 60.0
_turns: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
_taken_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
_TURN = "zsm_audit_turn"
# Turns not given within TURN_WAIT_S in this process: a writer that holds the head's row lock while it waits for
# the turn makes another wait for it (the tests hold the count at zero where no writer is slow).
turn_timeouts = 0


def _take_turn(session: Session, engine: Any) -> None:
    if engine.dialect.name != "postgresql" or _TURN in session.info:
        return
    key = _of(engine)
    turn = _turns.get(key)
    if turn is None:
        turn = _turns[key] = asyncio.Lock()
    if await_only(_acquire(turn)):
        session.info[_TURN] = turn
        _taken_at[key] = time.monotonic()
        return
    global turn_timeouts
    turn_timeouts += 1
    if time.monotonic() - _taken_at.get(key, time.monotonic()) > TURN_HELD_TOO_LONG_S:
        log.warning("audit head turn held too long; appending without it", extra={"wait_s": TURN_WAIT_S})


async def _acquire(turn: asyncio.Lock) -> bool:
    try:
        async with asyncio.timeout(TURN_WAIT_S):
            await turn.acquire()
    except TimeoutError:
        return False
    return True


def _link_at_commit(session: Session, tail: commit_tail.Tail) -> bool:
    """The commit tail's linker: the records of the transaction, with the tail's rows where they can share a
    statement. False when the transaction recorded nothing (the tail then writes its rows itself)."""
    alone = autocommits(session.get_bind())
    if alone and (session.new or session.dirty or session.deleted):  # flushed after this hook: not in its statement
        raise NeedsTransaction("objects to flush at commit")
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        if tail and alone:
            raise NeedsTransaction("rows without audit records have no statement of their own")
        return False
    auditor, entries = pending
    auditor._append(session, entries, tail)
    return True


commit_tail.set_linker(_link_at_commit)


@event.listens_for(Session, "after_commit")
def _remember_head(session: Session) -> None:
    head = session.info.pop(_NEXT_HEAD, None)
    if head is not None:
        _heads[_of(session.get_bind())] = head


@event.listens_for(Session, "after_transaction_end")
def _drop_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_NEXT_HEAD, None)
        turn = session.info.pop(_TURN, None)
        if turn is not None:  # after ``_remember_head``: the next writer starts from the head just committed
            turn.release()


# --- Verification ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Witness:
    """A head seen outside the database: sequence number and MAC, and where it was read (named in a finding)."""

    seq: int
    mac: str
    source: str


@dataclass(frozen=True)
class Head:
    seq: int
    mac: str
    checkpoint: int


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem_at: int | None = None
    reason: str = ""
    checkpoint: int = 0  # records removed by the purge before the first one checked
    problems: tuple[str, ...] = ()  # one Dutch line per finding, each naming the record or the witness
    witnessed: int = 0  # witnesses compared with the chain (those about purged records excluded)


async def current_head(session: AsyncSession) -> Head:
    seq, mac, cp = (await session.execute(
        select(AuditHead.last_id, AuditHead.last_hash, AuditHead.checkpoint_id).where(AuditHead.id == 1))).one()
    return Head(int(seq), str(mac), int(cp))


async def mac_at(session: AsyncSession, seq: int) -> str | None:
    """The stored MAC of one record (None when it is gone)."""
    value = await session.scalar(select(AuditRecord.hash).where(AuditRecord.id == seq))
    return None if value is None else str(value)


async def _macs(session: AsyncSession, seqs: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(seqs), 1000):
        chunk = seqs[i:i + 1000]
        rows = await session.execute(select(AuditRecord.id, AuditRecord.hash).where(AuditRecord.id.in_(chunk)))
        out.update({int(k): str(v) for k, v in rows.all()})
    return out


async def verify_chain(session: AsyncSession, auditor: Auditor, *, now: datetime, retention: timedelta,
                       witnesses: Iterable[Witness] = (), batch: int = 5000) -> VerifyResult:
    """Walk the chain in sequence order checking every MAC and link, check the checkpoint's MAC and age, then hold
    the chain against each witness. The first break in the chain is reported (what follows it is suspect anyway),
    and every checkpoint and witness finding."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    cp_id, cp_hash = head.checkpoint_id, head.checkpoint_hash
    problems: list[str] = []
    first_problem: list[tuple[int, str]] = []

    def found(seq: int | None, line: str) -> None:
        problems.append(line)
        if seq is not None and not first_problem:
            first_problem.append((seq, line))

    # The checkpoint: MAC-valid and old enough, or (records of before 0012 only) the one the start record names.
    unkeyed_checkpoint = False
    if cp_id:
        if head.checkpoint_mac is None or head.checkpoint_at is None:
            unkeyed_checkpoint = True
        elif not hmac.compare_digest(auditor.checkpoint_mac(cp_id, cp_hash or "", head.checkpoint_at),
                                     head.checkpoint_mac):
            found(cp_id, f"controlepunt na record {cp_id} is ongeldig: de MAC klopt niet (vervalst of met een andere "
                         "sleutel gemaakt)")
        elif head.checkpoint_at > now - retention:
            found(cp_id, f"controlepunt na record {cp_id} is jonger dan de bewaartermijn toestaat: record {cp_id} is "
                         f"van {head.checkpoint_at:%Y-%m-%d %H:%M} UTC, opschonen mag pas na {retention.days} dagen")

    expected_prev = cp_hash or GENESIS
    expected_id = cp_id + 1
    checked = 0
    keyed = 0
    last_id = 0
    # Unkeyed records only at the start, up to the start record; ``keyed_from`` can only narrow that (emptied by
    # someone, it falls back to the rule).
    legacy_allowed = True
    broken = False
    while not broken:
        rows = (await session.execute(
            select(AuditRecord).where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(batch))).scalars().all()
        if not rows:
            break
        for r in rows:
            if r.id != expected_id:
                found(expected_id, f"record {expected_id} ontbreekt (volgende is {r.id})")
                broken = True
                break
            if r.prev_hash != expected_prev:
                found(r.id, f"record {r.id} verwijst niet naar het vorige record (verwijderd, ingevoegd of verplaatst)")
                broken = True
                break
            if head.keyed_from is not None and r.id >= head.keyed_from:
                legacy_allowed = False
            mac = auditor.mac(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, r.prev_hash)
            if hmac.compare_digest(mac, r.hash):
                if legacy_allowed and checked and r.kind != SEAL_KIND:
                    found(r.id, f"record {r.id} volgt op ongesleutelde records zonder startrecord ({SEAL_KIND})")
                    broken = True
                    break
                if r.kind == SEAL_KIND and legacy_allowed:
                    d = r.details
                    if d.get("ongesleuteld_tot") != r.id - 1 or d.get("laatste_hash") != r.prev_hash:
                        found(r.id, f"startrecord {r.id} past niet bij de ongesleutelde records ervoor")
                        broken = True
                        break
                    if unkeyed_checkpoint and (d.get("controlepunt"), d.get("controlepunt_hash")) != (cp_id, cp_hash):
                        found(cp_id, f"controlepunt na record {cp_id} is ongeldig: het heeft geen MAC en is niet het "
                                     f"controlepunt dat startrecord {r.id} noemt")
                    unkeyed_checkpoint = False
                legacy_allowed = False
                keyed += 1
            elif legacy_allowed and r.hash == chain_hash(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details,
                                                         r.prev_hash):
                pass  # a record of before revision 0012: held by the start record's MAC further on
            else:
                found(r.id, f"record {r.id} is gewijzigd of herberekend: de MAC klopt niet")
                broken = True
                break
            expected_prev = r.hash
            expected_id += 1
            checked += 1
        last_id = rows[-1].id
    if unkeyed_checkpoint and not broken:
        found(cp_id, f"controlepunt na record {cp_id} is ongeldig: het heeft geen MAC")
    if not broken and checked and keyed == 0:
        found(expected_id - 1, f"geen enkel record na controlepunt {cp_id} draagt een MAC: de keten is niet met de "
                               "auditsleutel afgesloten (start de bot eenmaal) of is herschreven")
    chain_end = expected_id - 1
    if not broken and (head.last_id != chain_end or head.last_hash != expected_prev):
        found(chain_end + 1, f"de kop van de keten noemt record {head.last_id}, maar de keten eindigt bij record "
                             f"{chain_end}")

    if broken:  # the witnesses are held against what is there, also past a break
        chain_end = int(await session.scalar(select(func.max(AuditRecord.id))) or cp_id)
    witnessed = 0
    unique: dict[tuple[int, str], Witness] = {}
    for w in witnesses:
        unique.setdefault((w.seq, w.mac), w)  # the first line that names it
    stored = await _macs(session, sorted({seq for seq, _ in unique if cp_id < seq <= chain_end}))
    stored[cp_id] = cp_hash or GENESIS
    off: list[str] = []
    for (seq, mac), w in sorted(unique.items(), reverse=True):
        if seq > chain_end:
            off.append(f"keten korter dan de getuige: {w.source} noemt record {seq}, de keten eindigt bij record "
                       f"{chain_end}")
        elif seq >= cp_id:  # older ones were purged since: the checkpoint's MAC and age stand for them
            witnessed += 1
            if not hmac.compare_digest(stored.get(seq, ""), mac):
                off.append(f"record {seq} wijkt af van de getuige ({w.source}): de keten is herschreven")
    for line in off[:_MAX_WITNESS_LINES]:
        found(None, line)
    if len(off) > _MAX_WITNESS_LINES:
        found(None, f"en nog {len(off) - _MAX_WITNESS_LINES} getuigen die niet kloppen")
    if not problems:
        return VerifyResult(True, checked, checkpoint=cp_id, witnessed=witnessed)
    at, reason = first_problem[0] if first_problem else (None, problems[0])
    return VerifyResult(False, checked, at, reason, cp_id, tuple(problems), witnessed)


async def prune(session: AsyncSession, auditor: Auditor, before: datetime) -> int:
    """Remove the oldest records (a prefix of the chain, up to the last one older than ``before``) and move the
    checkpoint to the last removed record, with a MAC over its sequence, MAC and time. Runs in the purge's
    transaction; the purge's own record follows."""
    # The process's turn at the head first, then the head's row lock, as every writer takes them: holding the row
    # lock and then asking for the turn at the commit (the purge's own record) waited for a command that held the
    # turn and waited for this row lock, until TURN_WAIT_S broke the tie; that command took half a second.
    await session.run_sync(lambda s: _take_turn(s, s.get_bind()))
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
    cutoff = await session.scalar(select(func.max(AuditRecord.id)).where(AuditRecord.at < before))
    if cutoff is None or cutoff <= head.checkpoint_id:
        return 0
    last = (await session.execute(select(AuditRecord.hash, AuditRecord.at).where(AuditRecord.id == cutoff))).first()
    if last is None:
        return 0
    result = await session.execute(delete(AuditRecord).where(AuditRecord.id <= cutoff))
    head.checkpoint_id = int(cutoff)
    head.checkpoint_hash = last.hash
    head.checkpoint_at = last.at
    head.checkpoint_mac = auditor.checkpoint_mac(int(cutoff), last.hash, last.at)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
