"""The coded afdoening of an ``!advies`` answer kept on its advice request (``advies_aanvraag.advies_afdoening``):
for a suspect no house had marked there is no marking to carry it, and the deviation rule of ``!besluit`` must
still see the advice. Removed with the request (sepot 01, retention).

And ``binnenkomst.identificatie``: the identifier a veiligheidshuis that asked for the shift-start digest may
receive (``[werklijst] dienststart``), kept only for those houses, removed with the arrival.

Revision ID: 0017
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("advies_aanvraag") as batch:
        batch.add_column(sa.Column("advies_afdoening", sa.String(32), nullable=True))
    with op.batch_alter_table("binnenkomst") as batch:
        batch.add_column(sa.Column("identificatie", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("binnenkomst") as batch:
        batch.drop_column("identificatie")
    with op.batch_alter_table("advies_aanvraag") as batch:
        batch.drop_column("advies_afdoening")
