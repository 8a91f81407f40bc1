"""What every registry adapter offers: one national lookup for a person, across all veiligheidshuizen."""

from __future__ import annotations

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
