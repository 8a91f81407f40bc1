"""Send queue lanes: ``outgoing_message.priority`` (0 interactive command replies, 1 bulk notices and escalations),
so the send loop serves a person waiting for an answer before a backlog of bulk messages.

Revision ID: 0015
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outgoing_message") as batch:
        batch.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1"))
    op.create_index("ix_outgoing_lane", "outgoing_message", ["status", "priority", "id"])


def downgrade() -> None:
    op.drop_index("ix_outgoing_lane", table_name="outgoing_message")
    with op.batch_alter_table("outgoing_message") as batch:
        batch.drop_column("priority")
