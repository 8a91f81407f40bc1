"""``[registry]``: which adapter answers lookups.

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
from typing import TYPE_CHECKING

from domain.errors import ConfigError
from integrations.registry.base import Registry
from integrations.registry.builtin import BuiltinRegistry
from integrations.registry.http import HttpRegistry, HttpRegistryConfig
from storage.db import SessionFactory

if TYPE_CHECKING:
    from config.settings import Settings

ADAPTERS = ("builtin", "http")


def http_config(settings: Settings) -> HttpRegistryConfig | None:
    from config.settings import ConfigReader

    r = ConfigReader(settings.raw.get("registry", {}), "registry")
    if r.choice("adapter", "builtin", ADAPTERS) != "http":
        return None
    url = r.text("url", required=True)
    assert url is not None
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"registry.url: verwacht een URL als https://gcos.example.nl/api, kreeg {url!r}")
    token = r.text("token", "") or ""
    if not token:
        raise ConfigError("registry.token ontbreekt: zet ZSM_BOT_REGISTRY_TOKEN")
    return HttpRegistryConfig(
        base_url=url, token=token,
        timeout_seconds=r.number("timeout_seconds", 2.0, minimum=0.05),
        retries=r.integer("retries", 2, minimum=0, maximum=10),
        backoff_seconds=r.number("backoff_seconds", 0.2, minimum=0.0),
        name=r.text("naam", "GCOS") or "GCOS",
    )


def build_registry(settings: Settings, sessions: SessionFactory) -> Registry:
    cfg = http_config(settings)
    if cfg is None:
        return BuiltinRegistry(sessions)
    return HttpRegistry(cfg)
