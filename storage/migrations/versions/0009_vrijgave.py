"""Release requests of the hit-no-hit covenant profile.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vrijgave",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("masked", sa.String(32), nullable=False),
        sa.Column("zaak", sa.String(64), nullable=False),
        sa.Column("reden", sa.Text()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("toelichting", sa.Text()),
        sa.Column("expires_at", UTCDateTime()),
    )
    op.create_index("ix_vrijgave_subject", "vrijgave", ["subject", "veiligheidshuis", "state"])


def downgrade() -> None:
    op.drop_index("ix_vrijgave_subject", "vrijgave")
    op.drop_table("vrijgave")
