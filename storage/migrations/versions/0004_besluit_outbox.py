"""Decisions, referrals and the mail outbox.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "besluit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("zaak", sa.String(64), nullable=False),
        sa.Column("afdoening", sa.String(32), nullable=False),
        sa.Column("reclassering", sa.Boolean(), nullable=False),
        sa.Column("mondeling", sa.Boolean(), nullable=False),
        sa.Column("motivering", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_besluit_subject", "besluit", ["subject", "zaak"])
    op.create_table(
        "aanmelding",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_aanmelding_subject", "aanmelding", ["subject"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("message_id", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("besluit_id", BigId),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("mail_subject", sa.String(255), nullable=False),
        sa.Column("body_text", sa.Text()),
        sa.Column("body_html", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("weging", sa.Text()),
        sa.Column("bevestigd_door", sa.String(255)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("last_error", sa.String(255)),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("aanmelding")
    op.drop_table("besluit")
