"""A report is computed in a worker process of its own (services/rapport_worker.py), on SQLite and PostgreSQL: the
same figures as in the bot's interpreter, a short Dutch line when the worker is killed in the middle of a report and
a fresh worker for the next one, and no worker left after the bot stops."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.reference import load_veiligheidshuizen
from domain.clock import FixedClock
from domain.rapport import parse_period
from services.foreground import MAX_WAIT_S
from services.rapport import RapportService
from services.rapport_worker import WORKER_NICENESS, RapportWorker
from storage.audit import Auditor
from storage.db import create_engine, read_only, session_factory
from storage.migrate import upgrade
from storage.models import AuditRecord, InboxEntry
from storage.rapport_queries import compute_rapport
from storage.statistiek_models import Feit, record_facts
from tests.harness.console import ConsoleBot
from tests.harness.markings import start_bot

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
NOV = parse_period("2026-11")
ASK = "!rapport 2026-11"


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, database_url, clock=FixedClock(NOW))
    async with b.runtime.sessions() as s, s.begin():
        await record_facts(s, [
            *(Feit("check", NOW - timedelta(hours=h), "utrecht") for h in range(12)),
            *(Feit("aanvraag_beantwoord", NOW + timedelta(hours=h), "twente", outcome="op_tijd",
                   duration_s=600.0 * (h + 1)) for h in range(7)),
            *(Feit("mail_afgeleverd", NOW, "utrecht", outcome="terugkoppeling", duration_s=60.0 + h)
              for h in range(6)),
        ])
    try:
        yield b
    finally:
        await b.close()


def worker_of(bot: ConsoleBot) -> RapportWorker:
    worker = bot.runtime.rapport.worker
    assert worker is not None, "a database on disk or a server: the bot computes reports in a worker"
    return worker


def stat_of(pid: int) -> list[str]:
    """/proc/<pid>/stat from its third field (the state) on; the name before it may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_of(pid: int) -> int:
    return int(stat_of(pid)[1])


def niceness_of(pid: int) -> int:
    return int(stat_of(pid)[16])


