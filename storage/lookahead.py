"""Registry answers got before a command's transaction began, kept on that transaction for its own lookups.

An outside registry (the HTTP adapter, or the built-in registry in a database of its own) can take seconds to
answer. Asked inside the command's write transaction, that wait would hold the transaction open: on SQLite the one
writer's turn, so every other command, the mail worker and the sender wait behind a slow registry. The dispatcher
therefore asks it first and leaves the answers here; the adapter's ``lookup`` in the transaction takes them from
here, so the services read, audit and reply exactly as before, and the lookup counts once.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from domain.advies import Markering
from domain.identifiers import PersonId

_KEY = "zsm_registry_ahead"

# A person's markings, or the reason the registry could not be asked (raised again by the adapter in the
# transaction, where the service audits and answers it as it always did).
Answer = list[Markering] | Exception


def remember(session: AsyncSession, answers: Mapping[PersonId, Answer]) -> None:
    if answers:
        session.sync_session.info[_KEY] = dict(answers)


def recalled(session: AsyncSession, person: PersonId) -> Answer | None:
    """The answer got ahead for this person in this transaction; None when nobody asked ahead."""
    answers: dict[PersonId, Answer] | None = session.sync_session.info.get(_KEY)
    return None if answers is None else answers.get(person)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    # An answer is for the one transaction it was got for: a retry after a rollback (an outage) asks again.
    if transaction.parent is None:
        session.info.pop(_KEY, None)
