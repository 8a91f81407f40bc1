"""Anonymous facts for the management figures (no person, no free text).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statistiek_feit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64)),
        sa.Column("minderjarig", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("duration_s", sa.Float()),
        sa.Column("step", sa.String(32)),
        sa.Column("aantal", sa.Integer(), nullable=False),
    )
    op.create_index("ix_statistiek_at_kind", "statistiek_feit", ["at", "kind"])
    op.create_table(
        "statistiek_dag",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("dag", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("minderjarig", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("aantal", sa.Integer(), nullable=False),
        sa.Column("duren", sa.Text()),
    )
    op.create_index("ux_statistiek_dag", "statistiek_dag",
                    ["dag", "kind", "veiligheidshuis", "outcome", "minderjarig", "step"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_statistiek_dag", table_name="statistiek_dag")
    op.drop_table("statistiek_dag")
    op.drop_index("ix_statistiek_at_kind", table_name="statistiek_feit")
    op.drop_table("statistiek_feit")
