"""The installed version, for ``zsm-bot --version``, the start-up log line and the build-info metric."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

DISTRIBUTION = "zsm-bot"


def version() -> str:
    """The version of the installed distribution; ``onbekend`` when run from sources that were never installed."""
    try:
        return _version(DISTRIBUTION)
    except PackageNotFoundError:
        return "onbekend"
