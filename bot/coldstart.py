"""Cold start: wait for the homeserver and the database instead of exiting when they are not up yet.

In a compose stack or after a reboot the bot often starts before Synapse or PostgreSQL accepts connections. An
unreachable peer (connection refused, unknown host, time-out, "the database system is starting up", a 5xx answer of a
proxy before a homeserver that is still starting) is retried
with capped exponential backoff, said in the log at every attempt and in ``/readyz`` ("wacht op homeserver");
anything else (a wrong password, a missing database, a refused login) still stops the start at once with its one
line, because waiting cannot fix it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0
# Server-side "not yet" answers of the database drivers, by class name (bot/ does not import the drivers).
_NOT_YET = frozenset({"CannotConnectNowError", "TooManyConnectionsError", "ServerDisconnectedError",
                      "ClientConnectionError", "ClientConnectorError", "ClientOSError", "HomeserverNotReady"})


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: SQLAlchemy's ``orig`` (the driver's error), else ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the peer cannot be reached yet, not that it refused us."""
    for current in causes(exc):
        if isinstance(current, ConnectionError | socket.gaierror | TimeoutError) or type(current).__name__ in _NOT_YET:
            return True
        if isinstance(current, OSError) and current.errno is not None and current.filename is None:
            return True  # a socket error without a file: EHOSTUNREACH, ENETUNREACH and the like
    return False


def reason(exc: BaseException) -> str:
    """Why the peer cannot be reached, in Dutch, with the exception class an operator may search for."""
    for current in causes(exc):
        if isinstance(current, socket.gaierror) or "DNS" in type(current).__name__:
            return f"host onbekend, {type(exc).__name__}"
        if isinstance(current, ConnectionRefusedError):
            return f"verbinding geweigerd, {type(exc).__name__}"
        if isinstance(current, TimeoutError):
            return f"geen antwoord binnen de tijd, {type(exc).__name__}"
    return type(exc).__name__


class Waiting:
    """What the start-up is waiting for, if anything: read by ``/readyz``."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    async def ready_check(self) -> str | None:
        return "; ".join(self.reasons.values()) or None


async def until_reachable(what: str, attempt: Callable[[], Awaitable[T]], waiting: Waiting, *,
                          start_s: float = BACKOFF_START_S, cap_s: float = BACKOFF_CAP_S) -> T:
    """``attempt()`` until it no longer fails with an unreachable peer; ``what`` is Dutch ("homeserver",
    "database") and appears in /readyz as "wacht op <what>"."""
    delay = start_s
    failures = 0
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not unreachable(exc):
                waiting.reasons.pop(what, None)
                raise
            failures += 1
            wait = min(cap_s, delay) * (0.8 + 0.4 * random.random())
            why = reason(exc)
            waiting.reasons[what] = f"wacht op {what} (poging {failures} mislukt: {why})"
            log.warning(f"wacht op {what}: niet bereikbaar ({why}), opnieuw over {wait:.1f}s",
                        extra={"waiting_for": what, "attempt": failures, "wait_s": round(wait, 2),
                               "error": type(exc).__name__})
            await asyncio.sleep(wait)
            delay = min(cap_s, delay * 2)
            continue
        if failures:
            log.info(f"{what} bereikbaar", extra={"waiting_for": what, "attempts": failures + 1})
        waiting.reasons.pop(what, None)
        return result
