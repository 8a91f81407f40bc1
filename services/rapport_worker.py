"""A report's Python in a process of its own, so a year's ``!rapport`` never competes with the bot's event loop.

The figures of a year are some 300,000 duration rows through SQLAlchemy's row processing and a few hundred
milliseconds of sorting: in the bot's interpreter that holds the GIL against a ``!check`` arriving meanwhile, even
in a thread. Here one long-lived worker process, started at the first report, opens the same database itself
(``storage.rapport_queries.compute_rapport_apart``) and sends back the ``Rapport`` (plain frozen dataclasses).

The process is started with "spawn": a fork of this threaded asyncio process could copy a lock held by another
thread. It ignores SIGINT (a Ctrl-C on the terminal reaches the whole process group; the bot stops it itself), runs
at a lower CPU priority where it may, and leaves when the bot is gone (its parent changes), so a SIGKILLed bot leaves
no worker behind. A worker that dies during a report fails that report with ``RapportFailed`` (the chat gets the
usual short Dutch line, the page its 503), and the next report starts a fresh one.

Between the pieces of a report the worker gives way to the bot's commands in flight (``services.foreground``: the
count is shared memory handed to the process at its start), which its lower priority alone did not achieve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from domain.rapport import Period, Rapport
from services.foreground import TOTAL_WAIT_S, Foreground, GiveWay
from storage.leader import database_unreachable
from storage.rapport_queries import compute_rapport_apart, go_on

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL: well inside the runtime's shutdown bound (bot.shutdown.GRACE_S)
PARENT_POLL_S = 1.0
WORKER_NICENESS = 10


class RapportFailed(RuntimeError):
    """The report could not be computed in the worker; the message names what happened, never any data."""


_FOREGROUND: Any = None  # in the worker: the bot's commands in flight (services.foreground), when it shares them


def _worker_started(parent: int, foreground: Any) -> None:
    """In the worker, once: SIGINT ignored, the bot's count of commands in flight kept, and a watch that ends the
    process when the bot is gone."""
    global _FOREGROUND
    _FOREGROUND = foreground
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_leave_with_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _may_set_priority() -> bool:
    """Only where no seccomp filter is in force: a filter may answer ``setpriority`` with the process's death (the
    hardened systemd unit denies ``@resources``), and there the worker keeps the normal priority."""
    try:
        return "\nSeccomp:\t0\n" in Path("/proc/self/status").read_text()
    except OSError:
        return False


def _background_priority(processes: list[BaseProcess]) -> None:
    """A report is background work: on a busy machine the bot's commands get the CPU first. Set by the bot right
    after the start, so the worker's own start (the imports, a second of CPU) runs at that priority too; the
    threads the worker makes later inherit it."""
    if not _may_set_priority():
        return
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS)
    for p in processes:
        if p.pid is not None:
            with contextlib.suppress(OSError):  # it may have ended already
                os.setpriority(os.PRIO_PROCESS, p.pid, niceness)


def _leave_with_parent(parent: int) -> None:
    # An orphan is adopted by another process: its parent id changes. Waiting on the call queue alone would never
    # notice, because the worker holds that pipe's writing end itself.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def _compute(database_url: str, period: Period, veiligheidshuis: str | None, vh_keys: tuple[str, ...],
             give_way_s: float) -> tuple[int, float, Rapport]:
    """In the worker: one report on a connection of its own, giving way to the bot's commands for at most
    ``give_way_s`` in all; returns the worker's pid (the log and the tests say which process computed it) and how
    long it gave way. Only a type name crosses back on failure: a message may hold SQL parameters, and a driver's
    exception need not survive pickling. An unreachable database stays recognisable as one (a
    ``ConnectionError``), so a chat command is retried when the database is back, as in the bot itself."""
    pause = GiveWay(_FOREGROUND, give_way_s) if _FOREGROUND is not None else None
    if pause is not None:
        pause()  # a report asked beside a command starts after it: the event loop and the engine are work too
    try:
        rapport = asyncio.run(compute_rapport_apart(database_url, period, veiligheidshuis, vh_keys, pause or go_on))
    except Exception as exc:
        if database_unreachable(exc):
            raise ConnectionError(f"database unreachable ({type(exc).__name__})") from None
        raise RapportFailed(f"report failed in the worker ({type(exc).__name__})") from None
    return os.getpid(), pause.waited_s if pause is not None else 0.0, rapport


class RapportWorker:
    """One worker process for the reports on ``database_url``; reports asked together wait their turn there."""

    def __init__(self, database_url: str, foreground: Foreground | None = None,
                 give_way_s: float = TOTAL_WAIT_S) -> None:
        self._url = database_url
        self._foreground = foreground
        self._give_way_s = give_way_s
        self._pool: ProcessPoolExecutor | None = None
        self._prioritised: ProcessPoolExecutor | None = None
        self._closed = False
        self.last_pid: int | None = None  # the process that computed the last report
        self.last_waited_s = 0.0  # how long the last report gave way to commands
        self.pending = 0  # reports handed to the worker and not answered yet

    def _running(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RapportFailed("the report worker is closed (the bot is stopping)")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_started,
                                             initargs=(os.getpid(), self._foreground and self._foreground.for_worker))
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def compute(self, period: Period, veiligheidshuis: str | None, vh_keys: Sequence[str], *,
                      for_command: bool = False) -> Rapport:
        """The figures, computed giving way to the bot's commands. ``for_command``: asked by a command that waits
        for them, which the worker must then not wait for in turn."""
        fg = self._foreground
        if fg is None or not for_command:
            return await self._compute(period, veiligheidshuis, vh_keys)
        with fg.aside():
            return await self._compute(period, veiligheidshuis, vh_keys)

    async def _compute(self, period: Period, veiligheidshuis: str | None, vh_keys: Sequence[str]) -> Rapport:
        loop = asyncio.get_running_loop()
        args = (self._url, period, veiligheidshuis, tuple(vh_keys), self._give_way_s)
        pool = self._running()
        try:
            try:
                future = loop.run_in_executor(pool, _compute, *args)
            except BrokenProcessPool:
                # It died while idle, with nobody's report: this report goes to a fresh one.
                self._discard(pool)
                pool = self._running()
                future = loop.run_in_executor(pool, _compute, *args)
        except OSError as exc:
            # No process could be started (limits, memory): a failure of this report, not an unreachable database
            # (an OSError would otherwise say that, and the command would wait for the database to come back).
            self._discard(pool)
            raise RapportFailed(f"the report worker could not be started ({type(exc).__name__})") from None
        if pool is not self._prioritised:
            # A pool's single process starts at its first submit, above.
            self._prioritised = pool
            _background_priority(_processes_of(pool))
        self.pending += 1
        began = time.perf_counter()
        try:
            pid, waited_s, rapport = await future
        except BrokenProcessPool:
            self._discard(pool)
            log.error("rapport worker stopped during a report; the next report starts a new one")
            raise RapportFailed("the report worker stopped during the report") from None
        finally:
            self.pending -= 1
        self.last_pid, self.last_waited_s = pid, waited_s
        # How long a report took and how much of that it gave way to commands: a report that waits seconds says the
        # room was busy with commands meanwhile, not that the database is slow.
        log.info("rapport computed", extra={"ms": round((time.perf_counter() - began) * 1000, 1),
                                            "gave_way_ms": round(waited_s * 1000, 1)})
        return rapport

    async def close(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the worker, also in the middle of a report (which is given up: nothing was written): SIGTERM,
        and SIGKILL after ``grace_s``, so the bot's exit never waits for a report."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = _processes_of(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        await asyncio.to_thread(_reap, processes, grace_s)


def _processes_of(pool: ProcessPoolExecutor) -> list[BaseProcess]:
    # Not public before Python 3.14 (terminate_workers): the bot must reach its worker to stop it within a bound and
    # to give it its priority.
    return list((pool._processes or {}).values())


def _reap(processes: list[BaseProcess], grace_s: float) -> None:
    # Waited for on their sentinels, not with is_alive(): the pool's own thread reaps its processes too, and a
    # process reaped by that thread would look alive here for ever (waitpid answers ECHILD).
    deadline = time.monotonic() + grace_s
    running: dict[int, BaseProcess] = {p.sentinel: p for p in processes}
    while running and (left := deadline - time.monotonic()) > 0:
        for ended in multiprocessing.connection.wait(list(running), left):
            if isinstance(ended, int):  # a sentinel is a file descriptor
                running.pop(ended)
    for p in running.values():
        log.error("rapport worker did not stop in time; killed", extra={"grace_s": grace_s})
        p.kill()
    for p in processes:
        p.join(1.0)  # reaped here unless the pool's thread did
