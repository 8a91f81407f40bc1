"""``[rapport]`` and ``[rapport.tokens]``: who may open the ``/rapport`` pages, and the session cookie.

Without a configured token the pages are off: the parsed section is then ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from config.reader import ConfigReader
from domain.errors import ConfigError

KEYS = ("token", "tokens", "cookie_secure", "sessie_uren")
TABLES = ("tokens",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class RapportSettings:
    tokens: Mapping[str, str]  # name -> token
    cookie_secure: bool = False
    sessie_uren: int = 8


def parse_rapport(r: ConfigReader) -> RapportSettings | None:
    """``None`` when no token is configured: the page is then off."""
    r.only(KEYS)
    tokens: dict[str, str] = {}
    single = r.text("token", "") or ""
    if single:
        tokens["rapport"] = single
    table = r.section("tokens")
    for name in table.data:
        if not _NAME.match(name):
            raise ConfigError(f"rapport.tokens.{name}: gebruik als naam kleine letters, cijfers en ._- (max 40)")
        tokens[name] = table.text(name, required=True) or ""
    for name, token in tokens.items():
        if len(token) < 16:
            where = "rapport.token" if name == "rapport" and token == single else f"rapport.tokens.{name}"
            raise ConfigError(f"{where}: te kort; gebruik minstens 16 willekeurige tekens")
    if len(set(tokens.values())) != len(tokens):
        raise ConfigError("rapport.tokens: elke coördinator een eigen token (twee namen hebben hetzelfde token)")
    cookie_secure = r.flag("cookie_secure", False)
    sessie_uren = r.integer("sessie_uren", 8, minimum=1, maximum=24 * 7)
    if not tokens:
        return None
    return RapportSettings(tokens=tokens, cookie_secure=cookie_secure, sessie_uren=sessie_uren)
