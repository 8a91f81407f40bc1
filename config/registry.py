"""``[registry]``: which adapter answers lookups, and for the ``http`` adapter where and how to reach it.

```toml
[registry]
adapter = "builtin"          # or "http"
# for adapter = "builtin": the national registry's own database, shared by every ZSM location; empty = the bot's
# own database ([database] url). Set ZSM_BOT_REGISTRY_DATABASE_URL when it holds a password.
database_url = "postgresql+asyncpg://zsm_register@register.example.nl/zsm_register"
# for adapter = "http":
url = "https://gcos.example.nl/api"
token = ""                   # set ZSM_BOT_REGISTRY_TOKEN
timeout_seconds = 2.0
retries = 2
backoff_seconds = 0.2
naam = "GCOS"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.reader import ConfigReader
from domain.errors import ConfigError

ADAPTERS = ("builtin", "http")
KEYS = ("adapter", "database_url", "url", "token", "timeout_seconds", "retries", "backoff_seconds", "naam")


@dataclass(frozen=True)
class RegistryHttpSettings:
    url: str
    token: str
    timeout_seconds: float = 2.0
    retries: int = 2
    backoff_seconds: float = 0.2
    naam: str = "GCOS"


@dataclass(frozen=True)
class RegistrySettings:
    adapter: str = "builtin"
    http: RegistryHttpSettings | None = None  # set when adapter = "http"
    # The built-in registry in a database of its own, shared by the ZSM locations (docs/deployment.md,
    # "Several ZSM locations"); None: the markings live in the bot's own database.
    database_url: str | None = None

    def builtin_url(self, own_database_url: str) -> str:
        """Where the built-in registry's markings live: the shared registry database, else the bot's own."""
        return self.database_url or own_database_url


def parse_registry(r: ConfigReader) -> RegistrySettings:
    r.only(KEYS)
    adapter = r.choice("adapter", "builtin", ADAPTERS)
    database_url = r.text("database_url", "") or None
    if adapter != "http":
        if database_url is not None and not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", database_url):
            raise ConfigError("registry.database_url: verwacht postgresql+asyncpg://... of sqlite+aiosqlite:///..., "
                              "of laat het leeg voor de eigen database")
        if database_url is not None and database_url.startswith("sqlite") and not database_url.startswith(
                "sqlite+aiosqlite:////"):
            raise ConfigError("registry.database_url: geef bij SQLite een absoluut pad, zoals "
                              "sqlite+aiosqlite:////var/lib/zsm-register/register.db")
        return RegistrySettings(adapter, database_url=database_url)
    if database_url is not None:
        raise ConfigError('registry.database_url hoort bij adapter = "builtin"; laat het weg bij adapter = "http"')
    url = r.text("url", required=True)
    assert url is not None
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"registry.url: verwacht een URL als https://gcos.example.nl/api, kreeg {url!r}")
    token = r.text("token", "") or ""
    if not token:
        raise ConfigError("registry.token ontbreekt: zet ZSM_BOT_REGISTRY_TOKEN")
    return RegistrySettings(adapter, RegistryHttpSettings(
        url=url, token=token,
        timeout_seconds=r.number("timeout_seconds", 2.0, minimum=0.05),
        retries=r.integer("retries", 2, minimum=0, maximum=10),
        backoff_seconds=r.number("backoff_seconds", 0.2, minimum=0.0),
        naam=r.text("naam", "GCOS") or "GCOS",
    ))
