"""Claimed queue rows: ``claimed_until`` on the send queue and the mail outbox.

An instance takes a due row by setting ``claimed_until`` in a fenced transaction (storage.leader); a row claimed by
an instance that then died is released when the next active instance starts, or when the claim runs out.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outgoing_message") as batch:
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_column("claimed_until")
    with op.batch_alter_table("outgoing_message") as batch:
        batch.drop_column("claimed_until")
