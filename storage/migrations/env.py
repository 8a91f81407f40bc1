"""Alembic environment: always runs on the connection that ``storage.migrate`` hands in."""

from __future__ import annotations

from alembic import context

import storage.aanvraag_models
import storage.besluit_models
import storage.registry_models
import storage.room_members
import storage.statistiek_models
import storage.vrijgave_models
import storage.werklijst_models  # noqa: F401  (feature tables register on Base)
from storage.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