def gone(pid: int) -> bool:
    """Ended and reaped (a zombie would still have its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


async def reports_audited(bot: ConsoleBot) -> int:
    async with bot.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.kind == "rapport.opgevraagd")) or 0)


async def test_the_report_is_computed_in_another_process(bot: ConsoleBot) -> None:
    reply = await bot.say(ASK, as_role="kpc")
    assert "Rapport 2026-11" in reply and "Raadplegingen: 12" in reply, reply
    pid = worker_of(bot).last_pid
    assert pid is not None and pid != os.getpid()
    assert parent_of(pid) == os.getpid()  # the bot's own child, not some other process
    if "\nSeccomp:\t0\n" in Path("/proc/self/status").read_text():  # else it may not change its priority
        assert niceness_of(pid) == min(19, niceness_of(os.getpid()) + WORKER_NICENESS)
    # The web page's way (figures) goes to the same worker and gives what the bot's interpreter computes.
    figures = await bot.runtime.rapport.figures(NOV, None)
    assert worker_of(bot).last_pid == pid  # long-lived: one process for report after report
    async with read_only(bot.runtime.sessions) as s:
        here = await compute_rapport(s, NOV, None, bot.runtime.services.veiligheidshuizen.keys())
    assert figures == here
    assert figures.totaal.checks == 12 and figures.totaal.respons_mediaan_s == 2400.0
    assert await reports_audited(bot) == 1  # the chat's record, written by the command's transaction
    await bot.runtime.close()
    assert gone(pid)


async def test_a_report_gives_way_to_a_command_in_flight_and_is_never_stopped_by_it(bot: ConsoleBot) -> None:
    """A command in flight that does not end (held here on the bot's own count) makes the worker wait between
    the pieces of a report, for its whole budget, and the report is still computed, with the same figures. Once the
    commands are quiet, a report does not wait."""
    foreground = bot.runtime.foreground
    url = str(bot.runtime.engine.url.render_as_string(hide_password=False))
    worker = RapportWorker(url, foreground, give_way_s=1.0)
    keys = bot.runtime.services.veiligheidshuizen.keys()
    try:
        with foreground.busy():
            held = await worker.compute(NOV, None, keys)
        assert worker.last_waited_s >= 1.0
        async with read_only(bot.runtime.sessions) as s:
            assert held == await compute_rapport(s, NOV, None, keys)
        assert (await worker.compute(NOV, None, keys)) == held
        assert worker.last_waited_s < MAX_WAIT_S  # the quiet after the last command at most, not the bound
    finally:
        await worker.close()


async def test_a_chat_report_is_no_command_its_own_worker_waits_for(bot: ConsoleBot,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher counts a command from receipt to its answer; a ``!rapport`` is set aside while it waits for
    its own figures, so the worker does not give way to the command that asked it."""
    foreground = bot.runtime.foreground
    during: list[int] = []
    committed = bot.runtime.dispatcher._on_committed
    monkeypatch.setattr(bot.runtime.dispatcher, "_on_committed",
                        lambda *a: (during.append(foreground.running), committed(*a))[1])
    assert "Rapport 2026-11" in await bot.say(ASK, as_role="kpc")
    assert worker_of(bot).last_waited_s < MAX_WAIT_S  # without the setting aside: its budget, ten seconds
    assert "Onbekend commando" in await bot.say("!rapprt 2026-11", as_role="kpc")
    assert during == [1, 1] and foreground.running == 0  # counted while handled, and not after


async def test_a_killed_worker_gives_the_dutch_line_and_the_next_report_a_fresh_one(bot: ConsoleBot) -> None:
    assert "Rapport 2026-11" in await bot.say(ASK, as_role="kpc")
    worker = worker_of(bot)
    pid = worker.last_pid
    assert pid is not None
    # Stopped, the worker cannot answer the next report before the kill arrives: it is killed in the middle.
    os.kill(pid, signal.SIGSTOP)
    try:
        asked = asyncio.create_task(bot.say(ASK, as_role="kpc"))
        async with asyncio.timeout(20):  # a safety net against a hang, not a timing assertion
            while worker.pending == 0:
                await asyncio.sleep(0.01)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert bot.runtime.foreground.running == 0  # the command that waits for the worker is set aside
    reply = await asyncio.wait_for(asked, timeout=20)
    assert reply.startswith("Er ging iets mis bij !rapport; er is niets vastgelegd (foutreferentie "), reply
    assert "\n" not in reply and "Traceback" not in reply and "Broken" not in reply
    assert bot.outcomes[-1].status == "failed"
    assert await reports_audited(bot) == 1  # the failed report left no record of a report
    reply = await bot.say(ASK, as_role="kpc")
    assert "Rapport 2026-11" in reply and "Raadplegingen: 12" in reply, reply
    assert worker.last_pid is not None and worker.last_pid not in (pid, os.getpid())
    assert await reports_audited(bot) == 2
    async with bot.runtime.sessions() as s:
        outcomes = (await s.execute(select(InboxEntry.outcome).where(InboxEntry.command == "rapport"))).scalars()
        assert sorted(outcomes) == ["failed", "handled", "handled"]


async def test_stopping_the_bot_ends_a_worker_stuck_in_a_report(bot: ConsoleBot) -> None:
    """A worker that does not react to SIGTERM (stopped here, as a report stuck in a query would be for a while)
    is killed after the grace period: the bot's exit does not wait for it."""
    assert "Rapport 2026-11" in await bot.say(ASK, as_role="kpc")
    worker = worker_of(bot)
    pid = worker.last_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    asked = asyncio.create_task(bot.runtime.rapport.figures(NOV, None))
    async with asyncio.timeout(20):
        while worker.pending == 0:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(bot.runtime.close(), timeout=30)
    assert gone(pid)
    with pytest.raises(RuntimeError):  # the report is given up, as a failure, not left hanging
        await asyncio.wait_for(asked, timeout=20)


async def test_an_in_memory_database_is_computed_in_the_bot() -> None:
    """No other process can open an in-memory SQLite database: the figures are computed in this one, as before."""
    engine = create_engine("sqlite+aiosqlite://")
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as s, s.begin():
            await record_facts(s, [Feit("check", NOW, "utrecht") for _ in range(6)])
        service = RapportService(sessions, Auditor(b"k"), load_veiligheidshuizen(None), FixedClock(NOW),
                                 in_worker=True)
        assert service.worker is None
        assert (await service.figures(NOV, None)).totaal.checks == 6
        await service.close()
    finally:
        await engine.dispose()
