"""Rows a command writes and never reads back (its inbox row, its figures, its arrivals) are written at commit,
with the audit records, instead of one statement each where the command records them.

Why: on PostgreSQL every statement is a round trip to the server, and a ``!check`` wrote five statements that only
ever add rows (the inbox row, facts, arrivals, the audit head's move, the audit records). At commit they become
one statement: the head's move and the records as data-modifying CTEs, these rows as further CTEs
(``storage.audit`` builds it and registers itself here as the linker). On SQLite a statement is a function call,
not a round trip; the rows are written one table after another, as before.

The rows stand or fall with the transaction, as when written at once. What this gives up: a statement of the same
transaction does not see them, so only rows nobody reads back in their own transaction come here (the writers say
so), and a constraint they break is reported at commit (the inbox row's key: a duplicate delivery, which the
dispatcher rolls back there).

Besides new rows, the tail takes updates of existing rows by id (``update_at_commit``): the send loop's record of
replies sent, which goes with its audit records in one statement, and on PostgreSQL in one round trip in all
(``storage.audit.one_statement_sessions``). And one row per transaction may be written at commit with values the
writer needs back afterwards (``insert_back_at_commit``): a command's reply, whose id and claim the sender needs,
so that on PostgreSQL a command without a transaction of its own writes everything in that one statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, Update, bindparam, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert


@dataclass(frozen=True)
class InsertBack:
    """An INSERT of one row that hands values of the written row back (``returning``), with ``computed`` columns the
    database works out in the statement itself (a claim under a fence), each over bound parameters named in
    ``extra`` and given with the row. Built once per shape by its writer: it is part of a cached statement's key."""

    table: Table
    returning: tuple[str, ...]
    computed: tuple[tuple[str, ColumnElement[Any]], ...] = ()
    extra: tuple[str, ...] = ()

    def columns(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if n not in self.extra)


# (statement, rows): an INSERT on one table with one row per dict, or an UPDATE on one table (the values every row
# gets) applied to the row whose ``id`` each dict names, with the dict's other keys as that row's own values, or an
# ``InsertBack`` with its one row.
Tail = list[tuple[Insert | Update | InsertBack, list[dict[str, Any]]]]
_ROWS = "zsm_commit_tail"
_BACK = "zsm_commit_tail_back"
# Within one statement of the audit move: a few rows per command (a check's facts and arrivals are one per house that
# knows the person, and a few more); a bulk write (a day's facts in the benchmark, a batch of mail facts, a deadline
# recovery) goes as an executemany of its own, which the driver runs without a statement per row count.
FOLD_MAX_ROWS = 24

# Called at commit with the session and the tail: True when it wrote the tail (with the audit records), False when
# it had nothing to link and the tail is still to be written here. Set by ``storage.audit`` at import.
_linker: Callable[[Session, Tail], bool] | None = None


def insert_at_commit(session: AsyncSession, statement: Insert, rows: list[dict[str, Any]]) -> None:
    """Queue ``rows`` (each with the same keys) for ``statement``, a plain INSERT on one table, until commit."""
    if rows:
        session.sync_session.info.setdefault(_ROWS, []).append((statement, rows))


# A key of an update's row that names a column the row must still have (``match_txn_id``: the row with this id is
# still the message it was), compared and not set.
MATCH = "match_"


def column_of(name: str) -> str:
    return name.removeprefix(MATCH)


def update_at_commit(session: AsyncSession, statement: Update, rows: list[dict[str, Any]]) -> None:
    """Queue ``rows`` (each with ``id`` and the same further keys) for ``statement``, an UPDATE on one table with the
    values all rows share, until commit. A row that is gone by then is left alone, and so is one whose ``MATCH``
    columns differ (its id was given to another row meanwhile: SQLite reuses the highest id once it is deleted)."""
    if rows:
        session.sync_session.info.setdefault(_ROWS, []).append((statement, rows))


class Back:
    """The values a row written at commit got (``InsertBack.returning``), known once the commit has written it."""

    def __init__(self) -> None:
        self._row: tuple[Any, ...] | None = None

    def receive(self, row: Sequence[Any]) -> None:
        self._row = tuple(row)

    def get(self) -> tuple[Any, ...]:
        if self._row is None:
            raise RuntimeError("the row was not written at commit")
        return self._row


def insert_back_at_commit(session: AsyncSession, item: InsertBack, row: dict[str, Any]) -> Back:
    """Queue one row for ``item`` until commit; its returned values are in the ``Back`` after the commit. One such
    row per transaction: the statement that writes it hands back one row of values."""
    info = session.sync_session.info
    if _BACK in info:
        raise RuntimeError("one row per transaction may hand values back")
    back = info[_BACK] = Back()
    info.setdefault(_ROWS, []).append((item, [row]))
    return back


def receiver(session: Session) -> Back | None:
    """The ``Back`` of this transaction's ``InsertBack`` row, for the statement that writes it."""
    back: Back | None = session.info.get(_BACK)
    return back


def set_linker(linker: Callable[[Session, Tail], bool]) -> None:
    global _linker
    _linker = linker


def foldable(tail: Tail) -> tuple[Tail, Tail]:
    """The part of the tail that may go into the audit's statement, and the rest (written on its own)."""
    small = sum(len(rows) for _, rows in tail) <= FOLD_MAX_ROWS
    return (tail, []) if small else ([], tail)


def write(session: Session, tail: Tail) -> None:
    for statement, rows in tail:
        if isinstance(statement, InsertBack):
            back = receiver(session)
            assert back is not None
            back.receive(session.connection().execute(insert_back(statement), rows[0]).one())
        elif isinstance(statement, Update):
            session.execute(by_id(statement, tuple(rows[0])), [{f"b_{k}": v for k, v in row.items()} for row in rows])
        else:
            session.execute(statement, rows)


def by_id(statement: Update, names: tuple[str, ...]) -> Update:
    """``statement`` for one row at a time (an executemany): the row by ``b_id`` and its ``MATCH`` columns, its own
    values from ``b_<column>`` (SQLAlchemy keeps a column's own name for the SET clause)."""
    table: Any = statement.table
    return (statement.where(table.c.id == bindparam("b_id"),
                            *(table.c[column_of(n)] == bindparam(f"b_{n}") for n in names if n.startswith(MATCH)))
            .values({n: bindparam(f"b_{n}") for n in names if n != "id" and not n.startswith(MATCH)}))


@functools.lru_cache(maxsize=16)
def insert_back(item: InsertBack) -> ReturningInsert[Any]:
    """``item`` as a statement of its own, built once: for its writer outside the commit, and here for SQLite or a
    tail too large for the audit's statement."""
    table = item.table
    statement = insert(table).returning(*(table.c[n] for n in item.returning))
    return statement.values(dict(item.computed)) if item.computed else statement


@event.listens_for(Session, "before_commit")
def _at_commit(session: Session) -> None:
    tail: Tail = session.info.pop(_ROWS, None) or []
    if _linker is not None and _linker(session, tail):
        return
    write(session, tail)


@event.listens_for(Session, "after_transaction_end")
def _drop_on_rollback(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_ROWS, None)
        session.info.pop(_BACK, None)
