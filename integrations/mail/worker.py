"""The mail outbox worker: sends due rows over TLS with aiosmtplib, retries with backoff, reports to the room.

It never imports ``commands``; to say something in the room it calls ``notify``, injected by the runtime,
inside the same transaction that changes the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.mail import MailSettings
from domain.clock import Clock
from integrations.drain_loop import DrainLoop
from integrations.mail.compose import build_message
from integrations.mail.outbox import LABELS
from storage.audit import Auditor
from storage.besluit_models import BesluitRow, OutboxMail
from storage.db import SessionFactory
from storage.statistiek_models import MAIL_AFGELEVERD, MAIL_DOOD, MAIL_HERHAALD, Feit, record_facts

log = logging.getLogger(__name__)

# How long acceptances are gathered before they are written in one transaction. A crash inside this window
# means those mails go again with the same Message-ID, which the receiving side recognises.
RECORD_INTERVAL_S = 0.05


@dataclass(frozen=True)
class RoomNotice:
    room_id: str
    in_reply_to: str
    text: str
    purpose: str


Notify = Callable[[AsyncSession, list[RoomNotice]], Awaitable[None]]


class TlsRefused(Exception):
    """The server offered no (working) TLS; never fall back to plaintext."""


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def connect(settings: MailSettings) -> aiosmtplib.SMTP:
    """An open, TLS-protected (unless explicitly allowed plaintext on loopback) and logged-in connection."""
    implicit = settings.tls == "implicit"
    plain = settings.tls == "geen"
    client = aiosmtplib.SMTP(
        hostname=settings.host, port=settings.port, timeout=settings.timeout_seconden,
        use_tls=implicit, start_tls=False, tls_context=None if plain else tls_context(settings),
        validate_certs=not plain,
    )
    await client.connect()
    await client.ehlo()
    if settings.tls == "starttls":
        if not client.supports_extension("starttls"):
            with contextlib.suppress(Exception):
                await client.quit()
            raise TlsRefused("server biedt geen STARTTLS")
        try:
            await client.starttls()
        except (aiosmtplib.SMTPException, ssl.SSLError) as exc:
            client.close()
            raise TlsRefused(f"STARTTLS mislukt ({type(exc).__name__})") from None
    if settings.username and settings.password:
        await client.login(settings.username, settings.password)
    return client


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
    loop_name = "mail"
    error_delay_s = 5.0

    def __init__(self, sessions: SessionFactory, settings: MailSettings, clock: Clock, auditor: Auditor,
                 notify: Notify, on_committed: Callable[[], None] = lambda: None) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.auditor = auditor
        self.notify = notify
        self.on_committed = on_committed
        super().__init__()

    async def _due(self) -> tuple[list[OutboxMail], float]:
        now = self.clock.now()
        async with self.sessions() as s:
            rows = list((await s.execute(
                select(OutboxMail).where(OutboxMail.status == "pending").order_by(OutboxMail.id).limit(500)
            )).scalars().all())
        due = [r for r in rows if r.next_attempt_at <= now]
        later = [(r.next_attempt_at - now).total_seconds() for r in rows if r.next_attempt_at > now]
        return due, (max(0.05, min(later)) if later else 30.0)

    async def drain(self) -> float:
        """Send everything due over one connection. Returns seconds until the next row falls due."""
        async with self._lock:
            while True:
                due, delay = await self._due()
                if not due:
                    return delay
                try:
                    client = await connect(self.settings)
                except TlsRefused as exc:
                    for row in due:
                        await self._failed(row.id, str(exc), fatal=True)
                    continue
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    for row in due:
                        await self._failed(row.id, f"relay niet bereikbaar ({type(exc).__name__})")
                    return await self._next_delay()
                try:
                    broken = await self._send_batch(client, due)
                finally:
                    with contextlib.suppress(Exception):
                        await client.quit()
                if broken:
                    return await self._next_delay()

    async def _next_delay(self) -> float:
        _, delay = await self._due()
        return delay

    async def _send_batch(self, client: aiosmtplib.SMTP, rows: list[OutboxMail]) -> bool:
        """Send in order; acceptances are recorded by a concurrent task so SMTP and database work overlap.

        Each mail is still marked sent only after the relay accepted it; a crash in between means a resend
        with the same Message-ID, which the receiving side recognises.
        """
        async with self.sessions() as s:
            still = set((await s.execute(
                select(OutboxMail.id).where(OutboxMail.id.in_([r.id for r in rows]), OutboxMail.status == "pending")
            )).scalars())
        accepted: asyncio.Queue[int | None] = asyncio.Queue()
        recorder = asyncio.create_task(self._recorder(accepted))
        broken = False
        try:
            for row in rows:
                if row.id not in still or row.body_text is None:
                    continue  # undone, replaced or removed meanwhile
                outcome = await self._transmit(client, row)
                if outcome == "ok":
                    accepted.put_nowait(row.id)
                elif outcome == "broken":
                    broken = True
                    break
        finally:
            accepted.put_nowait(None)
            await recorder
        return broken

    async def _recorder(self, queue: asyncio.Queue[int | None]) -> None:
        done = False
        while not done:
            ids = [await queue.get()]
            if ids[0] is not None:
                await asyncio.sleep(RECORD_INTERVAL_S)  # gather acceptances: one transaction for many mails
            while not queue.empty():
                ids.append(queue.get_nowait())
            done = None in ids
            batch = [i for i in ids if i is not None]
            if batch:
                await self._sent(batch)

    async def _transmit(self, client: aiosmtplib.SMTP, row: OutboxMail) -> str:
        msg = build_message(sender=self.settings.afzender, recipient=row.recipient, subject=row.mail_subject,
                            message_id=row.message_id, text=row.body_text or "", html=row.body_html or "",
                            date=row.created_at)
        try:
            await client.send_message(msg, sender=self.settings.afzender, recipients=[row.recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._failed(row.id, f"ontvanger geweigerd ({type(exc).__name__})")
            return "failed"
        except aiosmtplib.SMTPResponseException as exc:
            await self._failed(row.id, f"relay weigerde ({exc.code})")
            return "broken" if exc.code == 421 else "failed"
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._failed(row.id, f"verbinding verbroken ({type(exc).__name__})")
            return "broken"
        return "ok"

    async def _sent(self, row_ids: list[int]) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            rows = (await s.execute(
                select(OutboxMail.id, OutboxMail.ref, OutboxMail.message_id, OutboxMail.veiligheidshuis,
                       OutboxMail.kind, OutboxMail.room_id, OutboxMail.event_id, OutboxMail.recipient,
                       OutboxMail.attempts, BesluitRow.decided_at)
                .outerjoin(BesluitRow, BesluitRow.id == OutboxMail.besluit_id)
                .where(OutboxMail.id.in_(row_ids), OutboxMail.status == "pending").order_by(OutboxMail.id)
            )).all()
            await s.execute(
                update(OutboxMail).where(OutboxMail.id.in_([r.id for r in rows]))
                .values(status="sent", sent_at=now, attempts=OutboxMail.attempts + 1, body_text=None, body_html=None)
            )
            await self.notify(s, [RoomNotice(
                r.room_id, r.event_id,
                f"{LABELS.get(r.kind, r.kind)} verzonden aan {r.recipient} "
                f"({r.veiligheidshuis}, {r.ref})", f"mail-{r.ref}-verzonden") for r in rows])
            await self.auditor.record(s, kind="mail.verzonden", at=now, details={"mails": [
                {"ref": r.ref, "message_id": r.message_id, "veiligheidshuis": r.veiligheidshuis, "soort": r.kind}
                for r in rows]})
            await record_facts(s, mail_facts(rows, now))
        self.on_committed()

    async def _failed(self, row_id: int, reason: str, *, fatal: bool = False) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = await s.get(OutboxMail, row_id)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_error = reason[:255]
            if fatal or row.attempts >= self.settings.max_pogingen:
                row.status = "dead"
                await record_facts(s, [Feit(MAIL_DOOD, now, row.veiligheidshuis, outcome=row.kind)])
                await self.auditor.record(s, kind="mail.mislukt", at=now, details={
                    "ref": row.ref, "message_id": row.message_id, "reden": reason[:120]})
                await self.notify(s, [RoomNotice(
                    row.room_id, row.event_id,
                    f"Mail {row.ref} aan {row.veiligheidshuis} is NIET verzonden na {row.attempts} poging(en): "
                    f"{reason}. Na herstel: !outbox opnieuw {row.ref}",
                    f"mail-{row.ref}-dood-{row.attempts}")])
                log.error("mail dead", extra={"ref": row.ref, "reason": reason[:120]})
            else:
                backoff = min(self.settings.backoff_max_seconden,
                              self.settings.backoff_seconden * 2 ** (row.attempts - 1))
                row.next_attempt_at = now + timedelta(seconds=backoff)
                log.warning("mail failed, will retry", extra={"ref": row.ref, "attempt": row.attempts,
                                                              "reason": reason[:120]})
        self.on_committed()
