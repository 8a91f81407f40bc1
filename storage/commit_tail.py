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
(``storage.audit.one_statement_sessions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Insert, Update, bindparam, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

# (statement, rows): an INSERT on one table with one row per dict, or an UPDATE on one table (the values every row
# gets) applied to the row whose ``id`` each dict names, with the dict's other keys as that row's own values.
Tail = list[tuple[Insert | Update, list[dict[str, Any]]]]
_ROWS = "zsm_commit_tail"
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


def update_at_commit(session: AsyncSession, statement: Update, rows: list[dict[str, Any]]) -> None:
    """Queue ``rows`` (each with ``id`` and the same further keys) for ``statement``, an UPDATE on one table with the
    values all rows share, until commit. A row that is gone by then is left alone."""
    if rows:
        session.sync_session.info.setdefault(_ROWS, []).append((statement, rows))


def set_linker(linker: Callable[[Session, Tail], bool]) -> None:
    global _linker
    _linker = linker


def foldable(tail: Tail) -> tuple[Tail, Tail]:
    """The part of the tail that may go into the audit's statement, and the rest (written on its own)."""
    small = sum(len(rows) for _, rows in tail) <= FOLD_MAX_ROWS
    return (tail, []) if small else ([], tail)


def write(session: Session, tail: Tail) -> None:
    for statement, rows in tail:
        if isinstance(statement, Update):
            session.execute(by_id(statement, tuple(rows[0])), [{f"b_{k}": v for k, v in row.items()} for row in rows])
        else:
            session.execute(statement, rows)


def by_id(statement: Update, names: tuple[str, ...]) -> Update:
    """``statement`` for one row at a time (an executemany): the row by ``b_id``, its own values from ``b_<column>``
    (SQLAlchemy keeps a column's own name for the SET clause)."""
    table = statement.table
    return (statement.where(table.c.id == bindparam("b_id"))  # type: ignore[union-attr]
            .values({n: bindparam(f"b_{n}") for n in names if n != "id"}))


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
