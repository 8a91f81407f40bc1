"""Release requests under the hit-no-hit covenant profile: ZSM asks, the veiligheidshuis's responsible person
releases (or refuses) the advice about one person for one case, for a limited time.

The person is stored only as the auditor's keyed hash: a release is found again by hashing the id typed in
``!check``, never by reading an identifier from this table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class Vrijgave(Base):
    __tablename__ = "vrijgave"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    masked: Mapped[str] = mapped_column(String(32))  # as shown in the room (last digits only)
    zaak: Mapped[str] = mapped_column(String(64), default="")
    reden: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | vrijgegeven | geweigerd
    requested_by: Mapped[str] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    toelichting: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_vrijgave_subject", "subject", "veiligheidshuis", "state"),)
