"""The built-in registry in the bot's own database: the embedded default. Its queries are
``storage.registry_queries``."""

from __future__ import annotations

from domain.advies import Markering
from domain.identifiers import PersonId
from storage.db import SessionFactory, Tx
from storage.registry_queries import markeringen_of


class BuiltinRegistry:
    name = "ingebouwd register"

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def lookup(self, person: PersonId, *, session: Tx | None = None) -> list[Markering]:
        if session is not None:
            return await markeringen_of(session, person.kind, person.value)
        async with self.sessions() as s:
            found = await markeringen_of(s, person.kind, person.value)
            await s.rollback()
        return found
