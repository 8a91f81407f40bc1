"""``[mail]``: the SMTP relay, TLS, sender, retries and the confidentiality notice of every outgoing mail."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.reader import ConfigReader, resolve_path
from domain.errors import ConfigError

DEFAULT_NOTICE = (
    "VERTROUWELIJK. Dit bericht bevat persoonsgegevens uit een strafzaak, verstrekt door het Openbaar Ministerie "
    "op grond van het regionale convenant. De ontvanger is gebonden aan de geheimhoudingsplicht die op deze "
    "gegevens rust en gebruikt ze alleen voor het doel waarvoor ze zijn verstrekt. Bent u niet de bedoelde "
    "ontvanger, meld dit dan aan de afzender en verwijder het bericht."
)
KEYS = ("enabled", "host", "port", "tls", "onversleuteld_toestaan", "ca_bestand", "username", "password", "afzender",
        "message_id_domein", "max_pogingen", "backoff_seconden", "backoff_max_seconden", "herroep_seconden",
        "timeout_seconden", "vertrouwelijkheid", "vertrouwelijkheid_tekst", "templates")


@dataclass(frozen=True)
class MailSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 587
    tls: str = "starttls"  # starttls | implicit | geen (loopback only)
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    afzender: str = "zsm-bot@localhost"
    message_id_domein: str = "localhost"
    max_pogingen: int = 6
    backoff_seconden: float = 5.0
    backoff_max_seconden: float = 900.0
    herroep_seconden: int = 120
    timeout_seconden: float = 30.0
    vertrouwelijkheid: bool = True
    vertrouwelijkheid_tekst: str = DEFAULT_NOTICE
    templates: Path | None = None  # None: the templates packaged in ``config``


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_mail_settings(section: Mapping[str, Any], base: Path) -> MailSettings:
    """``section`` is the ``[mail]`` table; relative paths are relative to ``base`` (the configuration's folder)."""
    r = ConfigReader(section, "mail").only(KEYS)
    host = r.text("host", "127.0.0.1") or "127.0.0.1"
    tls = r.choice("tls", "starttls", ("starttls", "implicit", "geen"))
    allow_plain = r.flag("onversleuteld_toestaan", False)
    if tls == "geen":
        if not allow_plain:
            raise ConfigError("mail.tls = \"geen\" vraagt ook mail.onversleuteld_toestaan = true (alleen voor tests)")
        if not _loopback(host):
            raise ConfigError(f"mail.tls = \"geen\" mag alleen met een server op loopback, niet {host!r}")
    afzender = r.text("afzender", "zsm-bot@localhost") or "zsm-bot@localhost"
    if "@" not in afzender or any(c in afzender for c in "\r\n<> "):
        raise ConfigError(f"mail.afzender: verwacht een e-mailadres, kreeg {afzender!r}")
    ca = r.text("ca_bestand")
    templates = r.text("templates")
    return MailSettings(
        enabled=r.flag("enabled", False), host=host,
        port=r.integer("port", 465 if tls == "implicit" else 587, minimum=1, maximum=65535), tls=tls,
        ca_file=resolve_path(base, ca) if ca else None,
        username=r.text("username"), password=r.text("password"), afzender=afzender,
        message_id_domein=r.text("message_id_domein", afzender.rpartition("@")[2]) or "localhost",
        max_pogingen=r.integer("max_pogingen", 6, minimum=1, maximum=100),
        backoff_seconden=r.number("backoff_seconden", 5.0),
        backoff_max_seconden=r.number("backoff_max_seconden", 900.0),
        herroep_seconden=r.integer("herroep_seconden", 120, minimum=0, maximum=3600),
        timeout_seconden=r.number("timeout_seconden", 30.0, minimum=0.1),
        vertrouwelijkheid=r.flag("vertrouwelijkheid", True),
        vertrouwelijkheid_tekst=r.text("vertrouwelijkheid_tekst", DEFAULT_NOTICE) or DEFAULT_NOTICE,
        templates=resolve_path(base, templates) if templates else None,
    )
