"""Decisions (!besluit), referrals (!aanmelden) and the mail outbox.

Persons are stored only as the auditor's keyed hash; the clear identifier lives in a queued mail's body
until the mail is accepted, then the body is cleared.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.lifecycles import BesluitStatus, MailStatus
from storage.models import Base, BigId
from storage.types import UTCDateTime


class BesluitRow(Base):
    __tablename__ = "besluit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(64))
    zaak: Mapped[str] = mapped_column(String(64), default="")
    afdoening: Mapped[str] = mapped_column(String(32))
    reclassering: Mapped[bool] = mapped_column(Boolean, default=False)
    mondeling: Mapped[bool] = mapped_column(Boolean, default=False)
    motivering: Mapped[str | None] = mapped_column(Text)
    advies_verhouding: Mapped[str | None] = mapped_column(String(16))  # domain.afwijking.Verhouding
    status: Mapped[str] = mapped_column(String(16), default=BesluitStatus.ACTIEF.value)  # domain.lifecycles
    decided_by: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    event_id: Mapped[str] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_besluit_subject", "subject", "zaak"),)


class AanmeldingRow(Base):
    __tablename__ = "aanmelding"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(64))
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_aanmelding_subject", "subject"),)


class OutboxMail(Base):
    """One mail to one veiligheidshuis. Body cleared once accepted; Message-ID is deterministic."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # terugkoppeling | correctie | aanmelding | aanvraag
    besluit_id: Mapped[int | None] = mapped_column(BigId)
    subject_hash: Mapped[str] = mapped_column(String(64))
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(255))
    mail_subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # domain.lifecycles.MailStatus: concept (hit-no-hit profile: waits for !outbox bevestig) | pending | sent | dead
    # | vervallen
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.PENDING.value)
    weging: Mapped[str | None] = mapped_column(Text)  # the confirming user's weighing (hit-no-hit profile)
    bevestigd_door: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while one instance hands the mail to the relay (besluit_queries.claim_mails); cleared when done.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)
