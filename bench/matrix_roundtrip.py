"""Shared parts of the Matrix round-trip benchmarks: what the officer feels, bot versus a bare echo client.

A real Synapse on loopback with an officer client, the bot (``zsm-bot run``, a process of its own) and a bare
matrix-nio echo client (answers every message with a notice, no database; a process of its own too,
``bench.echo_process``), each in its own encrypted room with the officer. The officer sends the same bodies to both,
alternating in blocks so machine noise hits both alike, and the time from send to the decrypted reply arriving is
what is compared. Used by ``bench.ping_roundtrip`` and ``bench.check_roundtrip``; rate limits (Synapse's and the
bot's own per-user command limit) are lifted so they stay out of the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import pct
from devtools.synapse import Synapse
from tests.harness.config import write_config
from tests.harness.matrix import PASSWORD, Homeserver, Officer

BOT, ECHO = "bot", "bare echo"


@dataclass
class EchoClient:
    """The baseline: a minimal matrix-nio client answering every message in its rooms with a threaded notice, in a
    process of its own (``bench.echo_process``), as the bot runs in its own."""

    user_id: str
    process: asyncio.subprocess.Process

    @classmethod
    async def start(cls, hs: Homeserver, store: Path) -> EchoClient:
        user = hs.new_user("echo")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.echo_process", hs.synapse.url, user, PASSWORD, str(store),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the echo client did not start: {line!r}")
        return cls(user, process)

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class Stand:
    """Synapse, officer, the bot's room and configuration (bot not yet started) and the echo client's room."""

    synapse: Synapse
    officer: Officer
    bot_user: str
    config: Path  # the bot's; SQLite database beside it; usable by ``zsm-bot`` subcommands too
    echo: EchoClient
    rooms: dict[str, str]
    bot: asyncio.subprocess.Process | None = None

    async def start_bot(self) -> None:
        """Run ``zsm-bot run`` as its own process, as it runs in production; return once it is in the room. Not
        in the benchmark's process: there the officer's sync work ran on the bot's event loop, between the steps
        of a command (a dozen milliseconds per round trip, which a bot on a server never pays)."""
        log = self.config.parent / "bot.log"
        self.bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "run", "--config", str(self.config), stdin=asyncio.subprocess.DEVNULL,
            stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)
        try:
            await self.officer.wait_member(self.rooms[BOT], self.bot_user, timeout=90)
        except AssertionError:
            raise RuntimeError(f"the bot did not start: {log.read_text()[-2000:]}") from None

    async def stop_bot(self) -> None:
        if self.bot and self.bot.returncode is None:
            self.bot.terminate()
            try:
                await asyncio.wait_for(self.bot.wait(), 30)
            except TimeoutError:
                self.bot.kill()
                await self.bot.wait()


@contextlib.asynccontextmanager
async def stand(work: Path) -> AsyncIterator[Stand]:
    """Start Synapse and set up both rooms; the caller starts the bot (``Stand.start_bot``) when its data is in.
    The bot long-polls like the echo client (30 s sync timeout) and its per-user command limit is off."""
    synapse = Synapse(work / "synapse")
    await asyncio.to_thread(synapse.start)
    closers: list[Any] = []
    try:
        admin = synapse.register("admin", PASSWORD, admin=True)
        hs = Homeserver(synapse, str(admin["access_token"]), work / "stores")
        officer = await hs.officer()
        closers.append(officer.close)
        bot_user = hs.new_user("zsm-bot")
        bot_room = await officer.create_room([bot_user])
        config = write_config(work, f"sqlite+aiosqlite:///{work / 'bot.db'}", sections={
            "matrix": {"homeserver": synapse.url, "user_id": bot_user, "password": PASSWORD, "rooms": [bot_room],
                       "device_id": "BENCHBOT", "sync_timeout_ms": 30000, "commands_per_minute": 0},
            "logging": {"level": "WARNING"},
        }, users={officer.user_id: "ovj"})
        echo = await EchoClient.start(hs, work / "stores" / "echo")
        closers.append(echo.close)
        echo_room = await officer.create_room([echo.user_id])
        await officer.wait_member(echo_room, echo.user_id, timeout=60)
        s = Stand(synapse, officer, bot_user, config, echo, {BOT: bot_room, ECHO: echo_room})
        try:
            yield s
        finally:
            await s.stop_bot()
    finally:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        await asyncio.to_thread(synapse.stop)


async def round_trip(officer: Officer, room: str, body: str, timeout: float = 30) -> tuple[float, Any]:
    """Milliseconds from sending ``body`` to the (decrypted) reply arriving at the officer, and that reply."""
    t0 = time.perf_counter()
    event_id = await officer.send(room, body)
    reply = await officer.wait_reply(event_id, timeout=timeout)
    return (time.perf_counter() - t0) * 1000, reply


async def alternate(officer: Officer, rooms: dict[str, str], bodies: list[str],
                    block: int) -> dict[str, list[tuple[float, Any]]]:
    """Send every body to every room, one block at a time per room; which room goes first flips per block."""
    out: dict[str, list[tuple[float, Any]]] = {label: [] for label in rooms}
    order = list(rooms)
    for start in range(0, len(bodies), max(1, block)):
        for label in order:
            for body in bodies[start:start + block]:
                out[label].append(await round_trip(officer, rooms[label], body))
        order.reverse()
    return out


def report(bot_ms: list[float], echo_ms: list[float], target: float, extra_target_ms: float | None = None) -> None:
    """p50/p95/p99/max/mean of both, the ratio bot/echo at p50 and p95 against the target, and beside it the
    bot's absolute extra time over the echo (a ratio hides it behind a slow homeserver)."""
    for label, ms in ((BOT, bot_ms), (ECHO, echo_ms)):
        print(f"  {label:<10} p50 {pct(ms, 50):7.1f} ms   p95 {pct(ms, 95):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   "
              f"max {max(ms):7.1f} ms   mean {statistics.fmean(ms):7.1f} ms")
    r50, r95 = pct(bot_ms, 50) / pct(echo_ms, 50), pct(bot_ms, 95) / pct(echo_ms, 95)
    verdict = "OK" if max(r50, r95) <= target else "MISSED"
    print(f"  {'ratio':<10} p50 {r50:7.2f}      p95 {r95:7.2f}      (target <= {target:.2f}: {verdict})")
    extra50 = pct(bot_ms, 50) - pct(echo_ms, 50)
    verdict = "" if extra_target_ms is None else \
        f"      (target p50 < {extra_target_ms:.0f} ms: {'OK' if extra50 < extra_target_ms else 'MISSED'})"
    print(f"  {'bot - echo':<10} p50 {extra50:+7.1f} ms   p95 {pct(bot_ms, 95) - pct(echo_ms, 95):+7.1f} ms{verdict}")
