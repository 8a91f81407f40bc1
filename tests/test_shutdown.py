"""SIGTERM and SIGINT stop a loaded bot within a bound: ``zsm-bot console`` as a real subprocess, with a backlog in
the send queue, the advice-request ticker running and commands streaming in on stdin, is stopped mid-work.

The bound (20 s) is a safety net against a hang (a cancelled query waited on for ever, a stdin read that keeps
the process alive), not a timing assertion; the usual stop takes well under a second. Afterwards the database
is consistent: every handled command has exactly its one reply queued (a command cut off rolled back whole).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services import messages
from services.messages import NewMessage
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import InboxEntry, OutgoingMessage
from tests.harness.config import user_for, write_config
from tests.harness.console import ping_handled

STOP_BOUND_S = 20.0
BACKLOG = 3000


def zsm_bot() -> str:
    return str(Path(sys.executable).parent / "zsm-bot")


async def prepare(url: str) -> None:
    """The database upgraded and a backlog of bulk messages queued before the bot starts."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        from datetime import UTC, datetime
        async with sessions() as s, s.begin():
            await messages.queue_many(s, [NewMessage(room_id="!elders:localhost", content={"body": f"melding {i}"},
                                                     txn_id=f"backlog-{i}") for i in range(BACKLOG)],
                                      datetime.now(UTC))
    finally:
        await engine.dispose()


async def consistent(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            handled = await s.scalar(select(func.count()).select_from(InboxEntry))
            replies = await s.scalar(select(func.count()).select_from(OutgoingMessage).where(
                OutgoingMessage.in_reply_to.is_not(None)))
        return int(handled or 0), int(replies or 0)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_loaded_console_bot_stops_within_the_bound(tmp_path: Path, sig: signal.Signals) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    config = write_config(tmp_path, url, sections={"logging": {"level": "WARNING", "format": "json"}})
    await prepare(url)
    proc = subprocess.Popen([zsm_bot(), "console", "--config", str(config), "--as", user_for("ovj")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdin and proc.stdout
    working = threading.Event()
    seen: list[str] = []

    def watch() -> None:
        assert proc.stdout
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "pong":
                working.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        # Commands keep coming (the pipe stays open: the bot never sees the end of its input).
        proc.stdin.write("".join("!ping\n!rapport\n" for _ in range(200)))
        proc.stdin.flush()
        assert await asyncio.to_thread(working.wait, 120), "the bot did not start answering"
        proc.send_signal(sig)
        try:
            code = await asyncio.to_thread(proc.wait, STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"zsm-bot console did not stop within {STOP_BOUND_S:.0f} s after {sig.name}")
        assert code == 0, proc.stderr.read() if proc.stderr else code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any("melding" in line for line in seen)  # the backlog went out under the same load
    handled, replies = await consistent(url)
    assert handled >= 1 and handled == replies


async def test_the_queue_loops_end_when_cancelled_after_work(tmp_path: Path) -> None:
    """The send loop and the redactor, woken by every command, end promptly when cancelled (on Python 3.11 the
    redactor's ``wait_for`` on its wake-up event could stay 'cancelling' for ever, which hung asyncio.run's exit)."""
    from bot.runtime import Runtime
    from bot.transport.console import ConsoleTransport
    from config.settings import load_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    runtime = Runtime(load_settings(write_config(tmp_path, url, sections={"matrix": {"commands_per_minute": 0}})))
    await runtime.start(ConsoleTransport(io.StringIO()), http=False)
    assert runtime.sender and runtime.redactor and runtime.dispatcher
    loops = [asyncio.create_task(runtime.sender.run()), asyncio.create_task(runtime.redactor.run())]
    try:
        for i in range(100):
            await ping_handled(runtime, f"$load-{i}")
        for task in loops:
            task.cancel()
        _, late = await asyncio.wait(loops, timeout=STOP_BOUND_S)  # a safety net, not a timing assertion
        assert not late, "a queue loop did not end after its cancel"
    finally:
        for task in loops:
            task.cancel()
        await runtime.close()
