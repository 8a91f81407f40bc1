"""The room's audience against a real Synapse, in encrypted rooms: the bot reads its room's members from the room
state and follows every membership change. While only the OvJ reads the room, a !check answer is shown there; a
politie member who joins afterwards makes the bot tell the room once; from then on the room gets only the notice
with the masked id and the OvJ the details in the bot's encrypted direct room (PRIVACY.md: every reader counts)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.markings import bsn, markering
from tests.harness.matrix import PASSWORD, Homeserver
from tests.harness.matrix_bot import InProcessBot

pytestmark = pytest.mark.matrix


async def test_a_politie_member_joining_is_announced_and_then_gets_only_the_notice(
        homeserver: Homeserver, tmp_path: Path) -> None:
    ovj = await homeserver.officer("ovj")
    politie = await homeserver.officer("politie")
    bot_user = homeserver.new_user("zsm-bot")
    room_id = await ovj.create_room([bot_user])
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", sections={
        "matrix": {"homeserver": homeserver.synapse.url, "user_id": bot_user, "password": PASSWORD,
                   "rooms": [room_id], "device_id": "BOT" + uuid.uuid4().hex[:8].upper(), "sync_timeout_ms": 1000},
        "http": {"enabled": False, "port": 0},
    }, users={ovj.user_id: "ovj", politie.user_id: "politie"})
    bot = InProcessBot(config)
    try:
        await ovj.wait_member(room_id, bot_user, timeout=60)
        runtime = await bot.runtime()
        first, second = bsn(80), bsn(81)
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [markering(first), markering(second)], runtime.clock.now())

        # Only the OvJ reads the room: the answer is shown there.
        shown = await ovj.wait_reply(await ovj.send(room_id, f"!check {first}"), timeout=60)
        assert "Advies: Voorwaardelijk sepot" in shown.body and first not in shown.body

        # A politie member joins: the room is told once.
        await ovj.client.room_invite(room_id, politie.user_id)
        await politie.accept_invite()
        told = await ovj.wait_for(lambda e: e.body.startswith("Let op: ") and politie.user_id in e.body,
                                  timeout=60)
        assert told.decrypted and "(politie)" in told.body

        # The next answer: the room (and the politie member) reads only the notice with the masked id ...
        await ovj.wait_member(room_id, politie.user_id)
        ask = await ovj.send(room_id, f"!check {second}")
        short = await ovj.wait_reply(ask, timeout=60)
        masked = "******" + second[-3:]
        assert short.body == f"Antwoord op !check BSN {masked} staat in uw directe bericht van de bot."
        seen_by_police = await politie.wait_reply(ask, timeout=60)
        assert seen_by_police.body == short.body
        # ... and the OvJ the details in the encrypted direct room with the bot alone.
        dm = await ovj.accept_invite()
        details = await ovj.wait_for(lambda e: e.body.startswith(f"Check BSN {masked}"), timeout=90)
        assert details.decrypted and "Advies: Voorwaardelijk sepot" in details.body
        assert set(ovj.client.rooms[dm].users) == {ovj.user_id, bot_user}
        assert not any("Advies:" in e.body for e in politie.replies)
        assert sum(e.body.startswith("Let op: ") for e in ovj.replies) == 1
    finally:
        await bot.close()
        await ovj.close()
        await politie.close()
