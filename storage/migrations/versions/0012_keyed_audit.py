"""Keyed audit chain: the checkpoint's time and MAC, and where the keyed chain starts.

Existing records keep their unkeyed SHA-256 chain (rewriting them would need the key, which the database never
sees). ``keyed_from`` stays empty when there are such records: the bot's first keyed append then writes a start
record whose MAC covers the last unkeyed hash and the checkpoint of that time (``storage.audit.SEAL_KIND``). On a
database without records the keyed chain starts at record 1.

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("checkpoint_at", UTCDateTime()))
        batch.add_column(sa.Column("checkpoint_mac", sa.String(64)))
        batch.add_column(sa.Column("keyed_from", BigId))
    op.execute("UPDATE audit_head SET keyed_from = 1 WHERE last_id = 0 AND checkpoint_id = 0")


def downgrade() -> None:
    # Records written since carry MACs, which the unkeyed verification of before 0012 reports as changed.
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("keyed_from")
        batch.drop_column("checkpoint_mac")
        batch.drop_column("checkpoint_at")
