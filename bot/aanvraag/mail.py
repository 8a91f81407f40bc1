"""This feature's own mail outbox sender (minimal; the lead may merge it with the general mail outbox).

Rows in ``aanvraag_mail`` are written in the same transaction as the request; this sends them with aiosmtplib
over TLS (STARTTLS or implicit TLS, from ``[aanvraag] mail_tls``). ``geen`` exists only for a local test relay.
The body is cleared once sent: the mailbox has it, the bot need not.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import select

from domain.aanvraag import AanvraagConfig
from storage.aanvraag_models import AanvraagMail
from storage.audit import Auditor
from storage.db import SessionFactory
from storage.statistiek_models import MAIL_AFGELEVERD, MAIL_DOOD, MAIL_HERHAALD, Feit, record_facts

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


async def send_pending(sessions: SessionFactory, config: AanvraagConfig, auditor: Auditor, now: datetime) -> int:
    if not config.mail_host:
        return 0
    async with sessions() as s:
        rows = (
            await s.execute(
                select(AanvraagMail.id, AanvraagMail.recipient, AanvraagMail.subject, AanvraagMail.body,
                       AanvraagMail.attempts)
                .where(AanvraagMail.status == "pending", AanvraagMail.next_attempt_at <= now)
                .order_by(AanvraagMail.id).limit(20)
            )
        ).all()
        await s.rollback()
    sent = 0
    for row in rows:
        msg = EmailMessage()
        msg["From"] = config.mail_from
        msg["To"] = row.recipient
        msg["Subject"] = row.subject
        msg.set_content(row.body or "")
        error: str | None = None
        try:
            await aiosmtplib.send(
                msg, hostname=config.mail_host, port=config.mail_port, timeout=20,
                use_tls=config.mail_tls == "tls", start_tls=config.mail_tls == "starttls",
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = type(exc).__name__
        async with sessions() as s, s.begin():
            mail = await s.get(AanvraagMail, row.id)
            if mail is None:
                continue
            mail.attempts = row.attempts + 1
            if error is None:
                mail.status = "sent"
                mail.sent_at = now
                mail.body = None
                sent += 1
                await auditor.record(s, kind="mail.verzonden", at=now,
                                     details={"aan": row.recipient, "onderwerp": row.subject})
                await record_facts(s, [Feit(MAIL_AFGELEVERD, now, outcome="aanvraag")]
                                   + ([Feit(MAIL_HERHAALD, now, outcome="aanvraag")] if mail.attempts > 1 else []))
            else:
                mail.last_error = error
                if mail.attempts >= MAX_ATTEMPTS:
                    mail.status = "dead"
                    await record_facts(s, [Feit(MAIL_DOOD, now, outcome="aanvraag")])
                    await auditor.record(s, kind="mail.mislukt", at=now, details={"aan": row.recipient,
                                                                                   "reden": error})
                else:
                    mail.next_attempt_at = now + timedelta(seconds=min(600, 5 * 2 ** mail.attempts))
                log.warning("mail failed", extra={"mail": row.id, "reason": error})
    return sent
