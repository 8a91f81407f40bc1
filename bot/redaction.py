"""The redaction loop: removes the bot's own room messages that the purge or a sepot 01 marked in
``outgoing_message``. Commands and the purge only mark rows (storage/redaction.py); this loop is the only place that
asks the homeserver, with a transaction id derived from the row so a retry after a crash or a 429 redacts once.

What is audited is how many messages were redacted and why (retention, sepot 01), never which or what they said.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.metrics import Metrics
from bot.transport import RateLimited, SendFailed, Transport
from domain.clock import Clock
from integrations.drain_loop import DrainLoop
from services.messages import txn_id_for
from storage import redaction as redaction_queries
from storage.audit import Auditor
from storage.db import SessionFactory, read_only
from storage.leader import SOLO, Leadership, NotActive

log = logging.getLogger(__name__)

MAX_PERMANENT_FAILURES = 5
MAX_BACKOFF_S = 60.0
IDLE_S = 300.0  # nothing queued: the purge and sepot 01 wake the loop; this is only a safety net
BATCH = 50
# A redaction waits at most this long for the replies being sent (they go first: the bot's rate limit at the
# homeserver is shared), so a steady stream of commands slows a purge down but never stops it.
YIELD_MAX_S = 5.0
CLAIM_LEASE = timedelta(seconds=90)  # a row taken by an instance that then died falls due again after this


class Redactor(DrainLoop):
    loop_name = "redaction"

    def __init__(self, sessions: SessionFactory, transport: Transport, clock: Clock, auditor: Auditor,
                 metrics: Metrics, leader: Leadership = SOLO,
                 replies_first: Callable[[float], Awaitable[None]] | None = None) -> None:
        super().__init__()
        # The send loop's ``replies_sent``: each redaction waits for the command replies on their way.
        self.replies_first = replies_first
        self.leader = leader
        self.sessions = sessions
        self.transport = transport
        self.clock = clock
        self.auditor = auditor
        self.metrics = metrics

    async def pending_count(self) -> int:
        async with read_only(self.sessions) as s:
            return await redaction_queries.pending_count(s)

    async def drain(self) -> float:
        """Redact what is due, oldest first. Returns seconds until the next retry falls due."""
        async with self._lock:
            while True:
                if not self.leader.active:
                    return IDLE_S
                now = self.clock.now()
                async with read_only(self.sessions) as s:  # a poll: never holds or waits for the write lock
                    rows = await redaction_queries.pending_batch(s, BATCH)
                if not rows:
                    return IDLE_S
                due = [r for r in rows if r.redaction_next_at is None or r.redaction_next_at <= now]
                if not due:
                    waits = [(r.redaction_next_at - now).total_seconds() for r in rows if r.redaction_next_at]
                    return float(max(0.05, min(waits)))
                done: list[int] = []
                reasons: Counter[str] = Counter()
                fenced_out = False
                for row in due:
                    if self.replies_first is not None:
                        await self.replies_first(YIELD_MAX_S)
                    try:
                        if not await self._claim(row.id):
                            continue
                    except NotActive:
                        fenced_out = True
                        break
                    if await self._redact_one(row.id, row.room_id, row.event_id, row.redaction_reason or "",
                                              row.redaction_attempts):
                        done.append(row.id)
                        reasons[row.redaction_reason or "?"] += 1
                if done:
                    await self._record_done(done, reasons)
                if fenced_out:
                    return IDLE_S  # woken again when this instance becomes active

    async def _claim(self, row_id: int) -> bool:
        """The row is ours to redact: claimed and fenced in one transaction (see storage.leader)."""
        async with self.sessions() as s, s.begin():
            if not await redaction_queries.claim(s, row_id, self.clock.now(), CLAIM_LEASE):
                return False
            await self.leader.fence(s)
        return True

    async def _redact_one(self, row_id: int, room_id: str, event_id: str, reason: str, attempts: int) -> bool:
        while True:
            try:
                await self.transport.redact(room_id, event_id, reason, txn_id_for(event_id, "redact"))
                return True
            except RateLimited as exc:
                self.metrics.rate_limited.inc()
                await asyncio.sleep(min(exc.retry_after_s, 60.0))
            except SendFailed as exc:
                await self._failed(row_id, attempts + 1, exc.reason, exc.permanent)
                return False
            except Exception as exc:
                await self._failed(row_id, attempts + 1, type(exc).__name__, False)
                return False

    async def _record_done(self, ids: list[int], reasons: Counter[str]) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            # Nothing that ties the row to a person stays: the subject hash and any content go.
            await redaction_queries.mark_done(s, ids, now)
            await self.auditor.record(s, kind="bericht.geredigeerd", at=now,
                                      details={"aantal": len(ids), "redenen": dict(reasons)})
        self.metrics.redactions.inc(len(ids))
        log.info("messages redacted", extra={"count": len(ids)})

    async def _failed(self, row_id: int, attempts: int, reason: str, permanent: bool) -> None:
        now = self.clock.now()
        self.metrics.redaction_errors.inc()
        give_up = permanent and attempts >= MAX_PERMANENT_FAILURES
        next_at = now + timedelta(seconds=min(MAX_BACKOFF_S, 0.5 * 2 ** min(attempts, 8)))
        async with self.sessions() as s, s.begin():
            if not await redaction_queries.mark_failed(s, row_id, attempts=attempts,
                                                       error=f"redactie: {reason}"[:255], give_up=give_up,
                                                       next_at=next_at):
                return
            if give_up:
                await self.auditor.record(s, kind="bericht.redactie_mislukt", at=now,
                                          details={"aantal": 1, "reden": reason[:120]})
                log.error("redaction failed for good; remove the message by hand", extra={
                    "reason": reason[:120], "row": row_id})
            else:
                log.warning("redaction failed, will retry", extra={"attempt": attempts, "reason": reason[:120]})
