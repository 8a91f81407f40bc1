"""``inbox (sender, received_at)``: the rate limit's memory across a takeover reads a user's last minute of
commands (storage.inbox.counted_since) without scanning the inbox.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbox_sender_received", "inbox", ["sender", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_sender_received", table_name="inbox")
