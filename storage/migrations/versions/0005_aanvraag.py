"""Advies op aanvraag: requests, steps, on-call roster, mail outbox.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "advies_aanvraag",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("bsn", sa.String(9), nullable=False),
        sa.Column("person_kind", sa.String(8), nullable=False),
        sa.Column("person_value", sa.String(16), nullable=False),
        sa.Column("doelgroep", sa.String(255), nullable=False),
        sa.Column("vraag", sa.Text()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("oncall_room", sa.String(255)),
        sa.Column("term_text", sa.String(64), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("office_hours", sa.Boolean(), nullable=False),
        sa.Column("ping_txn", sa.String(128)),
        sa.Column("acknowledged_by", sa.String(255)),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("answered_by", sa.String(255)),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("answer", sa.Text()),
        sa.Column("closed_at", UTCDateTime()),
    )
    op.create_index("ix_aanvraag_state_deadline", "advies_aanvraag", ["state", "deadline"])
    op.create_table(
        "aanvraag_stap",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("aanvraag_id", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime()),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32)),
    )
    op.create_index("ix_stap_due", "aanvraag_stap", ["done_at", "due_at"])
    op.create_index("ix_stap_aanvraag", "aanvraag_stap", ["aanvraag_id", "seq"], unique=True)
    op.create_table(
        "dienst_rooster",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("veiligheidshuis", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("backup_id", sa.String(255)),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("uid", sa.String(255)),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_rooster_vh_time", "dienst_rooster", ["veiligheidshuis", "starts_at", "ends_at"])
    op.create_table(
        "aanvraag_mail",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("last_error", sa.String(255)),
    )


def downgrade() -> None:
    op.drop_table("aanvraag_mail")
    op.drop_table("dienst_rooster")
    op.drop_table("aanvraag_stap")
    op.drop_table("advies_aanvraag")
