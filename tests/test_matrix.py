"""The bot against a real Synapse in encrypted rooms: replies, refusals, crashes, restarts and rate limits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from devtools.synapse import free_port
from tests.harness.config import write_config
from tests.harness.matrix import PASSWORD, Homeserver
from tests.harness.matrix_bot import InProcessBot, Setup, make_setup

pytestmark = pytest.mark.matrix
REPO = Path(__file__).resolve().parents[1]


def _thread_of(event: Any) -> dict[str, Any]:
    return dict(event.source["content"].get("m.relates_to") or {})


async def test_help_and_ping_get_encrypted_threaded_replies(running: tuple[Setup, InProcessBot]) -> None:
    setup, _ = running
    ping = await setup.officer.send(setup.room_id, "!ping")
    reply = await setup.officer.wait_reply(ping, timeout=60)
    assert reply.body == "pong"
    assert reply.decrypted, "the reply must arrive encrypted"
    rel = _thread_of(reply)
    assert rel["rel_type"] == "m.thread" and rel["event_id"] == ping
    help_event = await setup.officer.send(setup.room_id, "!help")
    listing = await setup.officer.wait_reply(help_event)
    assert "!ping" in listing.body and listing.decrypted
    assert "<code>!ping</code>" in listing.source["content"]["formatted_body"]


async def test_unknown_user_gets_refusal_and_nothing_done(homeserver: Homeserver,
                                                          running: tuple[Setup, InProcessBot]) -> None:
    setup, _ = running
    stranger = await homeserver.officer("stranger")
    try:
        invite = await setup.officer.client.room_invite(setup.room_id, stranger.user_id)
        assert not hasattr(invite, "status_code") or invite.status_code is None
        await stranger.client.join(setup.room_id)
        await setup.officer.wait_member(setup.room_id, stranger.user_id)
        await stranger.wait_member(setup.room_id, setup.bot_user)
        ev = await stranger.send(setup.room_id, "!ping")
        reply = await stranger.wait_reply(ev, timeout=30)
        assert "geen rol" in reply.body and "pong" not in reply.body
    finally:
        await stranger.close()


async def test_unconfigured_room_is_not_joined(homeserver: Homeserver, running: tuple[Setup, InProcessBot]) -> None:
    setup, _ = running
    other = await setup.officer.create_room([setup.bot_user])
    ev = await setup.officer.send(setup.room_id, "!ping")
    await setup.officer.wait_reply(ev)  # the bot has synced past the invite
    ev_other = await setup.officer.send(other, "!ping")
    await asyncio.sleep(2)
    assert setup.officer.replies_to(ev_other) == []
    members = await setup.officer.client.joined_members(other)
    assert setup.bot_user not in [m.user_id for m in members.members]


async def test_unencrypted_room_is_refused_once(homeserver: Homeserver, tmp_path: Path) -> None:
    officer = await homeserver.officer()
    bot_user = homeserver.new_user("zsm-bot")
    plain = await officer.create_room([bot_user], encrypted=False)
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", sections={
        "matrix": {"homeserver": homeserver.synapse.url, "user_id": bot_user, "password": PASSWORD,
                   "rooms": [plain], "device_id": "BOTPLAIN", "sync_timeout_ms": 1000},
    }, users={officer.user_id: "ovj"})
    bot = InProcessBot(config)
    try:
        await officer.wait_member(plain, bot_user)
        first = await officer.send(plain, "!ping")
        notice = await officer.wait_for(lambda e: e.sender == bot_user, timeout=30)
        assert "niet end-to-end versleuteld" in notice.body
        second = await officer.send(plain, "!ping")
        await asyncio.sleep(2)
        from_bot = [e for e in officer.replies if e.sender == bot_user]
        assert len(from_bot) == 1, "the refusal is said once"
        assert not officer.replies_to(first) and not officer.replies_to(second)
    finally:
        await bot.close()
        await officer.close()


async def test_health_ready_and_metrics(homeserver: Homeserver, tmp_path: Path) -> None:
    port = free_port()
    setup = await make_setup(homeserver, tmp_path, http_port=port)
    bot = InProcessBot(setup.config)
    try:
        await setup.officer.wait_member(setup.room_id, setup.bot_user)
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=60)

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        assert (await asyncio.to_thread(get, "/healthz"))[0] == 200
        status, body = await asyncio.to_thread(get, "/readyz")
        assert status == 200, body
        status, metrics = await asyncio.to_thread(get, "/metrics")
        assert status == 200
        assert 'zsm_commands_handled_total{command="ping",outcome="handled"} 1.0' in metrics
        assert "zsm_sync_lag_seconds" in metrics and "zsm_send_queue_length" in metrics
    finally:
        await bot.close()
        await setup.officer.close()


async def test_homeserver_restart_is_survived(homeserver: Homeserver, running: tuple[Setup, InProcessBot]) -> None:
    setup, _ = running
    await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=60)
    await asyncio.to_thread(homeserver.synapse.stop)
    await asyncio.sleep(3)  # the bot's syncs fail meanwhile
    await asyncio.to_thread(homeserver.synapse.start)
    ev = await setup.officer.send(setup.room_id, "!ping")
    reply = await setup.officer.wait_reply(ev, timeout=90)
    assert reply.body == "pong"


async def test_burst_of_50_under_rate_limit_loses_none(homeserver: Homeserver, tmp_path: Path) -> None:
    port = free_port()
    setup = await make_setup(homeserver, tmp_path, lift_bot=False, http_port=port,
                             matrix={"commands_per_minute": 600})
    # A low per-user rate and a backlog answered at once (the bot is down while the officer types), so the 429s
    # come from the homeserver's limiter, not from how fast this (busy) machine happens to run.
    homeserver.synapse.limit_rate(homeserver.admin_token, setup.bot_user, per_second=5, burst=3)
    bot = InProcessBot(setup.config)
    try:
        await setup.officer.wait_member(setup.room_id, setup.bot_user)
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=60)
        await bot.close()
        sent = [await setup.officer.send(setup.room_id, "!ping") for _ in range(50)]
        bot = InProcessBot(setup.config)
        for ev in sent:
            await setup.officer.wait_reply(ev, timeout=120)
        await asyncio.sleep(1)
        assert all(len(setup.officer.replies_to(ev)) == 1 for ev in sent)
        def fetch() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())

        metrics = await asyncio.to_thread(fetch)
        limited = [line for line in metrics.splitlines() if line.startswith("zsm_rate_limited_total")]
        assert limited and float(limited[0].split()[-1]) > 0, "the homeserver's rate limit must have been hit"
    finally:
        await bot.close()
        await setup.officer.close()


async def test_sigkill_mid_work_then_restart_answers_each_once(homeserver: Homeserver, tmp_path: Path) -> None:
    setup = await make_setup(homeserver, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "cli", "run", "--config", str(setup.config)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "bot.log", "ab"))

    proc = start()
    try:
        await setup.officer.wait_member(setup.room_id, setup.bot_user, timeout=60)
        first = await setup.officer.send(setup.room_id, "!ping")
        await setup.officer.wait_reply(first, timeout=60)
        burst = [await setup.officer.send(setup.room_id, "!help") for _ in range(8)]
        proc.send_signal(signal.SIGKILL)  # in the middle of handling and sending the burst
        proc.wait()
        during = [await setup.officer.send(setup.room_id, "!ping") for _ in range(3)]  # while the bot is down
        proc = start()
        for ev in [first, *burst, *during]:
            await setup.officer.wait_reply(ev, timeout=90)
        await asyncio.sleep(3)
        counts = {ev: len(setup.officer.replies_to(ev)) for ev in [first, *burst, *during]}
        assert set(counts.values()) == {1}, counts
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        await setup.officer.close()


async def test_access_token_login_and_wrong_device_is_a_config_error(homeserver: Homeserver, tmp_path: Path) -> None:
    from domain.errors import ConfigError

    officer = await homeserver.officer()
    local = f"zsm-bot-{uuid.uuid4().hex[:8]}"
    info = homeserver.synapse.register(local, PASSWORD)
    bot_user, token, device = str(info["user_id"]), str(info["access_token"]), str(info["device_id"])
    homeserver.synapse.lift_rate_limit(homeserver.admin_token, bot_user)
    room = await officer.create_room([bot_user])
    try:
        for device_id, works in (("WRONGDEVICE", False), (device, True)):
            config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", sections={
                "matrix": {"homeserver": homeserver.synapse.url, "user_id": bot_user, "access_token": token,
                           "rooms": [room], "device_id": device_id, "sync_timeout_ms": 1000},
            }, users={officer.user_id: "ovj"})
            bot = InProcessBot(config)
            if not works:
                with pytest.raises(ConfigError, match=r"matrix\.device_id"):
                    await asyncio.wait_for(bot.task, 30)
                continue
            try:
                await officer.wait_member(room, bot_user, timeout=30)
                reply = await officer.wait_reply(await officer.send(room, "!ping"), timeout=60)
                assert reply.body == "pong"
            finally:
                await bot.close()
    finally:
        await officer.close()


async def test_bot_device_is_cross_signed_and_verifiable(running: tuple[Setup, InProcessBot]) -> None:
    """Another client fetches the bot's keys and checks master -> self-signing -> device signatures."""
    from bot.transport.cross_signing import verify

    setup, bot = running
    await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=60)
    runtime = await bot.runtime()
    for _ in range(100):
        if runtime.metrics.cross_signed._value.get() == 1:
            break
        await asyncio.sleep(0.1)
    client = setup.officer.client
    import aiohttp

    async with aiohttp.ClientSession() as http, http.post(f"{client.homeserver}/_matrix/client/v3/keys/query",
                         json={"device_keys": {setup.bot_user: []}},
                         headers={"Authorization": f"Bearer {client.access_token}"}) as r:
        keys = await r.json()
    master = keys["master_keys"][setup.bot_user]
    ssk = keys["self_signing_keys"][setup.bot_user]
    (mkid, mpub), = master["keys"].items()
    (skid, spub), = ssk["keys"].items()
    assert verify(ssk, setup.bot_user, mkid, mpub), "self-signing key signed by the master key"
    device = keys["device_keys"][setup.bot_user][bot.settings.matrix.device_id]
    assert verify(device, setup.bot_user, skid, spub), "the bot's device signed by its self-signing key"
    assert not verify(device, setup.bot_user, skid, mpub), "a wrong key does not verify"
    store = bot.settings.matrix.store_path / "cross_signing.json"
    assert store.exists() and "seed" not in store.read_text() and store.stat().st_mode & 0o077 == 0


