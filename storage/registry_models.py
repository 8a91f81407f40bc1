"""The built-in registry: markings of persons by veiligheidshuizen (the role GCOS plays today)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class MarkeringRow(Base):
    __tablename__ = "markering"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bsn: Mapped[str] = mapped_column(String(9))
    skn: Mapped[str | None] = mapped_column(String(16))
    geboortedatum: Mapped[date] = mapped_column(Date)
    veiligheidshuis: Mapped[str] = mapped_column(String(64))
    doelgroep: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    advies: Mapped[str] = mapped_column(Text)
    geadviseerde_afdoening: Mapped[str | None] = mapped_column(String(32))
    advies_datum: Mapped[date] = mapped_column(Date)
    regisseur: Mapped[str] = mapped_column(String(255))
    huishouden: Mapped[bool] = mapped_column(Boolean, default=False)
    bron: Mapped[str] = mapped_column(String(64), default="register")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("bsn", "veiligheidshuis", name="uq_markering_bsn_vh"),
        Index("ix_markering_bsn", "bsn"),
        Index("ix_markering_skn", "skn"),
    )
