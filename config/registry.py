"""``[registry]``: which adapter answers lookups, and for the ``http`` adapter where and how to reach it.

```toml
[registry]
adapter = "builtin"          # or "http"
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
KEYS = ("adapter", "url", "token", "timeout_seconds", "retries", "backoff_seconds", "naam")


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


def parse_registry(r: ConfigReader) -> RegistrySettings:
    r.only(KEYS)
    adapter = r.choice("adapter", "builtin", ADAPTERS)
    if adapter != "http":
        return RegistrySettings(adapter)
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
