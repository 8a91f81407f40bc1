"""One Dutch line for every way a command can fail, naming the cause: the database (URL without password), the path
or the host, and what to do.

An operator who reads ``OperationalError`` cannot act on it; one who reads "database-bestand /srv/zsm/var/bot.db is
alleen-lezen" can. The line is built from the exception chain (the driver's error under SQLAlchemy's, the socket
error under the driver's), never from the SQL statement or its parameters, so it carries no personal data and may
be logged as well as printed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

from bot.coldstart import causes
from config.reader import os_reason
from config.settings import ConfigError, Settings, redact_url, sqlite_path


def prepare_database_path(settings: Settings, *, create: bool = True) -> Path | None:
    """Create the folder of a SQLite file, or say in one line which path the bot cannot use (every command).

    ``create`` False (check-config, which writes nothing): the same checks, and the missing folder is returned, for
    the line that says what ``run`` would create."""
    path = sqlite_path(settings.database_url)
    if path is None:
        return None
    folder = path.parent
    if not create and not folder.exists():
        problem = creatable(folder)
        if problem:
            raise ConfigError(f"database.url: map {folder} kan niet worden aangemaakt ({problem}); kies een pad "
                              "waar de bot mag schrijven")
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"database.url: {_first_file(folder)} is een bestand, geen map; kies in database.url een "
                          "pad in een map") from None
    except OSError as exc:
        raise ConfigError(f"database.url: map {folder} kan niet worden aangemaakt ({os_reason(exc)}); kies een pad "
                          "waar de bot mag schrijven") from None
    if not folder.is_dir():
        raise ConfigError(f"database.url: {folder} is geen map; kies in database.url een pad in een map")
    if path.exists() and _read_only(path):
        raise ConfigError(f"database.url: database-bestand {path} is alleen-lezen; geef de gebruiker van de bot "
                          "schrijfrechten (chmod u+w) of kies een ander pad")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"database.url: de bot mag niet schrijven in map {folder}; geef schrijfrechten of kies "
                          "een ander pad")
    return None


def creatable(folder: Path) -> str | None:
    """Why the bot could not create ``folder`` or write in it, found without creating anything: a file in the way
    or a folder it may not write in; None when ``mkdir -p`` and writing there would work."""
    for parent in [folder, *folder.parents]:
        if not parent.exists():
            continue
        if not parent.is_dir():
            return f"{parent} is een bestand, geen map"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"geen schrijfrechten in {parent}"
        return None
    return None


def _first_file(folder: Path) -> Path:
    """The first part of ``folder`` that exists as a file (what blocks creating the folder)."""
    for parent in reversed([folder, *folder.parents]):
        if parent.exists() and not parent.is_dir():
            return parent
    return folder


def _read_only(path: Path) -> bool:
    """Not writable for this user, or writable for nobody: an operator who removed every write bit meant it, even
    when the bot runs as root (which the kernel would let write)."""
    mode = path.stat().st_mode
    return not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def _is_database_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite", "alembic"))


def _is_http_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("aiohttp", "nio"))


def explain(exc: BaseException, settings: Settings | None) -> str:
    """The one line for ``exc``: what failed, where, and what to do; the exception class only as a last resort."""
    chain = list(causes(exc))
    database = any(_is_database_error(e) for e in chain)
    http = any(_is_http_error(e) for e in chain)
    url = settings.database_url if settings is not None else ""
    shown = redact_url(url)
    if settings is not None and not http and (database or _socket_error(chain)):
        line = _database_line(chain, settings, shown)
        if line:
            return line
    if settings is not None and http:
        homeserver = settings.matrix.homeserver
        return (f"homeserver {homeserver} is niet bereikbaar ({_os_reason(chain) or type(chain[-1]).__name__}); "
                "controleer matrix.homeserver en of de homeserver draait")
    for e in chain:
        if isinstance(e, OSError) and e.filename:
            return f"{e.filename}: {os_reason(e)}; controleer het pad en de rechten"
    return f"onverwachte fout ({type(exc).__name__}); zie het log"


def _socket_error(chain: list[BaseException]) -> bool:
    return any(isinstance(e, ConnectionError | socket.gaierror | TimeoutError) for e in chain)


def _os_reason(chain: list[BaseException]) -> str | None:
    for e in chain:
        if isinstance(e, socket.gaierror):
            return "host onbekend"
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "verbinding geweigerd"
        if isinstance(e, TimeoutError):
            return "geen antwoord binnen de tijd"
        if isinstance(e, OSError) and e.strerror:
            return os_reason(e)
    return None


def _database_line(chain: list[BaseException], settings: Settings, shown: str) -> str | None:
    path = sqlite_path(settings.database_url)
    if path is not None:
        text = " ".join(str(getattr(e, "args", ("",))[0] if getattr(e, "args", None) else "") for e in chain).lower()
        if "readonly" in text or "read-only" in text:
            return (f"database-bestand {path} is alleen-lezen; geef de gebruiker van de bot schrijfrechten of kies "
                    "een ander pad in database.url")
        if "unable to open" in text:
            return (f"database-bestand {path} kan niet worden geopend; controleer of map {path.parent} bestaat en "
                    "schrijfbaar is")
        if "locked" in text:
            return f"database-bestand {path} is vergrendeld door een ander proces; probeer het zo opnieuw"
        return None
    parts = urlsplit(settings.database_url)
    host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    reason = _os_reason(chain)
    if reason is not None:
        return (f"database {shown} op {host} is niet bereikbaar ({reason}); start PostgreSQL of corrigeer "
                "database.url")
    for e in chain:
        name = type(e).__name__
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
            return (f"database {shown} op {host} weigert de gebruiker ({_first_line(e)}); controleer gebruiker en "
                    "wachtwoord in ZSM_BOT_DATABASE_URL")
        if name == "InvalidCatalogNameError":
            return f"database {shown} op {host} bestaat niet; maak hem aan (createdb) of corrigeer database.url"
        if name == "CannotConnectNowError":
            return f"database {shown} op {host} start nog op; probeer het zo opnieuw"
    return None


_MATRIX_ID = re.compile(r"@[^\s:'\"]+:[A-Za-z0-9.\-]+(?::\d+)?")
_EMAIL = re.compile(r"[^\s@'\"<>]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def scrub(line: str) -> str:
    """The line as the log may hold it: Matrix ids and mail addresses (they name people) replaced; a URL (the
    database's, already without password) stays as it is."""
    return " ".join(word if "://" in word else _EMAIL.sub("<e-mailadres>", _MATRIX_ID.sub("<matrix-id>", word))
                    for word in line.split(" "))


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line only; PostgreSQL's login errors name the role, never row data."""
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
