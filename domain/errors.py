"""Errors shared across layers."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """A configuration or reference-data problem, phrased as one line for the operator (Dutch)."""


class UserError(Exception):
    """Bad input or a refused action: the message is the Dutch answer the user gets, nothing is changed.

    Raised by services as well as by command adapters, so a rule refused deep in a use case still reaches the user
    as one short line. ``audit`` (kind, details) is recorded after the rollback, for refusals that must leave a
    trace (a user acting on something that is not theirs): the command's own records are gone with its
    transaction."""

    def __init__(self, message: str, *, audit: tuple[str, dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.audit = audit
