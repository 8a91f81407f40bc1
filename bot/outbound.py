"""The send loop of the one outbound Matrix queue: durable rows, sent in order, 429s honoured, txn ids reused.

Rows are written by ``services.messages`` (in the same transaction as the effects they report); this loop only
delivers them through the transport. A row's transaction id is derived from what caused it, so a resend after a
crash or a 429 is recognised by the homeserver as the same message and never appears twice.

A row is claimed and fenced (storage.leader) before it is sent. A command's reply and notes are written already
claimed, fenced in the command's own transaction, and handed to this loop after that commit (``offer``): they go
out at once, with no transaction between the commit and the send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.metrics import Metrics
from bot.shutdown import cancel_within
from bot.transport import RateLimited, SendFailed, Transport
from domain.clock import Clock
from integrations.drain_loop import DrainLoop
from storage import outgoing
from storage.audit import Auditor, NeedsTransaction, one_statement_sessions
from storage.db import SessionFactory, read_only
from storage.leader import SOLO, Leadership, NotActive
from storage.outgoing import CLAIM_LEASE, Queued

log = logging.getLogger(__name__)

MAX_PERMANENT_FAILURES = 5
MAX_BACKOFF_S = 30.0
RELEASE_WAIT_S = 3.0  # a stop does not wait longer on the database to give back unsent replies


class RecentlySent:
    """The last ``size`` txn ids sent, asked on every send: a set beside the order they came in, as a scan of
    10,000 ids took 0.14 ms of the event loop per reply once a bot had sent that many."""

    def __init__(self, size: int) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, txn_id: str) -> None:
        if txn_id in self._ids:
            return
        if len(self._order) == self._size:
            self._ids.discard(self._order.popleft())
        self._order.append(txn_id)
        self._ids.add(txn_id)

    def __contains__(self, txn_id: str) -> bool:
        return txn_id in self._ids


class Sender(DrainLoop):
    """Drains the queue through a transport. One instance per process; ``offer``/``wake`` after every commit."""

    loop_name = "matrix"

    def __init__(
        self, sessions: SessionFactory, transport: Transport, clock: Clock, auditor: Auditor, metrics: Metrics,
        leader: Leadership = SOLO,
    ) -> None:
        self.sessions = sessions
        self._alone = one_statement_sessions(sessions)
        self.leader = leader
        # txn id -> event id of a message another device of the bot already sent (the Matrix transport's view of
        # its own sync; matrix_main wires it). A row claimed by a killed predecessor is then recorded, not resent.
        self.sent_elsewhere: Callable[[str], str | None] = lambda txn_id: None
        self.transport = transport
        self.clock = clock
        self.auditor = auditor
        self.metrics = metrics
        super().__init__()
        self._fresh: deque[Queued] = deque()
        # By txn id, not row id: SQLite reuses the highest row id once the purge has removed that row, and a new
        # message under a reused id must not be taken for one already sent.
        self._recently_sent = RecentlySent(10_000)
        # The interactive lane: offered replies are sent by their own task, in order (one at a time), beside the
        # drain, so a reply never waits for the bulk message being sent when it was committed. A txn id being
        # sent by one of the two is claimed, so the other never sends it as well.
        self._fresh_lock = asyncio.Lock()
        self._claimed: set[str] = set()
        # Offered and not yet taken up by the lane: the drain leaves them to it, also when their claim was
        # released meanwhile (a takeover's release_claims) or ran out behind a long send.
        self._offered: set[str] = set()
        # Sent, not yet recorded: while more offered rows wait, the lane sends on and records the run in one
        # transaction after it. A crash in between leaves them pending and claimed, as a crash between a send and
        # its record always did: sent again under the same txn id (the homeserver keeps one) or, by a successor,
        # recorded as ``sent_elsewhere``.
        self._unrecorded: list[tuple[int, str, str, str]] = []  # row id, room, event id, txn id
        self._express: asyncio.Task[None] | None = None
        self._live = False
        # Set while no offered reply waits or is on its way: the redaction loop yields to a person waiting for an
        # answer, as the bulk lane does (both share the homeserver's rate limit for the bot).
        self._replies_done = asyncio.Event()
        self._replies_done.set()

    def offer(self, queued: list[Queued]) -> None:
        """Called after the commit that wrote these rows; the database stays the source of truth."""
        if not queued:
            return
        self._replies_done.clear()
        self._fresh.extend(queued)
        self._offered.update(q.txn_id for q in queued)
        if not self._live:
            self._wake.set()  # no lane of their own: the drain sends them first
            return
        if self._express is None or self._express.done():
            self._express = asyncio.create_task(self._express_lane(), name="send-interactive")

    async def _express_lane(self) -> None:
        try:
            await self._send_fresh()
        except NotActive:
            self._forget_offered()  # fenced out: the active instance sends them from the database
        except Exception as exc:
            # The database failed under the lane (a lost connection): the replies it had not sent stay offered,
            # and the drain, which begins every pass with them, takes over after its own error pause.
            log.error("queue error", extra={"queue": "matrix-interactive", "error": type(exc).__name__})
            self._wake.set()

    async def run(self) -> None:
        """The send loop; from now on offered replies also go out at once on their own lane."""
        self._live = True
        try:
            await super().run()
        finally:
            self._live = False
            if self._express is not None:
                await cancel_within([self._express])
            await self._give_back_unsent()

    async def _give_back_unsent(self) -> None:
        """On a stop, the offered replies not yet sent lose this instance's claim, so whoever runs next (a standby
        taking over, this bot restarted) sends them at once instead of after the claim's take-over grace. A reply
        that was on its way keeps its claim: it may have reached the homeserver, and the successor finds out."""
        mine = [(q.id, q.claimed_until) for q in self._fresh if q.claimed_until is not None]
        self._forget_offered()
        if not mine:
            return
        try:
            async with asyncio.timeout(RELEASE_WAIT_S), self.sessions() as s, s.begin():
                released = await outgoing.release_own(s, mine)
        except Exception as exc:  # the claims then run out by themselves (CLAIM_LEASE)
            log.warning("unsent replies not given back", extra={"rows": len(mine), "error": type(exc).__name__})
            return
        log.info("unsent replies given back", extra={"rows": released})

    async def pending_count(self) -> int:
        async with read_only(self.sessions) as s:
            return await outgoing.pending_count(s)

    async def drain(self) -> float:
        """Send everything that is due: offered replies first, then the interactive lane, then bulk, each oldest
        first. Returns seconds until the next row falls due. An instance that is not (or no longer) active sends
        nothing: the database keeps the rows for the active one."""
        try:
            return await self._drain()
        except NotActive:
            self._forget_offered()
            return 30.0

    async def _drain(self) -> float:
        async with self._lock:
            if not self.leader.active:
                self._forget_offered()
                return 30.0
            while True:
                await self._send_fresh()
                now = self.clock.now()
                async with read_only(self.sessions) as s:  # a poll: never holds or waits for the write lock
                    rows = await outgoing.pending_batch(s, 50)
                if not rows:
                    return 30.0
                due = [r for r in rows if _due_at(r) <= now]
                if not due:
                    return float(max(0.05, min((_due_at(r) - now).total_seconds() for r in rows)))
                for row in due:
                    if self._fresh and not self._live:
                        break  # no lane of their own (no send loop): the offered replies go first
                    if row.txn_id in self._offered:
                        continue  # the lane sends it
                    await self._send_claimed(row.id, row.room_id, row.content or {}, row.txn_id, row.attempts)

    async def _send_fresh(self) -> None:
        """The rows offered after their commit (command replies), in order: before anything read from the queue
        when draining, on their own lane beside the drain when the send loop runs."""
        async with self._fresh_lock:
            try:
                while self._fresh:
                    if not self.leader.active:
                        self._forget_offered()
                        return
                    q = self._fresh.popleft()
                    self._offered.discard(q.txn_id)
                    await self._send_claimed(q.id, q.room_id, q.content, q.txn_id, 0, q.claimed_until, lane=True)
            finally:
                try:
                    await self._record_sent()  # what the run left unrecorded (it ended early: fenced out, cancelled)
                finally:
                    if not self._fresh:
                        self._replies_done.set()

    def _forget_offered(self) -> None:
        self._fresh.clear()
        self._offered.clear()
        self._replies_done.set()

    async def replies_sent(self, max_wait_s: float) -> None:
        """Return once no offered reply waits or is being sent, or after ``max_wait_s`` (bulk work yields to
        replies, but a stream of them never stops it for good). Without the send loop nobody sends them: no wait."""
        if not self._live:
            return
        # asyncio.wait, not wait_for: see integrations.drain_loop (a stop must never find this 'cancelling').
        waiter = asyncio.ensure_future(self._replies_done.wait())
        try:
            await asyncio.wait({waiter}, timeout=max_wait_s)
        finally:
            waiter.cancel()

    async def _send_claimed(self, row_id: int, room_id: str, content: dict[str, Any], txn_id: str,
                            attempts: int, held_until: datetime | None = None, *, lane: bool = False) -> None:
        """Send a row unless it was sent already or the other lane is sending it right now."""
        if txn_id in self._recently_sent or txn_id in self._claimed:
            return
        self._claimed.add(txn_id)
        try:
            await self._send_one(row_id, room_id, content, txn_id, attempts, held_until, lane=lane)
        finally:
            self._claimed.discard(txn_id)

    def _on_its_fence(self, held_until: datetime | None) -> bool:
        """A row written already claimed (a command's reply, ``held_until`` set) goes out on the fence of the
        transaction that wrote it, with no transaction between that commit and the send, while that fence is
        fresh (``Leadership.fence_lasts_s``; and at least half its lease is left for the send)."""
        if held_until is None:
            return False
        age = (self.clock.now() - (held_until - CLAIM_LEASE)).total_seconds()
        return age <= min(self.leader.fence_lasts_s, CLAIM_LEASE.total_seconds() / 2)

    async def _claim(self, row_id: int, held_until: datetime | None) -> bool:
        """The row is ours to send: claimed (a claim written with the row renewed) and fenced in one transaction
        (see storage.leader)."""
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            if not await outgoing.claim(s, row_id, now, CLAIM_LEASE, held_until=held_until):
                return False
            await self.leader.fence(s)  # NotActive rolls the claim back and ends the drain
        return True

    async def _send_one(self, row_id: int, room_id: str, content: dict[str, Any], txn_id: str, attempts: int,
                        held_until: datetime | None = None, *, lane: bool = False) -> None:
        if not self._on_its_fence(held_until) and not await self._claim(row_id, held_until):
            return
        elsewhere = self.sent_elsewhere(txn_id)
        if elsewhere is not None:
            # Claimed by a predecessor that was killed after the homeserver took the message: recorded, not resent.
            await self._sent(row_id, room_id, elsewhere, txn_id)
            return
        while True:
            try:
                event_id = await self.transport.send(room_id, content, txn_id)
            except RateLimited as exc:
                self.metrics.rate_limited.inc()
                await self._record_sent()  # not left unrecorded over the wait
                await asyncio.sleep(min(exc.retry_after_s, 60.0))
                async with read_only(self.sessions) as s:
                    if not await outgoing.still_to_send(s, row_id, txn_id):
                        return  # withdrawn over the wait (a sepot 01 for the person): it never reaches the room
                continue
            except SendFailed as exc:
                await self._failed(row_id, attempts + 1, exc.reason, exc.permanent)
                return
            except Exception as exc:
                await self._failed(row_id, attempts + 1, type(exc).__name__, False)
                return
            await self._sent(row_id, room_id, event_id, txn_id, more=lane and bool(self._fresh))
            return

    async def _sent(self, row_id: int, room_id: str, event_id: str, txn_id: str, *, more: bool = False) -> None:
        """Record a send; ``more``: further offered rows wait, and the lane records this one with them."""
        self._recently_sent.add(txn_id)  # from now on neither lane sends it again, recorded or not
        self._unrecorded.append((row_id, room_id, event_id, txn_id))
        if not more:
            await self._record_sent()

    async def _record_sent(self) -> None:
        """The sends not yet recorded, together (put back when that fails, for the next one): each row marked sent,
        and an audit record of each send, also of one whose row a purge took meanwhile (it did reach the room).
        On PostgreSQL that is one statement without a transaction around it (``one_statement_sessions``): a
        command committing meanwhile waits for the audit head one round trip at most, not for four."""
        sent, self._unrecorded = self._unrecorded, []
        if not sent:
            return
        try:
            await self._record(sent, self.clock.now())
        except BaseException:
            self._unrecorded[:0] = sent
            raise
        self.metrics.messages_sent.inc(len(sent))

    async def _record(self, sent: list[tuple[int, str, str, str]], now: datetime) -> None:
        if self._alone is not None:
            # Nothing is written when the one statement cannot be all of it: then in a transaction, which reads
            # the head under its lock.
            with contextlib.suppress(NeedsTransaction):
                await self._record_in(self._alone, sent, now)
                return
        await self._record_in(self.sessions, sent, now)

    async def _record_in(self, sessions: SessionFactory, sent: list[tuple[int, str, str, str]], now: datetime) -> None:
        async with sessions() as s, s.begin():
            outgoing.mark_sent(s, [(row_id, txn_id, event_id) for row_id, _, event_id, txn_id in sent], now)
            await self.auditor.record_many(s, [
                {"kind": "bericht.verzonden", "at": now, "details": {"room": room_id, "event": event_id, "txn": txn_id}}
                for _, room_id, event_id, txn_id in sent])

    async def _failed(self, row_id: int, attempts: int, reason: str, permanent: bool) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = await outgoing.get(s, row_id)
            if row is None:
                return
            row.attempts = attempts
            row.claimed_until = None
            row.last_error = reason[:255]
            if permanent and attempts >= MAX_PERMANENT_FAILURES:
                row.status = "dead"
                row.content = None
                await self.auditor.record(
                    s, kind="bericht.mislukt", at=now, details={"room": row.room_id, "txn": row.txn_id,
                                                                 "reason": reason[:120]},
                )
                log.error("message dead", extra={"txn": row.txn_id, "reason": reason[:120]})
            else:
                backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** min(attempts, 8))
                row.next_attempt_at = now + timedelta(seconds=backoff)
                log.warning("send failed, will retry", extra={"txn": row.txn_id, "attempt": attempts,
                                                              "reason": reason[:120]})
        self.metrics.send_errors.inc()


def _due_at(row: Any) -> datetime:
    """A claimed row (another instance sends it) is due again only when its claim runs out."""
    claimed: datetime | None = row.claimed_until
    return max(row.next_attempt_at, claimed) if claimed is not None else row.next_attempt_at  # type: ignore[no-any-return]
