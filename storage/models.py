"""Tables of the runtime: the inbox (exactly once), the Matrix send queue, bot state and the audit trail.

Feature tables (registry, decisions, requests) live in their own modules under ``storage/`` and share
``Base`` so one Alembic history covers them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit id for the busy tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class InboxEntry(Base):
    """One row per handled Matrix event: the unique key that makes handling exactly-once."""

    __tablename__ = "inbox"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    command: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # handled | refused | failed | stale | invalid
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # storage.inbox.counted_since: a user's last minute, read when an instance first sees that user.
    __table_args__ = (Index("ix_inbox_sender_received", "sender", "received_at"),)


class OutgoingMessage(Base):
    """The single outbound Matrix queue. Content is cleared once sent: the room has it, we need not."""

    __tablename__ = "outgoing_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(128), unique=True)
    room_id: Mapped[str] = mapped_column(String(255))
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    event_id: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    carries_case_data: Mapped[bool] = mapped_column(default=False)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # Keyed hash of the person a message is about (the command's audited person, or an advice request's person,
    # case data or not), so a sepot 01 can find the bot's messages about that person; cleared once redacted.
    subject: Mapped[str | None] = mapped_column(String(64))
    # The redaction queue: None (not asked) | pending | done | failed. Marked by the purge (retention ended) or by
    # a sepot 01; drained by bot.redaction.Redactor through the transport.
    redaction: Mapped[str | None] = mapped_column(String(16))
    redaction_reason: Mapped[str | None] = mapped_column(String(32))
    redaction_attempts: Mapped[int] = mapped_column(Integer, default=0)
    redaction_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while one instance sends the row (storage.outgoing.claim); cleared when it is sent or failed.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The lane (``storage.outgoing.INTERACTIVE`` or ``BULK``): the send loop serves lane 0 first, each lane in id
    # order.
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")

    __table_args__ = (
        Index("ix_outgoing_pending", "status", "next_attempt_at"),
        Index("ix_outgoing_lane", "status", "priority", "id"),
        Index("ix_outgoing_redaction", "redaction", "redaction_next_at"),
        Index("ix_outgoing_subject", "subject"),
    )


class OutgoingSubject(Base):
    """The further persons a message is about (an instroom summary or signal names several; ``subject`` holds the
    first), by transaction id, so a sepot 01 redacts that message too. Keyed hashes only."""

    __tablename__ = "outgoing_subject"

    txn_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_outgoing_subject_subject", "subject"),)


class BotState(Base):
    """Small durable facts: the trusted sync token, notices already given once."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRecord(Base):
    """Append-only, chained by a keyed MAC (``hash``; an unkeyed SHA-256 for records of before revision 0012), the
    id is the sequence number. ``subject`` is a keyed hash of a person's identifier, never the identifier."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_subject", "subject"),
        Index("ix_audit_actor", "actor"),
        Index("ix_audit_kind_at", "kind", "at"),
    )


class AuditHead(Base):
    """One row holding the chain's tip; locking it serialises appends so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))
    # Records up to checkpoint_id were removed by the purge (retention ``audit``); checkpoint_hash is the hash of
    # the last one removed, so the rest of the chain still verifies from there.
    checkpoint_id: Mapped[int] = mapped_column(BigId, default=0, server_default="0")
    checkpoint_hash: Mapped[str | None] = mapped_column(String(64))
    # The last removed record's time and a MAC over (checkpoint_id, checkpoint_hash, checkpoint_at): a checkpoint
    # nobody without the audit key can forge, and whose age ``audit verify`` holds against the retention.
    checkpoint_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checkpoint_mac: Mapped[str | None] = mapped_column(String(64))
    # First record of the keyed chain; None while records of the unkeyed chain (before 0012) wait to be sealed.
    keyed_from: Mapped[int | None] = mapped_column(BigId)