async def test_check_main_reply_through_the_homeserver(running: tuple[Setup, InProcessBot]) -> None:
    from storage.registry_queries import upsert
    from tests.harness.markings import bsn, markering

    setup, bot = running
    runtime = await bot.runtime()
    person = bsn(21)
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(person, "utrecht")], runtime.clock.now())
    ev = await setup.officer.send(setup.room_id, f"!check {person} zaak: 10/000001-26")
    reply = await setup.officer.wait_reply(ev, timeout=60)
    assert reply.decrypted and "Bekend bij 1 veiligheidshuis" in reply.body
    assert "Veiligheidshuis regio Utrecht" in reply.body and person not in reply.body
    assert "******" + person[-3:] in reply.source["content"]["formatted_body"]
    miss = await setup.officer.wait_reply(await setup.officer.send(setup.room_id, f"!check {bsn(22)}"))
    assert "Niet bekend" in miss.body and "!aanmelden" in miss.body


async def test_check_details_go_to_a_direct_encrypted_room(homeserver: Homeserver, tmp_path: Path) -> None:
    """``[check] details_direct``: the shared room learns only that an answer was given; the requester gets the
    details in an encrypted direct room that the bot creates, and only once they have joined it."""
    from storage.registry_queries import upsert
    from tests.harness.markings import bsn, markering

    setup = await make_setup(homeserver, tmp_path, sections={"check": {"details_direct": True}})
    bot = InProcessBot(setup.config)
    await setup.officer.wait_member(setup.room_id, setup.bot_user)
    try:
        runtime = await bot.runtime()
        person = bsn(23)
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [markering(person, "utrecht")], runtime.clock.now())
        ev = await setup.officer.send(setup.room_id, f"!check {person}")
        short = await setup.officer.wait_reply(ev, timeout=60)
        assert "directe bericht" in short.body and "Utrecht" not in short.body and person not in short.body
        dm = await setup.officer.accept_invite()
        assert dm != setup.room_id
        details = await setup.officer.wait_for(lambda e: "Bekend bij 1 veiligheidshuis" in e.body, timeout=90)
        assert details.decrypted and "Veiligheidshuis regio Utrecht" in details.body and person not in details.body
        room = setup.officer.client.rooms[dm]
        assert room.encrypted and set(room.users) == {setup.officer.user_id, setup.bot_user}
        # a second !check reuses the same direct room
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, f"!check {bsn(24)}"), timeout=60)
        await setup.officer.wait_for(lambda e: "Niet bekend" in e.body, timeout=60)
        assert not setup.officer.client.invited_rooms
    finally:
        await bot.close()
        await setup.officer.close()


