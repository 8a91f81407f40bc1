"""The registry of markings: one interface, a built-in adapter and an HTTP adapter."""

from integrations.registry.base import Registry, RegistryUnavailable

__all__ = ["Registry", "RegistryUnavailable"]
