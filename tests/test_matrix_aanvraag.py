"""Advies op aanvraag through the real homeserver: the on-call room is pinged with a mention, a ✅ reaction by the
person on duty acknowledges the request, and the answer reaches the ZSM room as a threaded reply."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from domain.advies import Markering
from domain.clock import local
from storage.aanvraag_models import AdviesAanvraag
from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.matrix import PASSWORD, Homeserver
from tests.harness.matrix_bot import InProcessBot

pytestmark = pytest.mark.matrix
BSN = "123456782"


async def test_ping_reaction_ack_and_answer(homeserver: Homeserver, tmp_path: Path) -> None:
    kpc = await homeserver.officer("kpc")
    duty = await homeserver.officer("dienst")
    bot_user = homeserver.new_user("zsm-bot")
    zsm_room = await kpc.create_room([bot_user])
    oncall_room = await duty.create_room([bot_user])
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", sections={
        "matrix": {"homeserver": homeserver.synapse.url, "user_id": bot_user, "password": PASSWORD,
                   "rooms": [zsm_room, oncall_room], "device_id": "BOTAANVRAAG", "sync_timeout_ms": 1000},
        "aanvraag": {"link_sleutel": "test-link-sleutel", "basis_url": "http://127.0.0.1:1",
                     "vh.utrecht.doelgroepen": ["huiselijk geweld"], "vh.utrecht.room": oncall_room,
                     "vh.utrecht.termijn": "24u"},
    }, users={kpc.user_id: "kpc", duty.user_id: "bereikbaarheidsdienst"})
    bot = InProcessBot(config)
    try:
        runtime = await bot.runtime()
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [Markering(
                bsn=BSN, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis="utrecht",
                doelgroep="huiselijk geweld", status="actief", advies="Oud advies.", geadviseerde_afdoening=None,
                advies_datum=date(2025, 1, 1), regisseur="mw. De Groot",
            )], runtime.clock.now())
        await kpc.wait_member(zsm_room, bot_user, timeout=60)
        await duty.wait_member(oncall_room, bot_user, timeout=60)
        now = local(runtime.clock.now())
        van, tot = (now - timedelta(hours=1)).strftime("%d-%m-%Y %H:%M"), (now + timedelta(hours=8)).strftime(
            "%d-%m-%Y %H:%M")
        roster = await kpc.wait_reply(await kpc.send(zsm_room, f"!dienst utrecht {duty.user_id} {van} {tot}"))
        assert "Onbekend" not in roster.body and "niet" not in roster.body.split("\n")[0].lower(), roster.body
        request = (f"!aanvraag {BSN} 24u feit: mishandeling partner voornemen: voorwaardelijk sepot "
                   "vraag: actueel advies?")
        opened = await kpc.wait_reply(await kpc.send(zsm_room, request))
        assert "Aanvraag A" in opened.body, opened.body
        ping = await duty.wait_for(lambda e: e.sender == bot_user and duty.user_id in
                                   (e.source["content"].get("m.mentions") or {}).get("user_ids", []), timeout=60)
        # the on-call person sees the identifier their house may receive (utrecht: BSN) and the sketch
        assert ping.decrypted and f"BSN {BSN}" in ping.body and "mishandeling partner" in ping.body
        await duty.client.room_send(oncall_room, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": ping.event_id, "key": "✅"}}, ignore_unverified_devices=True)
        for _ in range(100):
            async with runtime.sessions() as s:
                req = (await s.execute(select(AdviesAanvraag))).scalar_one()
            if req.state != "open":
                break
            await asyncio.sleep(0.1)
        assert req.state == "bevestigd", req.state
        ref = f"A{req.id}"
        answered = await duty.wait_reply(await duty.send(oncall_room, f"!advies {ref} vs Voorwaardelijk sepot."))
        assert "Onbekend" not in answered.body
        answer = await kpc.wait_for(lambda e: e.sender == bot_user and "Voorwaardelijk sepot." in e.body, timeout=60)
        rel = answer.source["content"].get("m.relates_to") or {}
        assert rel.get("rel_type") == "m.thread" and kpc.user_id in answer.source["content"]["m.mentions"]["user_ids"]
    finally:
        await bot.close()
        await kpc.close()
        await duty.close()
