"""``zsm-bot run``: the Matrix bot with its send queue and operations server, until stopped."""

from __future__ import annotations

import asyncio
import logging

from bot.aanvraag.reactions import handle_reaction
from bot.coldstart import until_reachable
from bot.runtime import Runtime, audit_key, settle_heap
from bot.shutdown import cancel_within, stop_on_signals, within
from bot.transport.matrix import LoginFailed, MatrixBot, MatrixTransport
from config.build import version
from config.settings import Settings, database_kind
from domain.errors import ConfigError
from storage.db import is_sqlite
from storage.leader import SOLO, DeviceClaim, FileLock, Leadership, PgLeader

log = logging.getLogger(__name__)


async def run_matrix(settings: Settings, *, stop: asyncio.Event | None = None,
                     started: asyncio.Future[Runtime] | None = None, one_bot_process: bool = False) -> int:
    """The bot on Matrix until ``stop`` or a signal. ``one_bot_process``: this process runs nothing else (``zsm-bot
    run``), so its start-up heap may be frozen (``settle_heap``)."""
    if not settings.matrix.access_token and not settings.matrix.password:
        raise ConfigError("matrix: geen access_token en geen password; zet ZSM_BOT_MATRIX_ACCESS_TOKEN of "
                          "ZSM_BOT_MATRIX_PASSWORD")
    # One active instance per database. SQLite: this process alone (a second one stops here with one line).
    # PostgreSQL: the instance that holds the advisory lock acts; the others sync as standby until it goes.
    file_lock: FileLock | None = None
    pg_leader: PgLeader | None = None
    device: DeviceClaim | None = None  # PostgreSQL: one live process per Matrix device
    leader: Leadership = SOLO
    if is_sqlite(settings.database_url):
        file_lock = FileLock(settings.database_url)
        file_lock.acquire()
    else:
        leader = pg_leader = PgLeader(settings.database_url)
        device = DeviceClaim(settings.database_url, settings.matrix.user_id, settings.matrix.device_id)
    try:
        return await _run(settings, leader, pg_leader, stop, started, device, one_bot_process)
    finally:
        if device is not None:
            await device.close()
        if pg_leader is not None:
            await pg_leader.close()
        if file_lock is not None:
            file_lock.release()


async def _run(settings: Settings, leader: Leadership, pg_leader: PgLeader | None, stop: asyncio.Event | None,
               started: asyncio.Future[Runtime] | None, device: DeviceClaim | None = None,
               one_bot_process: bool = False) -> int:
    runtime = Runtime(settings, leader=leader)
    transport = MatrixTransport(settings.matrix)
    election: asyncio.Task[None] | None = None
    keeper: asyncio.Task[None] | None = None
    if stop is None:
        stop = asyncio.Event()
        stop_on_signals(stop)
    bot_holder: list[MatrixBot] = []

    async def synced_recently() -> str | None:
        if runtime.waiting.reasons:
            return None  # the wait itself is the reason, said by runtime.waiting
        limit = max(60.0, 2 * settings.matrix.sync_timeout_ms / 1000)
        lag = runtime.metrics.seconds_since_sync()
        return None if lag < limit else f"matrix: laatste sync {lag:.0f}s geleden"

    async def device_usable() -> str | None:
        return bot_holder[0].device_problem if bot_holder else None

    runtime.ready_checks.append(synced_recently)
    runtime.ready_checks.append(device_usable)
    try:
        if device is not None:
            # Before the election and the login: a second process with this device stops here, with one line.
            await until_reachable("database", device.acquire, runtime.waiting)
            keeper = asyncio.create_task(device.run(), name="device-claim")
        if pg_leader is not None:
            election = asyncio.create_task(pg_leader.run(), name="election")
        await runtime.start(transport, wait=True)
        assert runtime.dispatcher and runtime.sender
        secret = None
        if settings.matrix.cross_signing:
            base = settings.matrix.cross_signing_secret or "derived:" + audit_key(settings).decode()
            secret = base.encode()
        async def on_reaction(room_id: str, sender: str, reacts_to: str, key: str) -> None:
            await handle_reaction(runtime, sender=sender, room_id=room_id, reacts_to=reacts_to, key=key)

        bot = MatrixBot(transport, runtime.dispatcher, runtime.sessions, runtime.clock, runtime.metrics,
                        settings.matrix, wake_sender=runtime.sender.wake, cross_signing_secret=secret,
                        on_reaction=on_reaction, waiting=runtime.waiting,
                        on_members=runtime.members_changed, leader=leader)
        bot_holder.append(bot)
        sender = runtime.sender
        sender.sent_elsewhere = transport.sent_elsewhere

        async def send_after_first_sync() -> None:
            # Queued replies from before a restart wait until nio knows the rooms again.
            await bot.synced_once.wait()
            await sender.run()

        redactor = runtime.redactor
        assert redactor is not None

        async def redact_after_first_sync() -> None:
            await bot.synced_once.wait()
            await redactor.run()

        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(bot.run(), name="sync"),
            asyncio.create_task(send_after_first_sync(), name="send"),
            asyncio.create_task(redact_after_first_sync(), name="redact"),
        ]
        log.info("bot started", extra={"version": version(), "database": database_kind(settings.database_url),
                                       "rooms": len(settings.matrix.rooms), "http": settings.http.enabled})
        if one_bot_process:
            settle_heap()
        if started is not None and not started.done():
            started.set_result(runtime)
        stopper: asyncio.Task[object] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            if t in done and t.exception():
                exc = t.exception()
                if isinstance(exc, LoginFailed):
                    raise ConfigError(str(exc))
                raise exc  # type: ignore[misc]
        await cancel_within([*tasks, stopper])
        await within(bot.drain_tasks(), "matrix event handlers")
        log.info("bot stopped", extra={"version": version(), "reason": "signal" if stopper in done else "task ended"})
        return 0
    finally:
        if election is not None:
            await cancel_within([election])
        if keeper is not None:
            await cancel_within([keeper])
        await within(transport.client.close(), "matrix client")
        await runtime.close()
