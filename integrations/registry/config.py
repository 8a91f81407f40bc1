"""Builds the registry adapter that answers lookups from the parsed ``[registry]`` section (``config.registry``)."""

from __future__ import annotations

from config.registry import RegistrySettings
from integrations.registry.base import Registry
from integrations.registry.builtin import BuiltinRegistry
from integrations.registry.http import HttpRegistry
from storage.db import SessionFactory


def build_registry(settings: RegistrySettings, sessions: SessionFactory) -> Registry:
    """The http adapter when ``[registry] adapter = "http"``; else the built-in registry, in the shared registry
    database when ``[registry] database_url`` names one, in the bot's own database otherwise."""
    if settings.http is None:
        if settings.database_url:
            return BuiltinRegistry.shared(settings.database_url)
        return BuiltinRegistry(sessions)
    return HttpRegistry(settings.http)
