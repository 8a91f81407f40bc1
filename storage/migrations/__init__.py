"""Alembic migrations of the bot's schema, shipped as package data and run by ``storage.migrate``."""
