"""The management figures of issue 7 as one use case, for ``!rapport``, ``zsm-bot rapport`` and ``/rapport``.

Every way of asking computes the same ``Rapport`` (``storage.rapport_queries.compute_rapport``, aggregates only)
and leaves an audit record saying who asked for which period. Computing only reads, always in a reader
transaction (``storage.db.read_only``), so a year's report never holds the write lock: the chat command is
read-only (the dispatcher writes its audit record with the reply), the CLI and the web page get a reader
transaction of their own here.

In the bot (``in_worker``) the figures are computed in a worker process (``services.rapport_worker``) on the same
database, so a year's row processing and sorting never run in the interpreter of the event loop; the command's
transaction then only carries the audit record, as before. The CLI, a process of its own anyway, and a database
that no other process can open (in-memory SQLite) compute here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.clock import Clock
from domain.rapport import Period, Rapport
from domain.veiligheidshuizen import Veiligheidshuizen
from services.base import Caller, Tx
from services.foreground import Foreground
from services.rapport_worker import RapportWorker
from storage.audit import Auditor
from storage.db import SessionFactory, read_only, url_elsewhere
from storage.rapport_queries import compute_rapport


@dataclass
class RapportService:
    sessions: SessionFactory
    auditor: Auditor
    veiligheidshuizen: Veiligheidshuizen
    clock: Clock
    in_worker: bool = False
    # The bot's commands in flight, which the worker gives way to (``services.foreground``); None: it need not.
    foreground: Foreground | None = None
    worker: RapportWorker | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        url = url_elsewhere(self.sessions) if self.in_worker else None
        if url is not None:
            self.worker = RapportWorker(url, self.foreground)

    async def chat(self, tx: Tx, caller: Caller, period: Period, veiligheidshuis: str | None) -> Rapport:
        """``!rapport``: in the command's transaction, audited as asked in the chat. While the worker computes,
        this command is not one the worker gives way to: it waits for the worker itself."""
        if self.worker is not None:
            rapport = await self.worker.compute(period, veiligheidshuis, self.veiligheidshuizen.keys(),
                                                for_command=True)
        else:
            rapport = await compute_rapport(tx, period, veiligheidshuis, self.veiligheidshuizen.keys())
        await caller.audit("rapport.opgevraagd", periode=period.label, veiligheidshuis=veiligheidshuis, via="chat")
        return rapport

    async def export(self, period: Period, veiligheidshuis: str | None, *, actor: str, via: str) -> Rapport:
        """A script's export (``zsm-bot rapport``): the figures in a reader transaction, then their audit record
        in a short write transaction (a record of a report that then failed to print is the safe side)."""
        rapport = await self.figures(period, veiligheidshuis)
        async with self.sessions() as s, s.begin():
            await self.auditor.record(s, kind="rapport.opgevraagd", at=self.clock.now(), actor=actor,
                                      details={"periode": period.label, "veiligheidshuis": veiligheidshuis,
                                               "via": via})
        return rapport

    async def figures(self, period: Period, veiligheidshuis: str | None) -> Rapport:
        """The figures for the web page, in a reader transaction of their own that neither holds nor waits for
        the write lock (the page audits its views itself)."""
        if self.worker is not None:
            return await self.worker.compute(period, veiligheidshuis, self.veiligheidshuizen.keys())
        async with read_only(self.sessions) as s:
            return await compute_rapport(s, period, veiligheidshuis, self.veiligheidshuizen.keys())

    async def audit(self, kind: str, actor: str, **details: Any) -> None:
        """One record of the web page (login, view, refused token), in a transaction of its own."""
        async with self.sessions() as s, s.begin():
            await self.auditor.record(s, kind=kind, at=self.clock.now(), actor=actor, details=details)

    async def close(self) -> None:
        """Stop the worker process, if one was started (the runtime's close, within its shutdown bound)."""
        if self.worker is not None:
            await self.worker.close()
