"""The joined members of the bot's rooms (who reads what the bot shows there), and the further persons a message
is about (a sepot 01 redacts an instroom summary that named the person).

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "outgoing_subject",
        sa.Column("txn_id", sa.String(128), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
    )
    op.create_index("ix_outgoing_subject_subject", "outgoing_subject", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_outgoing_subject_subject", table_name="outgoing_subject")
    op.drop_table("outgoing_subject")
    op.drop_table("room_members")
