"""Known persons who came into ZSM: the rows behind ``!werklijst`` and the feedback coverage of ``!rapport``.

One row per person, veiligheidshuis and arrival: written when ``!check`` or the instroom signal finds a marking.
The person is stored only as the auditor's keyed hash and the masked form the room may see; a decision on the
person is found by that hash in ``besluit``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class Binnenkomst(Base):
    __tablename__ = "binnenkomst"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(64))
    masked: Mapped[str] = mapped_column(String(32))  # as shown in the room (last digits only)
    # what this house may receive (domain.veiligheidshuizen.mail_identifier), only for a house that asked for the
    # shift-start digest ([werklijst] dienststart); None otherwise
    identificatie: Mapped[str | None] = mapped_column(String(32))
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))  # check | instroom
    came_in_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_binnenkomst_subject", "subject", "veiligheidshuis"),
                      Index("ix_binnenkomst_at", "came_in_at"))
