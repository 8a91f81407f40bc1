"""Commands in flight, shared with the report worker so that background work gives way to a person waiting.

A year's report on PostgreSQL is a few hundred milliseconds of the server's time and of the worker's Python. On a
machine of two cores that work slowed a ``!check`` next to it by as much as a bare sorting loop at the lowest CPU
priority did (``bench.check_lookup``): a lower priority does not help, because the caches and the memory are
shared. What helps is not running at all while a command is handled. So the dispatcher counts each command from
receipt to its answer (``Foreground.busy``), in memory shared with the worker process, and the worker, between two
pieces of its report (``storage.rapport_queries.compute_rapport``'s ``pause``), waits while a command runs or
while the last one ended less than ``IDLE_S`` ago: commands in a burst come back to back, and a piece started in
such a gap would run beside the next one.

The wait is bounded (``MAX_WAIT_S`` per pause, ``TOTAL_WAIT_S`` per report), so a stream of commands slows a
report down and never stops it, and a report asked in the chat stays well inside the command's time budget. A
``!rapport`` that waits for its own figures is not a command in flight meanwhile (``Foreground.aside``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

IDLE_S = 0.003  # quiet this long after a command before a piece runs: longer than the gaps within a burst
POLL_S = 0.002  # while a command runs: a wake-up of the worker is a context switch on the other core
MAX_WAIT_S = 0.5  # per pause: under a stream of commands a report still takes a piece now and then
TOTAL_WAIT_S = 10.0  # per report: well inside command_timeout_seconds (30 s by default)

_RUNNING, _ENDED = 0, 1

log = logging.getLogger(__name__)


class Foreground:
    """The count of commands being handled and the monotonic time the last one ended. Written by the bot's event
    loop only (one thread, so no lock is needed), read by the worker; ``time.monotonic`` is one clock for all
    processes of the machine."""

    def __init__(self) -> None:
        try:
            self.shared: Any = multiprocessing.get_context("spawn").RawArray(ctypes.c_double, 2)
            self.for_worker: Any = self.shared
        except OSError:
            # No shared memory where the bot runs (no /dev/shm and no writable temp dir): the count is kept here
            # alone and the worker does not give way, as before; the bot itself runs as ever.
            log.warning("no shared memory for the report worker; reports do not give way to commands")
            self.shared, self.for_worker = [0.0, 0.0], None

    @contextmanager
    def busy(self) -> Iterator[None]:
        """A command from receipt to its answer."""
        self.shared[_RUNNING] += 1
        try:
            yield
        finally:
            self.shared[_RUNNING] -= 1
            self.shared[_ENDED] = time.monotonic()

    @contextmanager
    def aside(self) -> Iterator[None]:
        """A command that waits for background work itself: the work must not wait for that command."""
        self.shared[_RUNNING] -= 1
        try:
            yield
        finally:
            self.shared[_RUNNING] += 1

    @property
    def running(self) -> int:
        return int(self.shared[_RUNNING])

    @property
    def ended_at(self) -> float:
        """``time.monotonic()`` when the last command ended (0.0: none yet)."""
        return float(self.shared[_ENDED])


class GiveWay:
    """The pause of one report in the worker, on the shared state of ``Foreground``: each call returns once no
    command has run for ``IDLE_S``, or when its bound is spent. It sleeps in the worker's only thread; nothing else
    runs there during a report. ``waited_s`` says how long the report gave way in all."""

    def __init__(self, shared: Any, total_s: float = TOTAL_WAIT_S) -> None:
        self._shared = shared
        self._left = total_s
        self.waited_s = 0.0

    def __call__(self) -> None:
        if self._left <= 0:
            return
        shared = self._shared
        began = now = time.monotonic()
        limit = began + min(MAX_WAIT_S, self._left)
        while now < limit:
            quiet = now - shared[_ENDED]
            if shared[_RUNNING] <= 0 and quiet >= IDLE_S:
                break
            time.sleep(POLL_S if shared[_RUNNING] > 0 else max(IDLE_S - quiet, 0.0001))
            now = time.monotonic()
        self._left -= now - began
        self.waited_s += now - began
