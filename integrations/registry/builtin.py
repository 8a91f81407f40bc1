"""The built-in registry: markings in a database, filled by ``zsm-bot import``. Its queries are
``storage.registry_queries``.

Two places it can live. In the bot's own database (the embedded default) a lookup reads in the command's own
transaction: one connection per command. In a registry database of its own (``[registry] database_url``), shared
by every ZSM location, a lookup reads there in a short reader transaction of its own, and the command's
transaction only holds the location's state (its inbox row, decisions, mail, figures, audit records).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from domain.advies import Markering
from domain.identifiers import PersonId
from integrations.registry.base import RegistryUnavailable, answered_ahead
from storage.db import Engine, SessionFactory, Tx, create_engine, read_only, session_factory
from storage.leader import database_unreachable
from storage.migrate import upgrade
from storage.registry_queries import markeringen_of, replace_advice

# A lookup in the shared registry database takes milliseconds; one that hangs (a cut network, a connection that
# does not come) ends here, and the command is answered that the registry cannot be reached.
LOOKUP_TIMEOUT_S = 10.0


class BuiltinRegistry:
    name = "ingebouwd register"

    def __init__(self, sessions: SessionFactory, *, engine: Engine | None = None) -> None:
        self.sessions = sessions
        # Set when the registry has a database of its own: that engine is ours to migrate and to close.
        self._engine = engine

    @classmethod
    def shared(cls, database_url: str) -> BuiltinRegistry:
        """The registry in its own database, shared by the locations."""
        engine = create_engine(database_url)
        return cls(session_factory(engine), engine=engine)

    @property
    def separate(self) -> bool:
        return self._engine is not None

    @property
    def in_command_transaction(self) -> bool:
        return not self.separate

    async def lookup(self, person: PersonId, *, session: Tx | None = None) -> list[Markering]:
        if session is not None and not self.separate:
            return await markeringen_of(session, person.kind, person.value)
        if (ahead := answered_ahead(session, person)) is not None:
            return ahead
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S), read_only(self.sessions) as s:
                return await markeringen_of(s, person.kind, person.value)
        except Exception as exc:
            # The registry database down while the location's own is up: the user is told plainly (as with the
            # http adapter), the command is answered and audited; nothing is guessed, nothing waits for it.
            if self.separate and database_unreachable(exc):
                raise RegistryUnavailable(type(exc).__name__) from None
            raise

    async def record_advice(self, session: Tx, *, bsn: str, veiligheidshuis: str, advies: str, afdoening: str,
                            datum: date, now: datetime) -> tuple[bool, date | None]:
        """An answer to an advice request becomes the marking's newest advice where the markings live: in the
        command's transaction when the registry shares the bot's database, else in a short transaction of the
        shared registry database, so every location's !check sees it (the same values again on a retry)."""
        if not self.separate:
            return await replace_advice(session, bsn=bsn, veiligheidshuis=veiligheidshuis, advies=advies,
                                        afdoening=afdoening, datum=datum, now=now)
        async with self.sessions() as s, s.begin():
            return await replace_advice(s, bsn=bsn, veiligheidshuis=veiligheidshuis, advies=advies,
                                        afdoening=afdoening, datum=datum, now=now)

    async def prepare(self) -> None:
        """At start: the registry database gets the same migrations as the bot's own (under the migration lock,
        so locations starting together take turns); only its ``markering`` table is used there."""
        if self._engine is not None:
            await upgrade(self._engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
