"""The mail outbox use case: queue a mail inside the caller's transaction (the decision and its mail commit
together or not at all), the ``!outbox`` listing and its confirm/retry acts, and the worker that sends due rows
through the relay, retries with backoff, gives up (dead), audits, counts and tells the room.

The relay itself (aiosmtplib, TLS) is ``integrations.mail.relay``; composition is ``integrations.mail.compose``;
the SQL is ``storage.besluit_queries``. The worker never imports ``commands``: to say something in the room it
calls ``notify``, injected by the runtime, inside the same transaction that changes the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from config.mail import MailSettings
from domain.clock import Clock
from domain.errors import UserError
from domain.lifecycles import MAIL_OPEN, MailStatus, may_become, may_have_gone
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuis
from integrations.drain_loop import DrainLoop
from integrations.mail.compose import Templates, build_message, message_id_for, ref_for, subject_for
from integrations.mail.relay import Relay, RelayConnection, RelayUnreachable, SmtpRelay, TlsRefused
from services.base import Caller, Tx
from storage import besluit_queries as q
from storage.audit import Auditor
from storage.besluit_models import OutboxMail
from storage.db import SessionFactory, read_only
from storage.leader import SOLO, Leadership, NotActive
from storage.statistiek_models import MAIL_AFGELEVERD, MAIL_DOOD, MAIL_HERHAALD, Feit, record_facts

log = logging.getLogger(__name__)

# A held mail falls due a little after the undo window closes, so an undo at the last second never races a send.
HOLD_MARGIN_S = 5

# How the room notice names each kind once the relay accepted it.
LABELS = {"terugkoppeling": "terugkoppeling", "correctie": "correctie", "aanmelding": "aanmelding",
          "aanvraag": "adviesaanvraag", "intrekking": "intrekking van de adviesaanvraag"}

# A claimed round of mail stays with its instance this long (plus a little per mail); see MailWorker._claim.
CLAIM_LEASE_S = 60.0
CLAIM_PER_MAIL_S = 2.0
# How long the relay's acceptances are gathered before they are committed together (see MailWorker._recorder):
# at a local relay's pace (some 5 ms a mail) a batch holds about ten, and its bookkeeping (status, notice, audit,
# facts) costs a tenth per mail; at 10 ms it held two or three, and the outbox kept only 0.7 of a bare loop's rate.
RECORD_GATHER_S = 0.05

# ------------------------------------------------------------------------------------------------ queueing


@dataclass(frozen=True)
class Withdrawn:
    """What withdrawing a feature's queued mails did. ``stopped``: mails that never reached the relay and now never
    will; ``gone_to``: the houses whose mail went, or is with the relay at this moment (a round's unexpired claim),
    so the house may have it and must be told it no longer stands."""

    stopped: int
    gone_to: frozenset[str]


def withdraw(mails: Sequence[OutboxMail], now: datetime) -> Withdrawn:
    """Every mail that may still go is cancelled (vervallen, body cleared), one with the relay too, so a retry
    after a failure cannot send it; whether it may have reached its house is judged before, from its state and
    claim (``may_have_gone``). The one rule for a replaced decision, an undo and a cancelled advice request."""
    gone = frozenset(m.veiligheidshuis for m in mails if may_have_gone(m.status, m.claimed_until, now))
    stopped = 0
    for m in mails:
        if may_become(m.status, MailStatus.VERVALLEN):
            if not may_have_gone(m.status, m.claimed_until, now):
                stopped += 1
            m.status = MailStatus.VERVALLEN
            m.body_text = m.body_html = None
    return Withdrawn(stopped, gone)


class MailService:
    """Composes a mail and writes its outbox row in the caller's transaction; the worker sends it later."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.templates = Templates(settings.templates)

    async def queue(self, tx: Tx, *, kind: str, vh: Veiligheidshuis, values: dict[str, Any],
                    room_id: str, event_id: str, subject_hash: str, now: datetime,
                    besluit_id: int | None = None, hold: bool = True, concept: bool = False) -> OutboxMail:
        ref = ref_for(event_id, vh.key, kind)
        notice = self.settings.vertrouwelijkheid_tekst if self.settings.vertrouwelijkheid else ""
        template = "aanmelding" if kind == "aanmelding" else "terugkoppeling"
        text, html = self.templates.render(template, {
            **values, "ref": ref, "vh_naam": vh.naam, "correctie": kind == "correctie", "vertrouwelijkheid": notice,
        })
        delay = self.settings.herroep_seconden + (HOLD_MARGIN_S if self.settings.herroep_seconden else 0) if hold else 0
        return await q.add_mail(tx, OutboxMail(
            ref=ref, message_id=message_id_for(ref, self.settings.message_id_domein), kind=kind,
            besluit_id=besluit_id, subject_hash=subject_hash, veiligheidshuis=vh.key, recipient=vh.mailbox,
            mail_subject=subject_for(kind, ref), body_text=text, body_html=html,
            status=MailStatus.CONCEPT if concept else MailStatus.PENDING, attempts=0,
            next_attempt_at=now + timedelta(seconds=delay), created_at=now, room_id=room_id, event_id=event_id,
        ))

    async def queue_text(self, tx: Tx, *, kind: str, vh: Veiligheidshuis, subject: str, text: str,
                         room_id: str, event_id: str, subject_hash: str, now: datetime) -> OutboxMail:
        """A plain-text mail composed by its feature (an advice request), sent by the same worker as every other
        mail: the same relay, TLS rules, retries, Message-ID, audit and figures. The confidentiality notice is
        added here, like in the templates."""
        ref = ref_for(event_id, vh.key, kind)
        if self.settings.vertrouwelijkheid:
            text = f"{text}\n\n{self.settings.vertrouwelijkheid_tekst}"
        return await q.add_mail(tx, OutboxMail(
            ref=ref, message_id=message_id_for(ref, self.settings.message_id_domein), kind=kind, besluit_id=None,
            subject_hash=subject_hash, veiligheidshuis=vh.key, recipient=vh.mailbox, mail_subject=subject,
            body_text=text, body_html=None, status=MailStatus.PENDING, attempts=0, next_attempt_at=now,
            created_at=now, room_id=room_id, event_id=event_id,
        ))

    async def withdraw_queued(self, tx: Tx, *, kind: str, vh_key: str, event_id: str, now: datetime) -> Withdrawn:
        """The mail of ``kind`` that the command ``event_id`` queued for the house, withdrawn (``withdraw``);
        nothing stopped and nothing gone when it queued none (no mailbox, or mail not configured then)."""
        mail = await q.mail_by_ref(tx, ref_for(event_id, vh_key, kind))
        return withdraw([mail] if mail is not None else [], now)

# ------------------------------------------------------------------------------------------------ !outbox


@dataclass(frozen=True)
class OpenMail:
    ref: str
    kind: str
    veiligheidshuis: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime


class OutboxService:
    """What mail waits, fails or is dead; a mandated user confirms a concept or puts a dead mail back."""

    def __init__(self, auditor: Auditor) -> None:
        self.auditor = auditor

    async def open_mails(self, tx: Tx) -> list[OpenMail]:
        return [OpenMail(r.ref, r.kind, r.veiligheidshuis, r.status, r.attempts, r.last_error, r.next_attempt_at)
                for r in await q.open_mails(tx, MAIL_OPEN)]

    async def _find(self, tx: Tx, ref: str, status: MailStatus) -> OutboxMail:
        row = await q.mail_by_ref(tx, ref)
        if row is None:
            near = nearest(ref, await q.refs_with_status(tx, status))
            hint = f" Bedoelde u: {', '.join(near)}?" if near else " Zie !outbox."
            raise UserError(f"Geen mail met referentie '{ref[:20]}'.{hint}")
        return row

    async def confirm(self, tx: Tx, act: Caller, ref: str, weging: str) -> str:
        """Strict (hit-no-hit) profile: the drafted terugkoppeling goes, with the weighing recorded. Returns the ref."""
        if not weging:
            raise UserError("Leg de afweging vast: !outbox bevestig <ref> weging: <waarom deze terugkoppeling nodig "
                            "is>")
        row = await self._find(tx, ref, MailStatus.CONCEPT)
        if row.status != MailStatus.CONCEPT:
            raise UserError(f"Mail {row.ref} is geen concept (status: {row.status}); er valt niets te bevestigen.")
        row.status = MailStatus.PENDING
        row.weging = weging[:2000]
        row.bevestigd_door = act.sender
        row.next_attempt_at = act.now
        await act.audit("mail.bevestigd", ref=row.ref)
        return row.ref

    async def retry(self, tx: Tx, act: Caller, ref: str) -> str:
        """A dead mail back in the queue, attempts from zero. Returns the ref."""
        row = await self._find(tx, ref, MailStatus.DEAD)
        if row.status != MailStatus.DEAD:
            raise UserError(f"Mail {row.ref} is niet dood (status: {row.status}); alleen dode mail kan opnieuw.")
        row.status = MailStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = act.now
        await act.audit("mail.opnieuw", ref=row.ref)
        return row.ref

# ------------------------------------------------------------------------------------------------ the worker


@dataclass(frozen=True)
class RoomNotice:
    room_id: str
    in_reply_to: str
    text: str
    purpose: str
    ref: str = ""  # the mail's reference: what the room reads when the text names a house not all may see

    def notice(self, asker: str | None) -> str:
        """The room's share when not every reader may see where the person is known (``services.publiek``)."""
        if asker is None:
            return (f"Melding over mail {self.ref}: niet elk lid van deze room mag die zien; de KPC ziet hem met "
                    "!outbox.")
        return f"Melding over mail {self.ref} staat in het directe bericht van de bot aan {asker}."


Notify = Callable[[Tx, list[RoomNotice]], Awaitable[None]]


def mail_facts(rows: Any, now: datetime) -> list[Feit]:
    """Accepted mails for the figures: kind as outcome, time since the decision for feedback, and a second fact
    for each mail that needed more than one attempt."""
    facts: list[Feit] = []
    for r in rows:
        since = (now - r.decided_at).total_seconds() if r.decided_at is not None else None
        facts.append(Feit(MAIL_AFGELEVERD, now, r.veiligheidshuis, outcome=r.kind, duration_s=since))
        if r.attempts >= 1:  # attempts before this, successful, one
            facts.append(Feit(MAIL_HERHAALD, now, r.veiligheidshuis, outcome=r.kind))
    return facts


class MailWorker(DrainLoop):
    """Sends due rows in queue order over one relay connection per round; each change in its own transaction."""

    loop_name = "mail"
    error_delay_s = 5.0

    def __init__(self, sessions: SessionFactory, settings: MailSettings, clock: Clock, auditor: Auditor,
                 notify: Notify, on_committed: Callable[[], None] = lambda: None,
                 relay: Relay | None = None, leader: Leadership = SOLO) -> None:
        self.sessions = sessions
        self.leader = leader
        self.settings = settings
        self.clock = clock
        self.auditor = auditor
        self.notify = notify
        self.on_committed = on_committed
        self.relay: Relay = relay if relay is not None else SmtpRelay(settings)
        super().__init__()

    async def _due(self) -> tuple[list[OutboxMail], float]:
        now = self.clock.now()
        async with self.sessions() as s:  # not read_only: its rollback would expire the rows used after it
            rows = await q.pending_mails(s)
        # A mail claimed by another instance is due again only when its claim runs out.
        due_at = {r.id: max(r.next_attempt_at, r.claimed_until or r.next_attempt_at) for r in rows}
        due = [r for r in rows if due_at[r.id] <= now]
        later = [(due_at[r.id] - now).total_seconds() for r in rows if due_at[r.id] > now]
        return due, (max(0.05, min(later)) if later else 30.0)

    async def drain(self) -> float:
        """Send everything due over one connection. Returns seconds until the next row falls due."""
        async with self._lock:
            while True:
                if not self.leader.active:
                    return 30.0
                due, delay = await self._due()
                if not due:
                    return delay
                try:
                    due = await self._claim(due)
                except NotActive:
                    return 30.0
                if not due:
                    continue
                try:
                    conn = await self.relay.open()
                except TlsRefused as exc:
                    for row in due:
                        await self._failed(row.id, str(exc), fatal=True)
                    continue
                except RelayUnreachable as exc:
                    for row in due:
                        await self._failed(row.id, str(exc))
                    return await self._next_delay()
                try:
                    broken = await self._send_batch(conn, due)
                finally:
                    await conn.close()
                if broken:
                    return await self._next_delay()

    async def _claim(self, due: list[OutboxMail]) -> list[OutboxMail]:
        """This round's mails, taken for this instance and fenced in one transaction (see storage.leader): two
        instances never hand the same mail to the relay, even in a moment when both believe they are active. The
        lease outlasts a round of this size; a mail whose sender died goes again, with its own Message-ID, after
        it ends."""
        now = self.clock.now()
        lease = timedelta(seconds=CLAIM_LEASE_S + CLAIM_PER_MAIL_S * len(due))
        async with self.sessions() as s, s.begin():
            taken = await q.claim_mails(s, [r.id for r in due], now, lease)
            await self.leader.fence(s)
        return [r for r in due if r.id in taken]

    async def _next_delay(self) -> float:
        _, delay = await self._due()
        return delay

    async def _send_batch(self, conn: RelayConnection, rows: list[OutboxMail]) -> bool:
        """Send in order; acceptances are recorded by a concurrent task so SMTP and database work overlap.

        Each mail is still marked sent only after the relay accepted it; a crash in between means a resend
        with the same Message-ID, which the receiving side recognises.
        """
        async with read_only(self.sessions) as s:
            still = await q.still_pending(s, [r.id for r in rows])
        accepted: asyncio.Queue[int | None] = asyncio.Queue()
        finished = asyncio.Event()
        recorder = asyncio.create_task(self._recorder(accepted, finished, {r.id: r for r in rows}))
        broken = False
        try:
            for row in rows:
                if row.id not in still or row.body_text is None:
                    continue  # undone, replaced or removed meanwhile
                outcome = await self._transmit(conn, row)
                if outcome == "ok":
                    accepted.put_nowait(row.id)
                elif outcome == "broken":
                    broken = True
                    break
        finally:
            accepted.put_nowait(None)
            finished.set()
            await recorder
        return broken

    async def _recorder(self, queue: asyncio.Queue[int | None], finished: asyncio.Event,
                        of_round: dict[int, OutboxMail]) -> None:
        done = False
        while not done:
            # Acceptances are gathered for at most RECORD_GATHER_S, then committed together (and those arriving
            # during a commit share the next one): a crash in that window sends those mails again with the same
            # Message-ID, so it is kept short; without any gathering a fast relay costs a transaction per mail.
            # The round's last mail ends the window at once: nothing more comes to wait for.
            ids = [await queue.get()]
            if ids[0] is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECORD_GATHER_S):
                        await finished.wait()
            while not queue.empty():
                ids.append(queue.get_nowait())
            done = None in ids
            batch = [i for i in ids if i is not None]
            if batch:
                await self._sent(batch, of_round)

    async def _transmit(self, conn: RelayConnection, row: OutboxMail) -> str:
        msg = build_message(sender=self.settings.afzender, recipient=row.recipient, subject=row.mail_subject,
                            message_id=row.message_id, text=row.body_text or "", html=row.body_html or "",
                            date=row.created_at)
        delivery = await conn.send(msg, sender=self.settings.afzender, recipient=row.recipient)
        if delivery.outcome != "ok":
            await self._failed(row.id, delivery.reason)
        return delivery.outcome

    async def _sent(self, row_ids: Sequence[int], of_round: dict[int, OutboxMail]) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            rows = await q.mark_sent(s, row_ids, now)
            # A mail whose row went while the relay had it (a sepot 01 removes every mail about the person) was sent
            # all the same: its record is written from what this round knows of it, as every send has one.
            recorded = {r.id for r in rows}
            left = [i for i in row_ids if i not in recorded]
            gone = [of_round[i] for i in sorted(set(left) - await q.mails_present(s, left))] if left else []
            await self.notify(s, [RoomNotice(
                r.room_id, r.event_id,
                f"{LABELS.get(r.kind, r.kind)} verzonden aan {r.recipient} "
                f"({r.veiligheidshuis}, {r.ref})", f"mail-{r.ref}-verzonden", r.ref) for r in rows])
            # One record per mail, written together (one insert): an auditor finds each mail by its own record.
            def record(m: Any, **more: str) -> dict[str, Any]:
                return {"at": now, "kind": "mail.verzonden", "details": {
                    "ref": m.ref, "message_id": m.message_id, "veiligheidshuis": m.veiligheidshuis, "soort": m.kind,
                    **more}}

            await self.auditor.record_many(s, [record(r) for r in rows] + [record(m, rij="verwijderd") for m in gone])
            await record_facts(s, mail_facts(rows, now))
        self.on_committed()

    async def _failed(self, row_id: int, reason: str, *, fatal: bool = False) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = await q.mail_by_id(s, row_id)
            if row is None or row.status != MailStatus.PENDING:
                return
            row.attempts += 1
            row.claimed_until = None
            row.last_error = reason[:255]
            if fatal or row.attempts >= self.settings.max_pogingen:
                row.status = MailStatus.DEAD
                await record_facts(s, [Feit(MAIL_DOOD, now, row.veiligheidshuis, outcome=row.kind)])
                await self.auditor.record(s, kind="mail.mislukt", at=now, details={
                    "ref": row.ref, "message_id": row.message_id, "reden": reason[:120]})
                await self.notify(s, [RoomNotice(
                    row.room_id, row.event_id,
                    f"Mail {row.ref} aan {row.veiligheidshuis} is NIET verzonden na {row.attempts} poging(en): "
                    f"{reason}. Na herstel: !outbox opnieuw {row.ref}",
                    f"mail-{row.ref}-dood-{row.attempts}", row.ref)])
                log.error("mail dead", extra={"ref": row.ref, "reason": reason[:120]})
            else:
                backoff = min(self.settings.backoff_max_seconden,
                              self.settings.backoff_seconden * 2 ** (row.attempts - 1))
                row.next_attempt_at = now + timedelta(seconds=backoff)
                log.warning("mail failed, will retry", extra={"ref": row.ref, "attempt": row.attempts,
                                                              "reason": reason[:120]})
        self.on_committed()
