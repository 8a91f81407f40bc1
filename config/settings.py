"""Configuration: one TOML file, secrets from the environment, validated before anything starts.

A misconfigured bot in a prosecutors' room is worse than a stopped one, so every value is checked
at start and the first problem stops the process with one line naming the key and what it expects.
Secrets (access token, password, audit key) may live only in the environment: ``ZSM_BOT_<SECTION>_<KEY>``
overrides ``[section] key`` of the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID, USER_ID
from domain.roles import ROLES
from domain.zichtbaarheid import DEFAULT_ROLE_FIELDS, parse_role_fields

__all__ = ["ConfigError", "ConfigReader", "Settings", "load_settings", "resolve_config_path"]

DEFAULT_CONFIG_PATH = Path("zsm-bot.toml")
ENV_CONFIG = "ZSM_BOT_CONFIG"
ENV_PREFIX = "ZSM_BOT_"



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


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True)
class AuditSettings:
    # Keyed hash for personal identifiers in the audit trail; never in the file in production.
    key: str = ""


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
    velden: Mapping[str, frozenset[str]] = field(default_factory=lambda: dict(DEFAULT_ROLE_FIELDS))
    # The region of this ZSM location ([zsm] regio): hit-no-hit veiligheidshuizen elsewhere show "known elsewhere".
    regio: str | None = None
    # Reference data ([referentie]); None means the copy packaged in ``config`` (see config.reference).
    veiligheidshuizen_path: Path | None = None
    afdoeningen_path: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

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
    except OSError as exc:
        raise ConfigError(f"configuratiebestand {path} is niet leesbaar ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: geen geldige TOML ({exc})") from None
    _apply_env(data, environ)
    return _build(data, path.resolve().parent, path)


_SECTIONS = ("referentie", "matrix", "database", "http", "logging", "audit", "registry", "mail", "web", "instroom",
             "aanvraag", "rapport", "besluit", "check", "privacy", "zsm")


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in _SECTIONS:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                sect = data.setdefault(section, {})
                if isinstance(sect, dict) and key:
                    sect[key] = _EnvValue(value)
                break


class _EnvValue(str):
    """A string from the environment; typed readers may coerce it."""


class ConfigReader:
    """Reads one section with typed getters; each error names the full key."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            if required:
                raise ConfigError(f"{self._key(key)} ontbreekt: verwacht een tekstwaarde")
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: verwacht tekst, kreeg {type(value).__name__}")
        if required and not value.strip():
            raise ConfigError(f"{self._key(key)} is leeg: verwacht een tekstwaarde")
        return str(value)

    def integer(self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, _EnvValue):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{self._key(key)}: verwacht een geheel getal, kreeg {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)}: verwacht een geheel getal, kreeg {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._key(key)}: verwacht minstens {minimum}, kreeg {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self._key(key)}: verwacht hoogstens {maximum}, kreeg {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.data.get(key, default)
        if isinstance(value, _EnvValue):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{self._key(key)}: verwacht een getal, kreeg {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._key(key)}: verwacht een getal, kreeg {value!r}")
        if value < minimum:
            raise ConfigError(f"{self._key(key)}: verwacht minstens {minimum}, kreeg {value}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, _EnvValue):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "ja", "yes", "on"}:
                return True
            if lowered in {"0", "false", "nee", "no", "off"}:
                return False
            raise ConfigError(f"{self._key(key)}: verwacht true of false, kreeg {value!r}")
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: verwacht true of false, kreeg {value!r}")
        return value

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(key, default)
        assert value is not None
        if value not in options:
            raise ConfigError(f"{self._key(key)}: verwacht een van {', '.join(options)}, kreeg {value!r}")
        return value

    def texts(self, key: str, *, pattern: re.Pattern[str] | None = None, what: str = "tekst") -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise ConfigError(f"{self._key(key)}: verwacht een lijst van {what}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
                raise ConfigError(f"{self._key(key)}[{i}]: verwacht {what}, kreeg {item!r}")
            out.append(item)
        return out

    def section(self, key: str) -> ConfigReader:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self._key(key)}: verwacht een sectie [{self._key(key)}]")
        return ConfigReader(value, self._key(key))


def resolve_path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _sqlite_url(base: Path, url: str) -> str:
    """Relative SQLite paths are relative to the config file, so the bot runs from any directory."""
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(resolve_path(base, url[len(prefix) :]))
    return url


def _build(data: dict[str, Any], base: Path, path: Path) -> Settings:
    root = ConfigReader(data, "")
    m = root.section("matrix")
    homeserver = m.text("homeserver", required=True)
    assert homeserver is not None
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
    d = root.section("database")
    db_url = d.text("url", "sqlite+aiosqlite:///var/zsm-bot.db")
    assert db_url is not None
    if not (db_url.startswith("sqlite+aiosqlite://") or db_url.startswith("postgresql+asyncpg://")):
        raise ConfigError(
            "database.url: verwacht sqlite+aiosqlite:///pad/naar/bestand.db of "
            f"postgresql+asyncpg://gebruiker@host/database, kreeg {_redact_url(db_url)!r}"
        )
    h = root.section("http")
    http = HttpSettings(
        host=h.text("host", "127.0.0.1") or "127.0.0.1",
        port=h.integer("port", 8080, minimum=0, maximum=65535),
        enabled=h.flag("enabled", True),
    )
    lg = root.section("logging")
    logging_settings = LoggingSettings(
        level=lg.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        format=lg.choice("format", "json", ("json", "text")),
    )
    a = root.section("audit")
    audit = AuditSettings(key=a.text("key", "") or "")

    users_raw = root.section("users").data
    users: dict[str, str] = {}
    for uid, role in users_raw.items():
        if not USER_ID.match(uid):
            raise ConfigError(f"users: {uid!r} is geen Matrix-id; verwacht \"@naam:server\" = \"rol\"")
        if not isinstance(role, str) or role not in ROLES:
            raise ConfigError(f"users.\"{uid}\": onbekende rol {role!r}; kies uit {', '.join(sorted(ROLES))}")
        users[uid] = role

    perms_raw = root.section("permissions")
    permissions: dict[str, frozenset[str]] = {}
    velden = parse_role_fields(perms_raw.section("velden").data)
    for command, _roles in perms_raw.data.items():
        if command == "velden":
            continue
        listed = perms_raw.texts(command, what="een rolnaam")
        unknown = [r for r in listed if r not in ROLES]
        if unknown:
            raise ConfigError(
                f"permissions.{command}: onbekende rol {unknown[0]!r}; kies uit {', '.join(sorted(ROLES))}"
            )
        permissions[command] = frozenset(listed)

    regio = root.section("zsm").text("regio") or None

    ref = root.section("referentie")
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
        audit=audit,
        users=users,
        permissions=permissions,
        velden=velden,
        regio=regio,
        raw=data,
    )


def _redact_url(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]+@", r"://\1:***@", url)
