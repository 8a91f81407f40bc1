"""What every use case shares: the transaction handle it works in.

A chat command runs in the dispatcher's one transaction (inbox row, effects, audit record and reply commit
together, which is what makes a command exactly-once); a service takes that transaction as its first argument
instead of opening its own. Adapters pass it along without knowing what is inside, so they need no database
library of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from storage.db import Tx


class AuditFn(Protocol):
    """Writes one audit record in the command's transaction, stamped with actor, role and event; ``person`` is
    a clear identifier (hashed by the auditor), ``subject`` an already keyed hash."""

    async def __call__(self, kind: str, *, person: str | None = None, subject: str | None = None,
                       **details: Any) -> None: ...


@dataclass(frozen=True)
class Caller:
    """The chat command a service acts for: who, in which role, in which room, for which event, at what moment,
    and how its acts reach the audit trail (the adapter's writer, which also remembers the persons audited so the
    reply can be filed under the first of them for the sepot-01 redaction)."""

    sender: str
    role: str
    room_id: str
    event_id: str
    now: datetime
    audit: AuditFn


__all__ = ["AuditFn", "Caller", "Tx"]
