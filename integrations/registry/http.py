"""HTTP adapter for a GCOS-like REST service.

``GET {url}/markeringen?bsn=<bsn>`` (or ``?skn=``) with ``Authorization: Bearer <token>`` answers
``{"markeringen": [ {bsn, skn, geboortedatum, veiligheidshuis, doelgroep, status, advies,
geadviseerde_afdoening, advies_datum, regisseur, huishouden}, ... ]}``; 404 means not known.

Timeouts, connection errors and 5xx/429 are retried with exponential backoff; when the attempts run out the
adapter raises ``RegistryUnavailable`` (never a hang: every attempt has a total timeout). Exception messages
never carry the identifier or the answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Any

import aiohttp

from config.registry import RegistryHttpSettings
from domain.advies import Markering
from domain.identifiers import PersonId
from integrations.registry.base import RegistryUnavailable, answered_ahead
from storage.db import Tx

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RegistryBadAnswer(RegistryUnavailable):
    """The service answered with something that is not a valid list of markings."""


def _markering(raw: Any, system: str) -> Markering:
    if not isinstance(raw, dict):
        raise RegistryBadAnswer("marking is not an object")
    try:
        huishouden = raw.get("huishouden")
        return Markering(
            bsn=str(raw["bsn"]), skn=str(raw["skn"]) if raw.get("skn") else None,
            geboortedatum=date.fromisoformat(raw["geboortedatum"]), veiligheidshuis=str(raw["veiligheidshuis"]),
            doelgroep=str(raw["doelgroep"]), status=str(raw["status"]), advies=str(raw["advies"]),
            geadviseerde_afdoening=str(raw["geadviseerde_afdoening"]) if raw.get("geadviseerde_afdoening") else None,
            advies_datum=date.fromisoformat(raw["advies_datum"]), regisseur=str(raw["regisseur"]),
            huishouden=huishouden is True or (isinstance(huishouden, str) and huishouden.lower() == "ja"),
            bron=system,
        )
    except (KeyError, TypeError, ValueError):
        raise RegistryBadAnswer("marking misses a field or has a bad date") from None


class HttpRegistry:
    def __init__(self, config: RegistryHttpSettings) -> None:
        self.config = config
        self.name = f"{config.naam} (extern register)"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
                headers={"Authorization": f"Bearer {self.config.token}", "Accept": "application/json"},
            )
        return self._session

    async def record_advice(self, session: Tx, *, bsn: str, veiligheidshuis: str, advies: str, afdoening: str,
                            datum: date, now: datetime) -> tuple[bool, date | None]:
        """The outside registry belongs to the veiligheidshuizen: the bot reads it and never writes it. The answer
        stays on the advice request (and in the room); the house brings its own registry up to date."""
        return False, None

    async def prepare(self) -> None:
        return None  # nothing of ours to migrate

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    in_command_transaction = False

    async def lookup(self, person: PersonId, *, session: Tx | None = None) -> list[Markering]:
        if (ahead := answered_ahead(session, person)) is not None:
            return ahead
        url = self.config.url.rstrip("/") + "/markeringen"
        params: dict[str, str] = {str(person.kind): person.value}
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                async with self._client().get(url, params=params) as resp:
                    if resp.status == 404:
                        return []
                    if resp.status in RETRY_STATUS:
                        reason = f"HTTP {resp.status}"
                    elif resp.status != 200:
                        log.warning("registry refused", extra={"status": resp.status})
                        raise RegistryUnavailable(f"registry answered HTTP {resp.status}")
                    else:
                        try:
                            body = await resp.json(content_type=None)
                        except ValueError:
                            raise RegistryBadAnswer("registry answer is not JSON") from None
                        items = body.get("markeringen") if isinstance(body, dict) else None
                        if not isinstance(items, list):
                            raise RegistryBadAnswer("registry answer has no list 'markeringen'")
                        found = [_markering(i, self.config.naam) for i in items]
                        return sorted(found, key=lambda m: m.veiligheidshuis)
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = type(exc).__name__
            log.warning("registry attempt failed", extra={"attempt": attempt + 1, "reason": reason})
            if attempt + 1 < attempts:
                await asyncio.sleep(self.config.backoff_seconds * (2**attempt))
        raise RegistryUnavailable(f"registry not reachable after {attempts} attempts ({reason})")
