"""Transports deliver messages; the dispatcher and commands never see which one is in use."""

from __future__ import annotations

from typing import Any, Protocol


class RateLimited(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limited for {retry_after_s:.2f}s")
        self.retry_after_s = retry_after_s


class SendFailed(Exception):
    """``permanent`` when retrying cannot help (the bot is not in the room, the room is gone)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Transport(Protocol):
    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        """Deliver one message; the same ``txn_id`` must never produce a second message. Returns the event id."""
        ...

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        """Redact one of the bot's own events; the same ``txn_id`` must never produce a second redaction.
        Raises ``RateLimited`` or ``SendFailed`` like ``send``."""
        ...
