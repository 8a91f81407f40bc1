"""``zsm-bot init [DIR]``: the first step after installing the package, without a source checkout.

Writes the packaged, commented example configuration as ``DIR/zsm-bot.toml`` (its reference data and templates
default to the copies inside the package) and creates the folders it names, so ``check-config``, ``db upgrade``
and ``console`` work right after. An existing file is never overwritten: it may hold an operator's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from config.reader import os_reason
from config.reference import EXAMPLE_CONFIG, EXAMPLE_IMPORT, packaged
from config.settings import DEFAULT_CONFIG_PATH, ConfigError, load_settings, sqlite_path


def write_starter(folder: Path) -> tuple[Path, list[Path]]:
    """The written file and what was created for it: the database folder, the crypto store, and the example import
    file (docs/import.md), which is only written when no file of that name is there."""
    target = folder / DEFAULT_CONFIG_PATH
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"init: {folder} is een bestand, geen map; geef een map: zsm-bot init <map>")
    if target.exists():
        raise ConfigError(f"init: {target} bestaat al en wordt niet overschreven; verwijder of hernoem het, of geef "
                          "een andere map: zsm-bot init <map>")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(packaged(EXAMPLE_CONFIG).read_text("utf-8"))
    except FileExistsError:
        raise ConfigError(f"init: {target} bestaat al en wordt niet overschreven; verwijder of hernoem het") from None
    except OSError as exc:
        raise ConfigError(f"init: kan {target} niet schrijven ({os_reason(exc)}); kies een map waar u mag schrijven") \
            from None
    settings = load_settings(target, environ={})
    wanted = [settings.matrix.store_path]
    db = sqlite_path(settings.database_url)
    if db is not None:
        wanted.insert(0, db.parent)
    created: list[Path] = []
    for path in wanted:
        if path.is_dir():
            continue
        try:
            path.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"init: kan map {path} niet aanmaken ({os_reason(exc)})") from None
        created.append(path)
    example = folder / EXAMPLE_IMPORT
    if not example.exists():
        example.write_text(packaged(EXAMPLE_IMPORT).read_text("utf-8"), encoding="utf-8")
        created.append(example)
    return target, created
