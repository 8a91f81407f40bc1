"""Queueing mail inside the caller's transaction: the decision and its mail commit together or not at all."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config.mail import MailSettings
from domain.veiligheidshuizen import Veiligheidshuis
from integrations.mail.compose import Templates, message_id_for, subject_for
from storage.besluit_models import OutboxMail

# A held mail falls due a little after the undo window closes, so an undo at the last second never races a send.
HOLD_MARGIN_S = 5

PREFIX = {"terugkoppeling": "T", "correctie": "C", "aanmelding": "A", "aanvraag": "AV"}
# How the room notice names each kind once the relay accepted it.
LABELS = {"terugkoppeling": "terugkoppeling", "correctie": "correctie", "aanmelding": "aanmelding",
          "aanvraag": "adviesaanvraag"}


def ref_for(source_event: str, vh_key: str, kind: str) -> str:
    digest = hashlib.sha256(f"{source_event}\x00{vh_key}\x00{kind}".encode()).hexdigest()[:8].upper()
    return f"{PREFIX[kind]}-{digest}"


class MailService:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.templates = Templates(settings.templates)

    async def queue(self, session: AsyncSession, *, kind: str, vh: Veiligheidshuis, values: dict[str, Any],
                    room_id: str, event_id: str, subject_hash: str, now: datetime,
                    besluit_id: int | None = None, hold: bool = True, concept: bool = False) -> OutboxMail:
        ref = ref_for(event_id, vh.key, kind)
        notice = self.settings.vertrouwelijkheid_tekst if self.settings.vertrouwelijkheid else ""
        template = "aanmelding" if kind == "aanmelding" else "terugkoppeling"
        text, html = self.templates.render(template, {
            **values, "ref": ref, "vh_naam": vh.naam, "correctie": kind == "correctie", "vertrouwelijkheid": notice,
        })
        delay = self.settings.herroep_seconden + (HOLD_MARGIN_S if self.settings.herroep_seconden else 0) if hold else 0
        row = OutboxMail(
            ref=ref, message_id=message_id_for(ref, self.settings.message_id_domein), kind=kind,
            besluit_id=besluit_id, subject_hash=subject_hash, veiligheidshuis=vh.key, recipient=vh.mailbox,
            mail_subject=subject_for(kind, ref), body_text=text, body_html=html,
            status="concept" if concept else "pending", attempts=0,
            next_attempt_at=now + timedelta(seconds=delay), created_at=now, room_id=room_id, event_id=event_id,
        )
        session.add(row)
        await session.flush()
        return row


    async def queue_text(self, session: AsyncSession, *, kind: str, vh: Veiligheidshuis, subject: str, text: str,
                         room_id: str, event_id: str, subject_hash: str, now: datetime) -> OutboxMail:
        """A plain-text mail composed by its feature (an advice request), sent by the same worker as every other
        mail: the same relay, TLS rules, retries, Message-ID, audit and figures. The confidentiality notice is
        added here, like in the templates."""
        ref = ref_for(event_id, vh.key, kind)
        if self.settings.vertrouwelijkheid:
            text = f"{text}\n\n{self.settings.vertrouwelijkheid_tekst}"
        row = OutboxMail(
            ref=ref, message_id=message_id_for(ref, self.settings.message_id_domein), kind=kind, besluit_id=None,
            subject_hash=subject_hash, veiligheidshuis=vh.key, recipient=vh.mailbox, mail_subject=subject,
            body_text=text, body_html=None, status="pending", attempts=0, next_attempt_at=now, created_at=now,
            room_id=room_id, event_id=event_id,
        )
        session.add(row)
        await session.flush()
        return row


def check_templates(settings: MailSettings) -> list[str]:
    """Render every template once with sample values, so a broken template shows at check-config, not at 03:00."""
    problems = []
    service = MailService(settings)
    sample = {"persoon": "BSN 000000000", "zaak": "", "datum": "01-01-2026 00:00", "afdoening": "voorbeeld",
              "reclassering": False, "motivering": None, "beperkt": False, "gemeente": "voorbeeld",
              "reden": "voorbeeld", "ref": "T-00000000", "vh_naam": "voorbeeld", "correctie": False,
              "vertrouwelijkheid": settings.vertrouwelijkheid_tekst}
    for name in ("terugkoppeling", "aanmelding"):
        try:
            service.templates.render(name, sample)
        except Exception as exc:
            where = settings.templates or "de meegeleverde set"
            problems.append(f"mail.templates: {name} in {where} is niet bruikbaar ({type(exc).__name__}: "
                            f"{str(exc)[:120]})")
    return problems
