"""What every registry adapter offers: one national lookup for a person, across all veiligheidshuizen."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from domain.advies import Markering
from domain.identifiers import PersonId
from storage.lookahead import recalled

if TYPE_CHECKING:
    from storage.db import Tx


class RegistryUnavailable(Exception):
    """The registry could not be asked (down, timed out); the user is told plainly, nothing is guessed."""


class Registry(Protocol):
    name: str

    @property
    def in_command_transaction(self) -> bool:
        """Whether a lookup reads in the command's own transaction (the built-in registry in the bot's database).
        Any other registry is asked before that transaction begins (``storage.lookahead``), so a slow answer
        holds no write lock."""
        ...

    async def lookup(self, person: PersonId, *, session: Tx | None = None) -> list[Markering]:
        """Every marking of this person at any veiligheidshuis; empty when nobody knows the person.

        ``session``: the command's own transaction; the built-in registry reads in it (one transaction per
        command, no second connection), other adapters ignore it.
        """
        ...

    async def record_advice(self, session: Tx, *, bsn: str, veiligheidshuis: str, advies: str, afdoening: str,
                            datum: date, now: datetime) -> tuple[bool, date | None]:
        """An answer to an advice request as the marking's newest advice, where the adapter can write it.

        Returns whether a marking was updated and the date of the advice it replaced; an adapter the bot does not
        write (an outside registry) returns ``(False, None)``.
        """
        ...

    async def prepare(self) -> None:
        """At start, before the first lookup (a registry database of its own is migrated here)."""
        ...

    async def close(self) -> None:
        """At shutdown: connections and sessions of the adapter closed."""
        ...


def answered_ahead(session: Tx | None, person: PersonId) -> list[Markering] | None:
    """In an adapter's ``lookup``: the answer the dispatcher got for this person before the transaction began, so
    the registry is asked once per command; None when nobody asked ahead (then the adapter asks now)."""
    if session is None:
        return None
    found = recalled(session, person)
    if isinstance(found, Exception):  # only an unreachable registry is kept (``services.lookahead``)
        raise RegistryUnavailable(str(found)) from None
    return found
