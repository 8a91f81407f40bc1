"""Structured logs that carry no personal data.

Call sites pass only technical fields (event ids, command names, outcomes, durations) as ``extra``; message
bodies, identifiers and registry answers are never logged. Third-party loggers that might print event
content at DEBUG (nio, its crypto store) are held at WARNING whatever the bot's level.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_QUIET = ("nio", "peewee", "aiosqlite", "asyncio", "sqlalchemy", "alembic", "apscheduler", "aiohttp.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: exception text may quote data.
            out["exc_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            extras += f" exc_type={record.exc_info[0].__name__}"
        return f"{line} {extras}".rstrip()


# Every top-level package of the project (tests.test_architecture holds this against pyproject.toml).
OWN_PACKAGES = ("bot", "cli", "commands", "config", "domain", "integrations", "services", "storage", "web", "devtools",
                "zsm-bot")


class ThirdPartyQuiet(logging.Filter):
    """Below WARNING only the bot's own loggers pass: drivers log SQL parameters and event bodies at DEBUG,
    whatever level someone sets on them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.name.split(".", 1)[0] in OWN_PACKAGES


def setup_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ThirdPartyQuiet())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
