"""PostgreSQL unreachable for longer than ``max_command_age_seconds`` (a TCP proxy in front of it, stopped and
started by the test) while commands arrive: after the outage each one is answered, once, by the same process
(no restart), and none is refused as too old: the age counts from when the bot received the command."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.synapse import free_port
from tests.harness import pg
from tests.harness.config import write_config
from tests.harness.ha import wait_until
from tests.harness.matrix import PASSWORD, Homeserver
from tests.harness.matrix_bot import InProcessBot
from tests.harness.tcp_proxy import TcpProxy

pytestmark = pytest.mark.matrix

MAX_AGE_S = 10
DURING = 5


@pytest.fixture
async def proxied_pg() -> AsyncIterator[tuple[str, TcpProxy]]:
    url, name = await pg.create_database()
    proxy = TcpProxy("127.0.0.1", 5432, free_port())
    await proxy.start()
    try:
        yield url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"), proxy
    finally:
        await proxy.stop()
        await pg.drop_database(name)


async def test_commands_during_a_database_outage_are_answered_after_it(
        homeserver: Homeserver, tmp_path: Path, proxied_pg: tuple[str, TcpProxy]) -> None:
    url, proxy = proxied_pg
    assert f":{proxy.port}/" in url
    officer = await homeserver.officer()
    bot_user = homeserver.new_user("zsm-bot")
    room = await officer.create_room([bot_user])
    config = write_config(tmp_path, url, sections={
        "matrix": {"homeserver": homeserver.synapse.url, "user_id": bot_user, "password": PASSWORD, "rooms": [room],
                   "device_id": "OUTAGE1", "sync_timeout_ms": 1000, "max_command_age_seconds": MAX_AGE_S}},
        users={officer.user_id: "ovj"})
    bot = InProcessBot(config)
    try:
        runtime = await bot.runtime()
        await officer.wait_member(room, bot_user, timeout=60)
        await officer.wait_reply(await officer.send(room, "!ping"), timeout=90)
        assert runtime.leader.active

        await proxy.stop()
        down_at = time.monotonic()
        # The first ones most likely reach the bot before it has noticed: their handling fails and is retried.
        sent = [await officer.send(room, "!ping") for _ in range(2)]
        await wait_until(lambda: not runtime.leader.active, "the bot to notice the lost database", timeout=60)
        # These are held: the bot does not act while it cannot hold the active lock.
        sent += [await officer.send(room, "!ping") for _ in range(DURING - 2)]
        sent_at = time.monotonic()
        # The outage outlasts max_command_age_seconds, and the bot has synced (received the commands) meanwhile.
        await wait_until(lambda: time.monotonic() - sent_at > MAX_AGE_S + 2
                         and runtime.metrics.seconds_since_sync() < time.monotonic() - sent_at - 1.5,
                         "the outage to outlast the command age limit", timeout=120)
        assert not any(officer.replies_to(e) for e in sent), "nothing can be answered without the database"
        await proxy.start()
        outage_s = time.monotonic() - down_at

        for event_id in sent:
            await officer.wait_reply(event_id, timeout=180)
        assert not bot.task.done(), "answered by the same process, without a restart"
        marker = await officer.send(room, "!ping")
        await officer.wait_reply(marker, timeout=120)
        for event_id in sent:
            replies = officer.replies_to(event_id)
            assert len(replies) == 1, (event_id, [r.body for r in replies])
            assert "niet uitgevoerd" not in replies[0].body, replies[0].body
        print(f"outage of {outage_s:.1f}s: {DURING} commands answered afterwards")
    finally:
        await bot.close()
        await officer.close()
