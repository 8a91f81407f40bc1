"""How long each kind of record is kept (PRIVACY.md: periods belong in each region's privacy protocol, so each
is a setting with a conservative default). Read by the purge job and shown by check-config; ``config.privacy``
parses ``[privacy.bewaren]`` into a ``Retention``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

# Days. Decisions, referrals and requests are kept a little over a year so the yearly figures can be made.
DEFAULT_DAYS: dict[str, int] = {
    "inbox": 30,             # handled command events (no message text)
    "berichten": 30,         # the bot's own sent Matrix messages (bookkeeping rows; content is cleared at send)
    "zaakberichten": 30,     # the bot's room messages that carry case data: redacted in the room after this
    "mail": 90,              # sent, dead or cancelled mails (bodies are cleared at send)
    "besluiten": 400,        # decisions
    "aanmeldingen": 400,     # referrals
    "aanvragen": 400,        # closed advice requests with their steps and mails
    "binnenkomsten": 400,    # known persons who came in (!werklijst, feedback coverage): as long as the decisions
    "audit": 1825,           # audit records: the evidence of who saw what; five years, then a chain checkpoint
}


@dataclass(frozen=True)
class Retention:
    days: Mapping[str, int]

    def period(self, kind: str) -> timedelta:
        return timedelta(days=self.days[kind])
