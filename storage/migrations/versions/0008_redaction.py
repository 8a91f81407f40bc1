"""Redaction queue on the bot's own messages (subject hash and redaction state on outgoing_message); the audit
chain's checkpoint for purged records.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outgoing_message") as batch:
        batch.add_column(sa.Column("subject", sa.String(64)))
        batch.add_column(sa.Column("redaction", sa.String(16)))
        batch.add_column(sa.Column("redaction_reason", sa.String(32)))
        batch.add_column(sa.Column("redaction_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("redaction_next_at", UTCDateTime()))
        batch.add_column(sa.Column("redacted_at", UTCDateTime()))
    op.create_index("ix_outgoing_redaction", "outgoing_message", ["redaction", "redaction_next_at"])
    op.create_index("ix_outgoing_subject", "outgoing_message", ["subject"])
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("checkpoint_id", BigId, nullable=False, server_default="0"))
        batch.add_column(sa.Column("checkpoint_hash", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("checkpoint_hash")
        batch.drop_column("checkpoint_id")
    op.drop_index("ix_outgoing_subject", table_name="outgoing_message")
    op.drop_index("ix_outgoing_redaction", table_name="outgoing_message")
    with op.batch_alter_table("outgoing_message") as batch:
        for name in ("redacted_at", "redaction_next_at", "redaction_attempts", "redaction_reason", "redaction",
                     "subject"):
            batch.drop_column(name)
