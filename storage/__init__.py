"""Persistence: SQLAlchemy 2 async models, the engine, Alembic migrations and the audit trail."""
