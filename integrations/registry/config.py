"""Builds the registry adapter that answers lookups from the parsed ``[registry]`` section (``config.registry``)."""

from __future__ import annotations

from config.registry import RegistrySettings
from integrations.registry.base import Registry
from integrations.registry.builtin import BuiltinRegistry
from integrations.registry.http import HttpRegistry, HttpRegistryConfig
from storage.db import SessionFactory


def http_config(settings: RegistrySettings) -> HttpRegistryConfig | None:
    """The http adapter's connection settings, or None for the builtin adapter."""
    cfg = settings.http
    if cfg is None:
        return None
    return HttpRegistryConfig(base_url=cfg.url, token=cfg.token, timeout_seconds=cfg.timeout_seconds,
                              retries=cfg.retries, backoff_seconds=cfg.backoff_seconds, name=cfg.naam)


def build_registry(settings: RegistrySettings, sessions: SessionFactory) -> Registry:
    cfg = http_config(settings)
    if cfg is None:
        return BuiltinRegistry(sessions)
    return HttpRegistry(cfg)
