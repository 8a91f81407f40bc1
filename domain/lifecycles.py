"""The lifecycles of a decision and of a queued mail: their states and which step from one state to another is allowed.

The values are the strings stored in the database (``besluit.status``, ``mail_outbox.status``), so the enums can be
compared with and written to those columns directly. Services ask ``may_become`` before they change a state.
"""

from __future__ import annotations

from datetime import datetime
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
    decision before it went (body cleared), or so the bot thought: a mail already handed to the relay when the
    cancellation committed is recorded sent once the relay accepts it, for it did go."""

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
    # vervallen -> sent: cancelled while it was on its way to the relay, which then accepted it
    MailStatus.VERVALLEN: frozenset({MailStatus.SENT}),
}

# Not sent yet and not given up for good: what !outbox lists, and what a later decision or an undo cancels.
MAIL_OPEN: Final[tuple[MailStatus, ...]] = (MailStatus.CONCEPT, MailStatus.PENDING, MailStatus.DEAD)


def may_have_gone(status: str, claimed_until: datetime | None, now: datetime) -> bool:
    """Whether the veiligheidshuis may have this mail: sent, or held by a relay round (the mail worker claims a
    round's mails before it hands them to the relay one by one), also when it was cancelled since. A later decision
    on the case then goes as a correction, and an undo is refused: the mail may be in the mailbox already."""
    if status == MailStatus.SENT:
        return True
    held = claimed_until is not None and claimed_until > now
    return held and status in (MailStatus.PENDING, MailStatus.VERVALLEN)


def may_become(current: str, new: BesluitStatus | MailStatus) -> bool:
    """Whether a decision or mail in state ``current`` may step to ``new`` (an unknown current state: never)."""
    if isinstance(new, BesluitStatus):
        if current not in BesluitStatus.__members__.values():
            return False
        return new in BESLUIT_STAPPEN[BesluitStatus(current)]
    if current not in MailStatus.__members__.values():
        return False
    return new in MAIL_STAPPEN[MailStatus(current)]
