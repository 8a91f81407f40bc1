"""The joined members of the bot's rooms: who reads what the bot shows there.

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("room_members")
