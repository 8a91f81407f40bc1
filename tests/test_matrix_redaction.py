"""Redaction of the bot's own case-data messages against the real Synapse: another member fetches the event and
sees it redacted (empty content, ``unsigned.redacted_because``), after the retention period and at once on a
technisch sepot 01; messages without case data stay; a redaction that fails while Synapse is down is retried."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from storage.models import AuditRecord
from storage.registry_queries import upsert
from tests.harness.markings import bsn, markering
from tests.harness.matrix import Homeserver, Officer
from tests.harness.matrix_bot import InProcessBot, Setup

pytestmark = pytest.mark.matrix


async def raw_event(officer: Officer, room_id: str, event_id: str) -> dict[str, Any]:
    client = officer.client
    url = (f"{client.homeserver}/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/event/"
           f"{urllib.parse.quote(event_id)}")
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {client.access_token}"}) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


def is_redacted(event: dict[str, Any]) -> bool:
    return "redacted_because" in event.get("unsigned", {}) and not event.get("content")


async def wait_redacted(officer: Officer, room_id: str, event_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = await raw_event(officer, room_id, event_id)
        if is_redacted(event):
            return event
        await asyncio.sleep(0.3)
    raise AssertionError(f"{event_id} was not redacted within {timeout}s")


async def test_case_messages_redacted_after_retention_and_at_sepot_01(running: tuple[Setup, InProcessBot]) -> None:
    setup, bot = running
    runtime = await bot.runtime()
    officer, room = setup.officer, setup.room_id
    person, decided = bsn(41), bsn(42)
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(person), markering(decided, geadviseerde_afdoening="osb")], runtime.clock.now())

    check = await officer.wait_reply(await officer.send(room, f"!check {person}"), timeout=60)
    ping = await officer.wait_reply(await officer.send(room, "!ping"))
    assert "Bekend bij" in check.body and ping.body == "pong"

    # Within the period nothing happens; after it the case reply goes and the pong stays.
    assert (await runtime.purge_now(now=runtime.clock.now() + timedelta(days=29)))["te_redigeren"] == 0
    assert (await runtime.purge_now(now=runtime.clock.now() + timedelta(days=31)))["te_redigeren"] == 1
    redacted = await wait_redacted(officer, room, check.event_id)
    assert redacted["unsigned"]["redacted_because"]["sender"] == setup.bot_user
    assert not is_redacted(await raw_event(officer, room, ping.event_id))

    # Sepot 01: the earlier !check and !besluit replies about this person go at once, without a purge.
    earlier_check = await officer.wait_reply(await officer.send(room, f"!check {decided}"))
    besluit = await officer.wait_reply(await officer.send(room, f"!besluit {decided} osb"))
    assert "Besluit vastgelegd" in besluit.body
    sepot = await officer.wait_reply(await officer.send(room, f"!besluit {decided} 01"))
    assert "2 eerder bericht(en) van de bot over de persoon worden uit de rooms verwijderd" in sepot.body
    for event in (earlier_check, besluit):
        await wait_redacted(officer, room, event.event_id, timeout=30)
    assert not is_redacted(await raw_event(officer, room, sepot.event_id))
    assert not is_redacted(await raw_event(officer, room, ping.event_id))
    async with runtime.sessions() as s:
        kinds = (await s.execute(select(AuditRecord.details).where(AuditRecord.kind == "bericht.geredigeerd"))).all()
    assert sum(d["aantal"] for d, in kinds) == 3


async def test_redaction_while_synapse_is_down_is_retried(homeserver: Homeserver,
                                                          running: tuple[Setup, InProcessBot]) -> None:
    setup, bot = running
    runtime = await bot.runtime()
    officer, room = setup.officer, setup.room_id
    person = bsn(43)
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(person)], runtime.clock.now())
    check = await officer.wait_reply(await officer.send(room, f"!check {person}"), timeout=60)
    errors = runtime.metrics.redaction_errors
    await asyncio.to_thread(homeserver.synapse.stop)
    try:
        assert (await runtime.purge_now(now=runtime.clock.now() + timedelta(days=31)))["te_redigeren"] == 1
        deadline = time.monotonic() + 60
        while errors._value.get() == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert errors._value.get() >= 1, "the redaction was attempted while Synapse was down"
        assert runtime.redactor and await runtime.redactor.pending_count() == 1
    finally:
        await asyncio.to_thread(homeserver.synapse.start)
    await wait_redacted(officer, room, check.event_id, timeout=90)
    assert runtime.redactor and await runtime.redactor.pending_count() == 0
