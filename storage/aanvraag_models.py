"""Tables of advies op aanvraag: requests, their scheduled steps and the on-call roster.

Its mail goes through the general mail outbox (``mail_outbox``, kind ``aanvraag``).

The database is the source of truth for every deadline: each step is a row with ``due_at`` and ``done_at``;
a step is claimed by a conditional update (``done_at IS NULL``), so it fires exactly once, also after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class AdviesAanvraag(Base):
    __tablename__ = "advies_aanvraag"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    bsn: Mapped[str] = mapped_column(String(9))
    person_kind: Mapped[str] = mapped_column(String(8))
    person_value: Mapped[str] = mapped_column(String(16))
    doelgroep: Mapped[str] = mapped_column(String(255))
    vraag: Mapped[str | None] = mapped_column(Text)
    zaaktype: Mapped[str | None] = mapped_column(String(32))  # the prioritised case type (aanvraag_zaaktypen)
    feit: Mapped[str | None] = mapped_column(Text)  # the case sketch: the offence in a few words
    voorgenomen: Mapped[str | None] = mapped_column(String(255))  # the intended decision
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))
    oncall_room: Mapped[str | None] = mapped_column(String(255))
    term_text: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    chain: Mapped[dict[str, Any]] = mapped_column(JSON)
    office_hours: Mapped[bool] = mapped_column(Boolean)
    ping_txn: Mapped[str | None] = mapped_column(String(128))
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by: Mapped[str | None] = mapped_column(String(255))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(Text)
    advies_afdoening: Mapped[str | None] = mapped_column(String(32))  # the answer's coded afdoening, or "geen"
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_aanvraag_state_deadline", "state", "deadline"),)


class AanvraagStap(Base):
    """One scheduled step; ``done_at`` set once by whoever claims it; ``late`` when carried out after its time."""

    __tablename__ = "aanvraag_stap"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    aanvraag_id: Mapped[int] = mapped_column(BigId)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_stap_due", "done_at", "due_at"),
        Index("ix_stap_aanvraag", "aanvraag_id", "seq", unique=True),
    )


class DienstRooster(Base):
    """Who is on duty for which veiligheidshuis, from when until when, and the backup."""

    __tablename__ = "dienst_rooster"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(255))
    backup_id: Mapped[str | None] = mapped_column(String(255))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(64), default="commando")
    uid: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_rooster_vh_time", "veiligheidshuis", "starts_at", "ends_at"),)
