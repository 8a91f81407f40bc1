"""Errors shared across layers."""


class ConfigError(Exception):
    """A configuration or reference-data problem, phrased as one line for the operator (Dutch)."""
