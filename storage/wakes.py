"""Which durable queues a transaction wrote to, so that its commit wakes only the loops with work.

A command that wrote a mail, marked messages for redaction or queued a room message that nobody sends right after
the commit must wake that queue's loop; one that wrote none of them must not: every wake is a poll (a transaction
and a query) on the path of the next command. The writers below (``storage.outgoing``, ``storage.redaction``,
``storage.besluit_queries``) note it on the session; the caller reads the notes just before its commit.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "zsm_queues_written"


class Queue(StrEnum):
    MATRIX = "matrix"  # room messages not handed to the sender after the commit
    MAIL = "mail"
    REDACTION = "redaction"


def wrote(session: AsyncSession, queue: Queue) -> None:
    session.sync_session.info.setdefault(_KEY, set()).add(queue)


def written(session: AsyncSession) -> frozenset[Queue]:
    """The queues this transaction wrote to so far (read before the commit; a rollback forgets them)."""
    return frozenset(session.sync_session.info.get(_KEY, ()))


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_KEY, None)
