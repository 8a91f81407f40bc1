"""Reference data: the veiligheidshuizen, their central feedback mailbox and the gemeenten each covers.

Recipients of every mail come from here (never from chat text), and ``!aanmelden`` finds the veiligheidshuis
of a gemeente here. Parsed here from the blocks that ``config.reference`` reads (packaged file, or the operator's path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ConfigError, UserError
from domain.identifiers import PersonId
from domain.matrix_ids import ROOM_ID, USER_ID
from domain.suggest import nearest

PROFILES = ("generiek", "hit-no-hit")
IDENTIFICATIE = ("bsn", "skn")  # the identifier types a mail may carry, and a house's default
KNOWN_KEYS = ("key", "naam", "regio", "mailbox", "gemeenten", "profiel", "contact", "verantwoordelijken",
              "vrijgave_ruimte", "identificatie")
EXTRA_PREFIX = "aanvraag_"  # keys read by the advice-request configuration (``config.aanvraag``), checked there
_KEY = re.compile(r"^[a-z0-9][a-z0-9\-]{1,40}$")
_MAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class Veiligheidshuis:
    key: str
    naam: str
    regio: str
    mailbox: str
    gemeenten: tuple[str, ...]
    profiel: str = "generiek"
    # Whom ZSM calls about a person known here; under hit-no-hit the only detail !check shows besides the name.
    contact: str = ""
    # The responsible person(s) who release an advice per case (hit-no-hit), and the room they are pinged in.
    verantwoordelijken: tuple[str, ...] = ()
    vrijgave_ruimte: str | None = None
    # The identifier types this house may receive in a mail (PRIVACY.md: the BSN only where every party may process
    # it). Checked when read: a value the bot cannot read must stop the start, not fall back to sending the BSN.
    identificatie: tuple[str, ...] = IDENTIFICATIE
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # the aanvraag_* keys


def mail_identifier(vh: Veiligheidshuis, person: PersonId, skn: str | None) -> str:
    """How a mail to ``vh`` names the person. PRIVACY.md: the BSN only where every party may process it; each
    veiligheidshuis lists what it may receive (``identificatie = [...]``, default BSN and SKN). Refused (Dutch)
    when it may not receive the typed kind and no SKN is known."""
    allowed = vh.identificatie
    if person.kind in allowed:
        return f"{person.kind.upper()} {person.value}"
    if "skn" in allowed and skn:
        return f"SKN {skn}"
    raise UserError(f"{vh.naam} mag geen {person.kind.upper()} ontvangen en er is geen SKN bekend. Geef het SKN: "
                    "skn:<nummer> in plaats van het BSN.")


class Veiligheidshuizen:
    def __init__(self, items: Iterable[Veiligheidshuis]) -> None:
        self._by_key: dict[str, Veiligheidshuis] = {}
        self._by_gemeente: dict[str, Veiligheidshuis] = {}
        for vh in items:
            if vh.key in self._by_key:
                raise ConfigError(f"veiligheidshuizen: sleutel {vh.key!r} komt twee keer voor")
            self._by_key[vh.key] = vh
            for g in vh.gemeenten:
                norm = _norm(g)
                if norm in self._by_gemeente:
                    other = self._by_gemeente[norm].key
                    raise ConfigError(f"veiligheidshuizen.{vh.key}.gemeenten: {g!r} valt al onder {other!r}")
                self._by_gemeente[norm] = vh

    def get(self, key: str) -> Veiligheidshuis | None:
        return self._by_key.get(key)

    def keys(self) -> list[str]:
        return list(self._by_key)

    def all(self) -> list[Veiligheidshuis]:
        return list(self._by_key.values())

    def for_gemeente(self, gemeente: str) -> Veiligheidshuis | None:
        return self._by_gemeente.get(_norm(gemeente))

    def nearest_gemeenten(self, gemeente: str, limit: int = 3) -> list[str]:
        names = [g for vh in self._by_key.values() for g in vh.gemeenten]
        return nearest(gemeente, names, limit=limit, cutoff=0.6)


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").split())


def parse_veiligheidshuizen(entries: list[dict[str, Any]]) -> Veiligheidshuizen:
    """The ``[[veiligheidshuis]]`` blocks, checked; the file itself is read in ``config``."""
    items = []
    for i, raw in enumerate(entries):
        where = f"veiligheidshuizen[{i}]"
        key = raw.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ConfigError(f"{where}.key: verwacht een korte sleutel (kleine letters, cijfers, -), kreeg {key!r}")
        where = f"veiligheidshuizen.{key}"
        for name in ("naam", "regio", "mailbox"):
            if not isinstance(raw.get(name), str) or not raw[name].strip():
                raise ConfigError(f"{where}.{name} ontbreekt: verwacht tekst")
        if not _MAIL.match(raw["mailbox"]):
            raise ConfigError(f"{where}.mailbox: verwacht een e-mailadres, kreeg {raw['mailbox']!r}")
        gemeenten = raw.get("gemeenten", [])
        if not isinstance(gemeenten, list) or not all(isinstance(g, str) and g.strip() for g in gemeenten):
            raise ConfigError(f"{where}.gemeenten: verwacht een lijst met namen van gemeenten")
        profiel = raw.get("profiel", "generiek")
        if profiel not in PROFILES:
            raise ConfigError(f"{where}.profiel: verwacht {' of '.join(PROFILES)}, kreeg {profiel!r}")
        contact = raw.get("contact", "")
        if not isinstance(contact, str):
            raise ConfigError(f"{where}.contact: verwacht tekst, zoals \"T. de Vries, 030-1234567\"")
        verantwoordelijken = raw.get("verantwoordelijken", [])
        if not isinstance(verantwoordelijken, list) or not all(
                isinstance(u, str) and USER_ID.match(u) for u in verantwoordelijken):
            raise ConfigError(f"{where}.verantwoordelijken: verwacht een lijst met Matrix-id's (\"@naam:server\")")
        ruimte = raw.get("vrijgave_ruimte")
        if ruimte is not None and not (isinstance(ruimte, str) and ROOM_ID.match(ruimte)):
            raise ConfigError(f"{where}.vrijgave_ruimte: verwacht een Matrix-ruimte-id (\"!abc:server\")")
        if profiel == "hit-no-hit" and not (contact.strip() and verantwoordelijken and ruimte):
            raise ConfigError(f"{where}: profiel hit-no-hit vraagt contact, verantwoordelijken en vrijgave_ruimte "
                              "(wie ZSM belt en wie het advies per zaak vrijgeeft)")
        identificatie = raw.get("identificatie", list(IDENTIFICATIE))
        if not (isinstance(identificatie, list) and identificatie
                and all(isinstance(t, str) and t in IDENTIFICATIE for t in identificatie)):
            raise ConfigError(f"{where}.identificatie: verwacht een lijst uit {', '.join(IDENTIFICATIE)}, zoals "
                              f"[\"skn\"], kreeg {identificatie!r}")
        for name in raw:
            if name not in KNOWN_KEYS and not name.startswith(EXTRA_PREFIX):
                near = nearest(name, KNOWN_KEYS, limit=1)
                raise ConfigError(f"{where}.{name}: onbekende sleutel; " + (
                    f"bedoelde u {where}.{near[0]}?" if near else f"bekend zijn {', '.join(KNOWN_KEYS[1:])}"))
        items.append(Veiligheidshuis(
            key=key, naam=raw["naam"].strip(), regio=raw["regio"].strip(), mailbox=raw["mailbox"].strip(),
            gemeenten=tuple(g.strip() for g in gemeenten), profiel=profiel, contact=contact.strip(),
            verantwoordelijken=tuple(verantwoordelijken), vrijgave_ruimte=ruimte,
            identificatie=tuple(dict.fromkeys(identificatie)),
            extra={k: v for k, v in raw.items() if k.startswith(EXTRA_PREFIX)},
        ))
    return Veiligheidshuizen(items)
