"""Built-in registry of markings.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "markering",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bsn", sa.String(9), nullable=False),
        sa.Column("skn", sa.String(16)),
        sa.Column("geboortedatum", sa.Date(), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("doelgroep", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("advies", sa.Text(), nullable=False),
        sa.Column("geadviseerde_afdoening", sa.String(32)),
        sa.Column("advies_datum", sa.Date(), nullable=False),
        sa.Column("regisseur", sa.String(255), nullable=False),
        sa.Column("huishouden", sa.Boolean(), nullable=False),
        sa.Column("bron", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("bsn", "veiligheidshuis", name="uq_markering_bsn_vh"),
    )
    op.create_index("ix_markering_bsn", "markering", ["bsn"])
    op.create_index("ix_markering_skn", "markering", ["skn"])


def downgrade() -> None:
    op.drop_table("markering")
