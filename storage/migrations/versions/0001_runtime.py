"""Runtime tables: inbox, outgoing Matrix queue, bot state, audit trail.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("command", sa.String(64)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "outgoing_message",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("txn_id", sa.String(128), nullable=False, unique=True),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("content", sa.JSON()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("event_id", sa.String(255)),
        sa.Column("in_reply_to", sa.String(255)),
        sa.Column("carries_case_data", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(255)),
    )
    op.create_index("ix_outgoing_pending", "outgoing_message", ["status", "next_attempt_at"])
    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("role", sa.String(64)),
        sa.Column("subject", sa.String(64)),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_subject", "audit_log", ["subject"])
    op.create_index("ix_audit_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_kind_at", "audit_log", ["kind", "at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_id", BigId, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "bot_state", "outgoing_message", "inbox"):
        op.drop_table(table)
