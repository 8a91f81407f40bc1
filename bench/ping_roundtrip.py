"""!ping round trip through a real Synapse in an encrypted room: the bot versus a bare matrix-nio echo client.

Run: ``python -m bench.ping_roundtrip [-n 200]``. Both are measured in the same run, on the same homeserver,
from the same officer client, in alternating blocks so drift on the machine hits both alike. Prints p50/p95 of
each and the ratio (target: bot at most 1.15 x the echo client).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, LoginResponse, RoomMessageText

from bot.matrix_main import run_matrix
from bot.runtime import Runtime
from config.settings import load_settings
from devtools.synapse import Synapse
from tests.harness.config import write_config
from tests.harness.matrix import PASSWORD, Homeserver, Officer


async def echo_client(hs: Homeserver, store: Path) -> tuple[AsyncClient, asyncio.Task[None]]:
    user = hs.new_user("echo")
    store.mkdir(parents=True)
    client = AsyncClient(hs.synapse.url, user, store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    resp = await client.login(PASSWORD, device_name="echo")
    assert isinstance(resp, LoginResponse)

    async def on_message(room: Any, event: RoomMessageText) -> None:
        if event.sender == client.user_id or not event.body.startswith("!ping"):
            return
        await client.room_send(room.room_id, "m.room.message", {
            "msgtype": "m.notice", "body": "pong",
            "m.relates_to": {"rel_type": "m.thread", "event_id": event.event_id, "is_falling_back": True,
                             "m.in_reply_to": {"event_id": event.event_id}},
        }, ignore_unverified_devices=True)

    async def on_invite(room: Any, event: Any) -> None:
        await client.join(room.room_id)

    from nio import InviteMemberEvent
    client.add_event_callback(on_message, RoomMessageText)
    client.add_event_callback(on_invite, InviteMemberEvent)
    await client.sync(timeout=0, full_state=True)
    if client.should_upload_keys:
        await client.keys_upload()
    return client, asyncio.create_task(client.sync_forever(timeout=30000))


async def measure(officer: Officer, room: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        ev = await officer.send(room, "!ping")
        await officer.wait_reply(ev, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main(n: int, block: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="zsm-bench-"))
    synapse = Synapse(work / "synapse", rc_message={"per_second": 5, "burst_count": 10})
    await asyncio.to_thread(synapse.start)
    try:
        admin = synapse.register("admin", PASSWORD, admin=True)
        hs = Homeserver(synapse, str(admin["access_token"]), work / "stores")
        officer = await hs.officer()
        bot_user = hs.new_user("zsm-bot")
        bot_room = await officer.create_room([bot_user])
        config = write_config(work, f"sqlite+aiosqlite:///{work / 'bot.db'}", sections={
            "matrix": {"homeserver": synapse.url, "user_id": bot_user, "password": PASSWORD, "rooms": [bot_room],
                       "device_id": "BENCHBOT", "sync_timeout_ms": 30000},
            "logging": {"level": "WARNING"},
        }, users={officer.user_id: "ovj"})
        stop = asyncio.Event()
        started: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        bot_task = asyncio.create_task(run_matrix(load_settings(config), stop=stop, started=started))
        echo, echo_task = await echo_client(hs, work / "stores" / "echo")
        echo_room = await officer.create_room([str(echo.user_id)])
        await officer.wait_member(bot_room, bot_user, timeout=60)
        await officer.wait_member(echo_room, str(echo.user_id), timeout=60)
        await measure(officer, bot_room, 5)  # warm-up: Olm/Megolm set-up on both sides
        await measure(officer, echo_room, 5)
        bot_ms: list[float] = []
        echo_ms: list[float] = []
        while len(bot_ms) < n:
            bot_ms += await measure(officer, bot_room, min(block, n - len(bot_ms)))
            echo_ms += await measure(officer, echo_room, min(block, n - len(echo_ms)))
        b50, b95, e50, e95 = pct(bot_ms, 50), pct(bot_ms, 95), pct(echo_ms, 50), pct(echo_ms, 95)
        print(f"!ping round trip, encrypted room, n={n} each, Synapse on loopback")
        print(f"  bot        p50 {b50:7.1f} ms   p95 {b95:7.1f} ms   mean {statistics.mean(bot_ms):7.1f} ms")
        print(f"  bare echo  p50 {e50:7.1f} ms   p95 {e95:7.1f} ms   mean {statistics.mean(echo_ms):7.1f} ms")
        print(f"  ratio      p50 {b50 / e50:7.2f}      p95 {b95 / e95:7.2f}      (target <= 1.15)")
        stop.set()
        await bot_task
        echo_task.cancel()
        await asyncio.gather(echo_task, return_exceptions=True)
        await echo.close()
        await officer.close()
    finally:
        await asyncio.to_thread(synapse.stop)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--block", type=int, default=20)
    args = ap.parse_args()
    asyncio.run(main(args.n, args.block))
