"""The witness of the audit chain: its head (sequence number and MAC) published outside the database.

A MAC shows a record was not changed, but not that the last records were not deleted with the head rolled back:
only a copy of the head kept elsewhere shows that. Every ``witness_interval_seconds`` and after each purge the head
goes out as a structured log line (``audit witness`` with ``audit_seq`` and ``audit_mac``, what
``zsm-bot audit verify --witness`` reads), and, with ``[audit] witness_room``, as a message in that room. Each time
it also checks that the head it published last is still in the chain: a rewrite is logged as an error at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from config.audit import AuditSettings
from domain.clock import Clock
from services import messages
from services.messages import NewMessage, message_content, txn_id_for
from services.reply import text
from storage.audit import Head, current_head, mac_at
from storage.db import SessionFactory

log = logging.getLogger(__name__)
LOG_MESSAGE = "audit witness"


class AuditWitness:
    def __init__(self, sessions: SessionFactory, clock: Clock, settings: AuditSettings,
                 wake_sender: Callable[[], None]) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.wake_sender = wake_sender
        self.last: Head | None = None
        self._room_seq = -2  # head last posted in the room

    async def publish(self, reason: str) -> Head:
        """Log the head (and post it in the witness room), after checking the previous one is still there."""
        room = self.settings.witness_room
        async with self.sessions() as s, s.begin():
            head = await current_head(s)
            prev = self.last
            if prev is not None and prev.seq > head.checkpoint:
                still = await mac_at(s, prev.seq) if prev.seq != head.seq else head.mac
                if head.seq < prev.seq or still != prev.mac:
                    log.error("audit chain rewritten since the last witness",
                              extra={"audit_seq": prev.seq, "audit_head": head.seq})
            # The room message's own send record moves the head by one: that alone is not posted again.
            posted = room is not None and head.seq > self._room_seq + 1
            if posted:
                assert room is not None
                body = (f"Auditketen: record {head.seq}, MAC {head.mac} "
                        f"(audit_seq={head.seq} audit_mac={head.mac})")
                await messages.queue(s, NewMessage(room_id=room, content=message_content(text(body)),
                                                   txn_id=txn_id_for(f"audit-witness:{head.seq}:{head.mac}",
                                                                     "getuige")), self.clock.now())
        log.info(LOG_MESSAGE, extra={"audit_seq": head.seq, "audit_mac": head.mac,
                                     "audit_checkpoint": head.checkpoint, "reason": reason})
        self.last = head
        if posted:
            self._room_seq = head.seq
            self.wake_sender()
        return head

    async def try_publish(self, reason: str) -> None:
        """``publish``, but a database hiccup skips one publication (logged), never the caller's work."""
        try:
            await self.publish(reason)
        except Exception as exc:
            log.error("audit witness failed", extra={"error": type(exc).__name__, "reason": reason})

    async def run(self) -> None:
        """At start, then every interval."""
        while True:
            await self.try_publish("interval")
            await asyncio.sleep(self.settings.witness_interval_seconds)
