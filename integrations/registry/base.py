"""What every registry adapter offers: one national lookup for a person, across all veiligheidshuizen."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from domain.advies import Markering
from domain.identifiers import PersonId

if TYPE_CHECKING:
    from storage.db import Tx


class RegistryUnavailable(Exception):
    """The registry could not be asked (down, timed out); the user is told plainly, nothing is guessed."""


class Registry(Protocol):
    name: str

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
