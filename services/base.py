"""What every use case shares: the transaction handle it works in.

A chat command runs in the dispatcher's one transaction (inbox row, effects, audit record and reply commit
together, which is what makes a command exactly-once); a service takes that transaction as its first argument
instead of opening its own. Adapters pass it along without knowing what is inside, so they need no database
library of their own.
"""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession

Tx: TypeAlias = AsyncSession

__all__ = ["Tx"]