async def test_device_is_signed_again_when_its_keys_change(homeserver: Homeserver, tmp_path: Path) -> None:
    """The crypto store is lost and the bot comes back as a new device (new keys): at start it signs the new
    device with the self-signing key it kept, so master -> self-signing -> device holds again, same master key."""
    import shutil

    import aiohttp

    from bot.transport.cross_signing import verify

    setup = await make_setup(homeserver, tmp_path)

    async def device_and_ssk() -> tuple[dict[str, Any], dict[str, Any]]:
        client = setup.officer.client
        async with aiohttp.ClientSession() as http, http.post(
                f"{client.homeserver}/_matrix/client/v3/keys/query", json={"device_keys": {setup.bot_user: []}},
                headers={"Authorization": f"Bearer {client.access_token}"}) as r:
            keys = await r.json()
        return (keys["device_keys"][setup.bot_user][settings.matrix.device_id],
                keys["self_signing_keys"][setup.bot_user], keys["master_keys"][setup.bot_user])

    masters = []
    try:
        for round_ in range(2):
            settings = load_settings(setup.config)
            bot = InProcessBot(setup.config)
            runtime = await bot.runtime()
            for _ in range(200):
                if runtime.metrics.cross_signed._value.get() == 1:
                    break
                await asyncio.sleep(0.1)
            device, ssk, master = await device_and_ssk()
            (skid, spub), = ssk["keys"].items()
            assert verify(device, setup.bot_user, skid, spub), f"round {round_}: device not signed"
            masters.append(master["keys"])
            await bot.close()
            if round_ == 0:
                store = settings.matrix.store_path
                for item in store.iterdir():
                    if item.name != "cross_signing.json":
                        shutil.rmtree(item) if item.is_dir() else item.unlink()
                text = setup.config.read_text().replace(settings.matrix.device_id, settings.matrix.device_id + "B")
                setup.config.write_text(text)
        assert masters[0] == masters[1], "the master key is kept, so users who verified the bot keep trusting it"
    finally:
        await setup.officer.close()
