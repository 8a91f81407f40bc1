"""The lifecycles of a decision and of a queued mail: their states and which step from one state to another is allowed.

The values are the strings stored in the database (``besluit.status``, ``mail_outbox.status``), so the enums can be
compared with and written to those columns directly. Services ask ``may_become`` before they change a state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class BesluitStatus(StrEnum):
    """A recorded decision: in force, replaced by a later decision on the same case, or undone within the window."""

    ACTIEF = "actief"
    VERVANGEN = "vervangen"
    INGETROKKEN = "ingetrokken"


class MailStatus(StrEnum):
    """A mail in the outbox.

    concept: drafted under the strict (hit-no-hit) profile, waits for ``!outbox bevestig``; pending: due at
    ``next_attempt_at`` (first try or a retry after a failure); sent: accepted by the relay (body cleared); dead:
    given up after the last attempt, ``!outbox opnieuw`` puts it back; vervallen: cancelled by an undo or a later
    decision before it went (body cleared)."""

    CONCEPT = "concept"
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    VERVALLEN = "vervallen"


BESLUIT_STAPPEN: Final[dict[BesluitStatus, frozenset[BesluitStatus]]] = {
    BesluitStatus.ACTIEF: frozenset({BesluitStatus.VERVANGEN, BesluitStatus.INGETROKKEN}),
    BesluitStatus.VERVANGEN: frozenset(),
    BesluitStatus.INGETROKKEN: frozenset(),
}

MAIL_STAPPEN: Final[dict[MailStatus, frozenset[MailStatus]]] = {
    MailStatus.CONCEPT: frozenset({MailStatus.PENDING, MailStatus.VERVALLEN}),
    # pending -> pending: a failed attempt, rescheduled with backoff
    MailStatus.PENDING: frozenset({MailStatus.PENDING, MailStatus.SENT, MailStatus.DEAD, MailStatus.VERVALLEN}),
    MailStatus.DEAD: frozenset({MailStatus.PENDING, MailStatus.VERVALLEN}),
    MailStatus.SENT: frozenset(),
    MailStatus.VERVALLEN: frozenset(),
}

# Not sent yet and not given up for good: what !outbox lists, and what a later decision or an undo cancels.
MAIL_OPEN: Final[tuple[MailStatus, ...]] = (MailStatus.CONCEPT, MailStatus.PENDING, MailStatus.DEAD)


def may_become(current: str, new: BesluitStatus | MailStatus) -> bool:
    """Whether a decision or mail in state ``current`` may step to ``new`` (an unknown current state: never)."""
    if isinstance(new, BesluitStatus):
        if current not in BesluitStatus.__members__.values():
            return False
        return new in BESLUIT_STAPPEN[BesluitStatus(current)]
    if current not in MailStatus.__members__.values():
        return False
    return new in MAIL_STAPPEN[MailStatus(current)]
