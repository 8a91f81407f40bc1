"""``[check]``: how ``!check`` and ``!instroom`` look people up (purpose required, identifier types, need to know)."""

from __future__ import annotations

from dataclasses import dataclass

from config.reader import ConfigReader
from domain.errors import ConfigError

IDENTIFIER_TYPES = ("bsn", "skn")
KEYS = ("zaak_verplicht", "identificatie", "details_direct")


@dataclass(frozen=True)
class CheckSettings:
    zaak_verplicht: bool = False
    identificatie: frozenset[str] = frozenset(IDENTIFIER_TYPES)
    # Need to know: the details go to the requester's encrypted direct room; the shared room sees only that an
    # answer was given.
    details_direct: bool = False


def parse_check(r: ConfigReader) -> CheckSettings:
    """``zaak_verplicht`` (bool), ``identificatie`` (allowed identifier types) and ``details_direct`` (bool)."""
    r.only(KEYS)
    kinds = r.texts("identificatie") if "identificatie" in r.data else list(IDENTIFIER_TYPES)
    for k in kinds:
        if k not in IDENTIFIER_TYPES:
            raise ConfigError(f"check.identificatie: onbekend type {k!r}; kies uit {', '.join(IDENTIFIER_TYPES)}")
    if not kinds:
        raise ConfigError("check.identificatie: noem minstens één type (bsn of skn)")
    return CheckSettings(zaak_verplicht=r.flag("zaak_verplicht", False), identificatie=frozenset(kinds),
                         details_direct=r.flag("details_direct", False))
