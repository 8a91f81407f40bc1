"""Deviation, usable advice requests, no feedback forgotten (issue 14, points 3, 4 and 6).

``besluit.advies_verhouding``: how the decision relates to the current advice (domain.afwijking);
``advies_aanvraag.zaaktype/feit/voorgenomen``: the case sketch of an advice request;
``binnenkomst``: known persons who came in, for ``!werklijst`` and the feedback coverage.

Revision ID: 0014
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("besluit") as b:
        b.add_column(sa.Column("advies_verhouding", sa.String(16)))
    with op.batch_alter_table("advies_aanvraag") as b:
        b.add_column(sa.Column("zaaktype", sa.String(32)))
        b.add_column(sa.Column("feit", sa.Text()))
        b.add_column(sa.Column("voorgenomen", sa.String(255)))
    op.create_table(
        "binnenkomst",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("masked", sa.String(32), nullable=False),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("came_in_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_binnenkomst_subject", "binnenkomst", ["subject", "veiligheidshuis"])
    op.create_index("ix_binnenkomst_at", "binnenkomst", ["came_in_at"])


def downgrade() -> None:
    op.drop_index("ix_binnenkomst_at", "binnenkomst")
    op.drop_index("ix_binnenkomst_subject", "binnenkomst")
    op.drop_table("binnenkomst")
    with op.batch_alter_table("advies_aanvraag") as b:
        b.drop_column("voorgenomen")
        b.drop_column("feit")
        b.drop_column("zaaktype")
    with op.batch_alter_table("besluit") as b:
        b.drop_column("advies_verhouding")
