"""Configuration: one TOML file, secrets from the environment, parsed and validated once before anything starts.

A misconfigured bot in a prosecutors' room is worse than a stopped one, so every value is checked at start and
the first problem stops the process with one line naming the key and what it expects. Every key is known: a key,
section or ``ZSM_BOT_*`` variable the bot does not read is refused with the nearest known one, so a typo never
silently leaves a default in place. Secrets (access token, password, audit key) may live only in the
environment: ``ZSM_BOT_<SECTION>_<KEY>`` overrides ``[section] key`` of the file.

``load_settings`` is the one loader (``zsm-bot run`` and ``zsm-bot check-config`` alike); the result is a frozen
``Settings`` with one typed field per section, parsed by the section modules of this package.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from config import aanvraag, audit, check, instroom, mail, privacy, rapport, registry, werklijst
from config.aanvraag import parse_aanvraag
from config.audit import AuditSettings, parse_audit
from config.check import CheckSettings, parse_check
from config.instroom import InstroomSettings, parse_instroom
from config.mail import MailSettings, parse_mail_settings
from config.permissions import parse_permissions, parse_role_fields, parse_users
from config.privacy import PrivacySettings, parse_privacy
from config.rapport import RapportSettings, parse_rapport
from config.reader import ConfigReader, EnvValue, os_reason, resolve_path, toml_problem, unknown
from config.registry import RegistrySettings, parse_registry
from config.werklijst import WerklijstSettings, parse_werklijst
from domain.aanvraag import AanvraagConfig
from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID, USER_ID
from domain.zichtbaarheid import DEFAULT_ROLE_FIELDS, RolVelden

__all__ = ["ConfigError", "Settings", "database_kind", "load_settings", "redact_url", "resolve_config_path",
           "sqlite_path"]

DEFAULT_CONFIG_PATH = Path("zsm-bot.toml")
ENV_CONFIG = "ZSM_BOT_CONFIG"
ENV_PREFIX = "ZSM_BOT_"

MATRIX_KEYS = ("homeserver", "user_id", "device_id", "device_name", "access_token", "password", "store_path",
               "rooms", "require_encryption", "sync_timeout_ms", "max_command_age_seconds",
               "command_timeout_seconds", "commands_per_minute", "cross_signing", "cross_signing_secret")
DATABASE_KEYS = ("url",)
HTTP_KEYS = ("enabled", "host", "port", "metrics_host", "metrics_port", "trusted_proxies")
LOGGING_KEYS = ("level", "format")
ZSM_KEYS = ("regio",)
REFERENTIE_KEYS = ("veiligheidshuizen", "afdoeningen")


@dataclass(frozen=True)
class Section:
    """The keys of one top-level section; ``None`` for a free-form map (Matrix ids, command names)."""

    keys: tuple[str, ...] | None
    tables: tuple[str, ...] = ()  # keys that are tables of their own: not settable from the environment

    def env_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys or () if k not in self.tables)


SECTIONS: Mapping[str, Section] = {
    "matrix": Section(MATRIX_KEYS),
    "database": Section(DATABASE_KEYS),
    "http": Section(HTTP_KEYS),
    "logging": Section(LOGGING_KEYS),
    "audit": Section(audit.KEYS),
    "users": Section(None),
    "permissions": Section(None),
    "zsm": Section(ZSM_KEYS),
    "referentie": Section(REFERENTIE_KEYS),
    "check": Section(check.KEYS),
    "registry": Section(registry.KEYS),
    "instroom": Section(instroom.KEYS),
    "aanvraag": Section(aanvraag.KEYS, aanvraag.TABLES),
    "rapport": Section(rapport.KEYS, rapport.TABLES),
    "werklijst": Section(werklijst.KEYS),
    "mail": Section(mail.KEYS),
    "privacy": Section(privacy.KEYS, privacy.TABLES),
}
ENV_NAMES: Mapping[str, tuple[str, str]] = {
    f"{ENV_PREFIX}{name}_{key}".upper(): (name, key) for name, spec in SECTIONS.items() for key in spec.env_keys()
}


@dataclass(frozen=True)
class MatrixSettings:
    homeserver: str
    user_id: str
    device_id: str
    store_path: Path
    rooms: tuple[str, ...]
    access_token: str | None = None
    password: str | None = None
    require_encryption: bool = True
    sync_timeout_ms: int = 30_000
    max_command_age_seconds: int = 900
    command_timeout_seconds: float = 30.0
    device_name: str = "ZSM afstemmingsbot"
    commands_per_minute: int = 30
    cross_signing: bool = True
    cross_signing_secret: str | None = None


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    enabled: bool = True
    # A separate listener for /metrics only (None: /metrics is served on the main listener with the rest).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Reverse proxies in front of the listener: a request from one of these is from the address the proxy names
    # in X-Forwarded-For (so the login throttle counts per client, not per proxy). Empty: the peer address counts.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True)
class Settings:
    source: Path
    matrix: MatrixSettings
    database_url: str
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    users: Mapping[str, str] = field(default_factory=dict)
    permissions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Fields of a marking per role ([permissions.velden]); see domain.zichtbaarheid.
    velden: Mapping[str, RolVelden] = field(default_factory=lambda: dict(DEFAULT_ROLE_FIELDS))
    # The region of this ZSM location ([zsm] regio): hit-no-hit veiligheidshuizen elsewhere show "known elsewhere".
    regio: str | None = None
    # Reference data ([referentie]); None means the copy packaged in ``config`` (see config.reference).
    veiligheidshuizen_path: Path | None = None
    afdoeningen_path: Path | None = None
    check: CheckSettings = field(default_factory=CheckSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    # None: POST /api/instroom is off (no token).
    instroom: InstroomSettings | None = None
    # None: the /rapport pages are off (no token).
    rapport: RapportSettings | None = None
    werklijst: WerklijstSettings = field(default_factory=WerklijstSettings)
    # [aanvraag] of this file; the aanvraag_* keys of veiligheidshuizen.toml are added by
    # config.aanvraag.with_veiligheidshuizen once the reference data is loaded.
    aanvraag: AanvraagConfig = field(default_factory=AanvraagConfig)
    mail: MailSettings = field(default_factory=MailSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def role_of(self, user_id: str) -> str | None:
        return self.users.get(user_id)


def resolve_config_path(cli_value: str | None) -> Path:
    """--config wins, then ZSM_BOT_CONFIG, then ./zsm-bot.toml (documented in the README)."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"configuratiebestand {path} bestaat niet; geef --config <pad> of zet {ENV_CONFIG}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"configuratiebestand {path} is een map; geef het bestand: --config "
                          f"{path / DEFAULT_CONFIG_PATH}") from None
    except OSError as exc:
        raise ConfigError(f"configuratiebestand {path} is niet leesbaar ({os_reason(exc)})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuratiebestand {path} is geen geldige TOML ({toml_problem(exc)}); de configuratie "
                          "is een TOML-bestand zoals zsm-bot init het schrijft: [sectie] met regels sleutel = "
                          "\"waarde\"") from None
    _apply_env(data, environ)
    return _build(data, path.resolve().parent, path)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``ZSM_BOT_<SECTION>_<KEY>`` overrides ``[section] key``; a variable that names no known key is refused."""
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        target = ENV_NAMES.get(name)
        if target is None:
            raise unknown("variabele", name, [*ENV_NAMES, ENV_CONFIG])
        section, key = target
        sect = data.setdefault(section, {})
        if isinstance(sect, dict):
            sect[key] = EnvValue(value)


def _known_sections(data: Mapping[str, Any]) -> None:
    for name in data:
        if name not in SECTIONS:
            raise unknown("sectie", name, SECTIONS)


def _networks(section: ConfigReader, key: str) -> tuple[IPv4Network | IPv6Network, ...]:
    out = []
    for i, item in enumerate(section.texts(key, what="een IP-adres of netwerk")):
        try:
            out.append(ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{section.prefix}.{key}[{i}]: geen IP-adres of netwerk: {item!r}; schrijf bijvoorbeeld "
                              "\"10.0.0.5\" of \"10.0.0.0/24\"") from None
    return tuple(out)


def _sqlite_url(base: Path, url: str) -> str:
    """Relative SQLite paths are relative to the config file, so the bot runs from any directory."""
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(resolve_path(base, url[len(prefix) :]))
    return url


def _build(data: dict[str, Any], base: Path, path: Path) -> Settings:
    _known_sections(data)
    root = ConfigReader(data, "")
    m = root.section("matrix").only(MATRIX_KEYS)
    homeserver = m.text("homeserver", required=True)
    assert homeserver is not None
    if re.match(r"^[A-Za-z0-9.\-]+(:\d+)?(/.*)?$", homeserver):
        raise ConfigError(f"matrix.homeserver: verwacht een URL als https://matrix.example.nl, kreeg {homeserver!r} "
                          f"(zonder http:// of https://); schrijf https://{homeserver}")
    if not re.match(r"^https?://[^\s/]+", homeserver):
        raise ConfigError(f"matrix.homeserver: verwacht een URL als https://matrix.example.nl, kreeg {homeserver!r}")
    user_id = m.text("user_id", required=True)
    assert user_id is not None
    if not USER_ID.match(user_id):
        raise ConfigError(f"matrix.user_id: verwacht een Matrix-id als @zsm-bot:example.nl, kreeg {user_id!r}")
    device_id = m.text("device_id", "ZSMBOT")
    assert device_id is not None
    if not re.match(r"^[A-Za-z0-9_\-]{3,64}$", device_id):
        raise ConfigError(f"matrix.device_id: verwacht 3-64 letters, cijfers, _ of -, kreeg {device_id!r}")
    rooms = m.texts("rooms", pattern=ROOM_ID, what="een room-id als !abc:example.nl")
    store = m.text("store_path", "var/matrix-store")
    assert store is not None
    matrix = MatrixSettings(
        homeserver=homeserver.rstrip("/"),
        user_id=user_id,
        device_id=device_id,
        store_path=resolve_path(base, store),
        rooms=tuple(rooms),
        access_token=m.text("access_token") or None,
        password=m.text("password") or None,
        require_encryption=m.flag("require_encryption", True),
        sync_timeout_ms=m.integer("sync_timeout_ms", 30_000, minimum=0, maximum=120_000),
        max_command_age_seconds=m.integer("max_command_age_seconds", 900, minimum=10),
        command_timeout_seconds=m.number("command_timeout_seconds", 30.0, minimum=1.0),
        device_name=m.text("device_name", "ZSM afstemmingsbot") or "ZSM afstemmingsbot",
        commands_per_minute=m.integer("commands_per_minute", 30, minimum=0, maximum=10_000),
        cross_signing=m.flag("cross_signing", True),
        cross_signing_secret=m.text("cross_signing_secret") or None,
    )
    d = root.section("database").only(DATABASE_KEYS)
    db_url = d.text("url", "sqlite+aiosqlite:///var/zsm-bot.db")
    assert db_url is not None
    if not (db_url.startswith("sqlite+aiosqlite://") or db_url.startswith("postgresql+asyncpg://")):
        scheme, sep, rest = db_url.partition("://")
        driver = "sqlite+aiosqlite" if scheme.startswith("sqlite") else (
            "postgresql+asyncpg" if scheme.startswith("postgres") else None)
        if sep and driver is not None:
            raise ConfigError(f"database.url: {scheme}:// wordt niet ondersteund; schrijf "
                              f"{redact_url(f'{driver}://{rest}')}")
        raise ConfigError(
            "database.url: verwacht sqlite+aiosqlite:///pad/naar/bestand.db of "
            f"postgresql+asyncpg://gebruiker@host/database, kreeg {redact_url(db_url)!r}"
        )
    h = root.section("http").only(HTTP_KEYS)
    http = HttpSettings(
        host=h.text("host", "127.0.0.1") or "127.0.0.1",
        port=h.integer("port", 8080, minimum=0, maximum=65535),
        enabled=h.flag("enabled", True),
        metrics_port=h.integer("metrics_port", 0, minimum=0, maximum=65535) if "metrics_port" in h.data else None,
        metrics_host=h.text("metrics_host", "127.0.0.1") or "127.0.0.1",
        trusted_proxies=_networks(h, "trusted_proxies"),
    )
    lg = root.section("logging").only(LOGGING_KEYS)
    logging_settings = LoggingSettings(
        level=lg.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        format=lg.choice("format", "json", ("json", "text")),
    )
    audit_settings = parse_audit(root.section("audit"))

    users = parse_users(root.section("users"))
    perms = root.section("permissions")
    velden = parse_role_fields(perms.section("velden").data)
    permissions = parse_permissions(perms)

    regio = root.section("zsm").only(ZSM_KEYS).text("regio") or None

    ref = root.section("referentie").only(REFERENTIE_KEYS)
    vh_path = ref.text("veiligheidshuizen")
    afd_path = ref.text("afdoeningen")

    return Settings(
        source=path,
        veiligheidshuizen_path=resolve_path(base, vh_path) if vh_path else None,
        afdoeningen_path=resolve_path(base, afd_path) if afd_path else None,
        matrix=matrix,
        database_url=_sqlite_url(base, db_url),
        http=http,
        logging=logging_settings,
        audit=audit_settings,
        users=users,
        permissions=permissions,
        velden=velden,
        regio=regio,
        check=parse_check(root.section("check")),
        registry=parse_registry(root.section("registry")),
        instroom=parse_instroom(root.section("instroom")),
        rapport=parse_rapport(root.section("rapport")),
        werklijst=parse_werklijst(root.section("werklijst")),
        aanvraag=parse_aanvraag(root.section("aanvraag")),
        mail=parse_mail_settings(root.section("mail").data, base),
        privacy=parse_privacy(root.section("privacy")),
    )


def redact_url(url: str) -> str:
    """The database URL as it may be shown and logged: the password replaced by ``***``."""
    return re.sub(r"://([^:@/]+):[^@/]+@", r"://\1:***@", url)


SQLITE_PREFIX = "sqlite+aiosqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (after ``_sqlite_url`` made it absolute); None for PostgreSQL or memory."""
    if not url.startswith(SQLITE_PREFIX) or ":memory:" in url:
        return None
    return Path(url[len(SQLITE_PREFIX):].split("?", 1)[0])


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql``: what the start-up log line and the build-info metric say, never the URL."""
    return "sqlite" if url.startswith("sqlite") else "postgresql"
