"""What every use case shares: the transaction handle it works in.

A chat command runs in the dispatcher's one transaction (inbox row, effects, audit record and reply commit
together, which is what makes a command exactly-once); a service takes that transaction as its first argument
instead of opening its own. Adapters pass it along without knowing what is inside, so they need no database
library of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.db import Tx

if TYPE_CHECKING:
    from storage.audit import Auditor


@dataclass
class Act:
    """The chat command a service acts for: who, in which role, where, in reply to which event, when.

    ``subjects`` is the command's own list (``Context.subjects``): the keyed hashes of the persons audited, in
    order, so the dispatcher can file the reply under the first (sepot 01 redaction finds it there)."""

    sender: str
    role: str
    room_id: str
    event_id: str
    now: datetime
    subjects: list[str] = field(default_factory=list)

    async def audit(self, auditor: Auditor, tx: Tx, kind: str, *, person: str | None = None,
                    **details: Any) -> None:
        """One audit record of this act, in its transaction; ``person`` is a clear identifier (hashed here)."""
        subject = auditor.subject_of(person) if person else None
        if subject and subject not in self.subjects:
            self.subjects.append(subject)
        await auditor.record(tx, kind=kind, at=self.now, actor=self.sender, role=self.role, subject=subject,
                             details={"event": self.event_id, **details})


__all__ = ["Act", "Tx"]
