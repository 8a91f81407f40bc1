"""The signal: ``!instroom`` batches in the room and ``POST /api/instroom`` from a case system."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.transport.console import ConsoleTransport
from commands.vh_view import MINOR_NOTICE
from config.settings import ConfigError, load_settings
from domain.advies import Freshness
from domain.clock import FixedClock
from storage.models import AuditRecord, OutgoingMessage
from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW, bsn, markering, seed, start_bot

TOKEN = "instroom-token-0123456789"
ROOM = "!zsm:localhost"


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, database_url)
    await seed(b, markering(bsn(1), "utrecht"), markering(bsn(1), "zeeland", advies_datum=date(2025, 1, 1)),
               markering(bsn(2), "twente", geboortedatum=date(2011, 1, 1)))
    try:
        yield b
    finally:
        await b.close()


async def lookups(sessions: Any) -> list[AuditRecord]:
    async with sessions() as s:
        return list((await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging")
                                     .order_by(AuditRecord.id))).scalars())


async def test_batch_summary_known_where_and_how_fresh(bot: ConsoleBot) -> None:
    reply = await bot.say(f"!instroom {bsn(1)}, {bsn(2)} {bsn(3)}", as_role="kpc")
    assert "Instroom: 2 van 3 bekend" in reply
    vhs = bot.runtime.services.veiligheidshuizen
    line1 = next(line for line in reply.splitlines() if bsn(1)[-3:] in line and "bekend bij" in line)
    assert vhs.get("utrecht").naam in line1 and vhs.get("zeeland").naam in line1  # type: ignore[union-attr]
    assert Freshness.CURRENT.value in line1 and Freshness.NOT_CURRENT.value in line1
    line2 = next(line for line in reply.splitlines() if bsn(2)[-3:] in line and "bekend bij" in line)
    assert "minderjarig" in line2
    assert f"Niet bekend: BSN ******{bsn(3)[-3:]}" in reply
    assert "Voorwaardelijk sepot" not in reply  # the summary carries no advice text
    assert all(bsn(i) not in reply for i in (1, 2, 3))
    recs = await lookups(bot.runtime.sessions)
    assert [r.details["uitkomst"] for r in recs] == ["hit", "hit", "no-hit"]
    assert all(r.details["via"] == "instroom" and r.role == "kpc" for r in recs)


async def test_pasted_lines_and_duplicates(bot: ConsoleBot) -> None:
    reply = await bot.say(f"!instroom\n{bsn(1)}\n{bsn(3)}\n{bsn(1)}")
    assert "Instroom: 1 van 2 bekend" in reply


async def test_bad_id_rejects_batch_with_position(bot: ConsoleBot) -> None:
    reply = await bot.say(f"!instroom {bsn(1)} 123456789 abc")
    assert reply.startswith("Niets gecontroleerd") and "nr. 2:" in reply and "nr. 3:" in reply
    assert "elfproef" in reply and "!instroom opnieuw" in reply and "123456789" not in reply
    assert await lookups(bot.runtime.sessions) == []


async def test_empty_and_too_long_batches(bot: ConsoleBot) -> None:
    assert "Er ontbreekt <id>" in await bot.say("!instroom")
    assert "minstens één" in await bot.say("!instroom , ;")
    assert "maximaal 50" in await bot.say("!instroom " + " ".join(bsn(i) for i in range(51)))


async def test_police_refused(bot: ConsoleBot) -> None:
    assert "U mag !instroom niet gebruiken" in await bot.say(f"!instroom {bsn(1)}", as_role="politie")


@dataclass
class Api:
    runtime: Runtime
    out: io.StringIO
    url: str

    async def post(self, body: Any, *, token: str | None = TOKEN, raw: bytes | None = None
                   ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with aiohttp.ClientSession() as client, client.post(
            self.url, data=raw if raw is not None else None, json=None if raw is not None else body, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    async def posted(self) -> str:
        assert self.runtime.sender is not None
        await self.runtime.sender.drain()
        return self.out.getvalue()


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    config = write_config(tmp_path, database_url, sections={
        "http": {"enabled": True, "port": 0}, "instroom": {"token": TOKEN, "room": ROOM}})
    runtime = Runtime(load_settings(config), clock=FixedClock(NOW))
    out = io.StringIO()
    await runtime.start(ConsoleTransport(out))
    # the signal room's readers, as the Matrix transport reports them: the OM roles (tests/test_audience.py: others)
    await runtime.members_changed(ROOM, frozenset({"@ovj:localhost", "@kpc:localhost"}))
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(bsn(1), "utrecht"), markering(bsn(2), "rotterdam", geboortedatum=date(2012, 5, 5))],
                     NOW)
    try:
        yield Api(runtime, out, f"http://127.0.0.1:{runtime.http_port}/api/instroom")
    finally:
        await runtime.close()


async def test_api_posts_signal_for_known_only(api: Api) -> None:
    status, body = await api.post({"ids": [bsn(1), bsn(2), bsn(3)], "bron": "BOSZ", "referentie": "b-1"})
    assert status == 200 and body == {"gecontroleerd": 3, "bekend": 2, "gemeld": True}
    posted = await api.posted()
    assert posted.startswith(f"[naar {ROOM}] Instroomsignaal van BOSZ: 2 van 3 bekend")
    assert bsn(1)[-3:] in posted and bsn(2)[-3:] in posted and bsn(3)[-3:] not in posted
    assert "Niet bekend" not in posted and all(bsn(i) not in posted for i in (1, 2, 3))
    assert "minderjarig" in posted and MINOR_NOTICE not in posted
    recs = await lookups(api.runtime.sessions)
    assert [r.details["uitkomst"] for r in recs] == ["hit", "hit", "no-hit"]
    assert all(r.actor == "api:instroom" and r.details["referentie"] == "b-1" for r in recs)
    async with api.runtime.sessions() as s:
        msgs = (await s.execute(select(OutgoingMessage).where(OutgoingMessage.room_id == ROOM))).scalars().all()
    assert len(msgs) == 1 and msgs[0].carries_case_data


async def test_api_same_referentie_posts_once(api: Api) -> None:
    for _ in range(2):
        assert (await api.post({"ids": [bsn(1)], "referentie": "same"}))[0] == 200
    assert (await api.posted()).count("Instroomsignaal") == 1


async def test_api_nobody_known_posts_nothing(api: Api) -> None:
    status, body = await api.post({"ids": [bsn(3)]})
    assert status == 200 and body["bekend"] == 0 and body["gemeld"] is False
    assert await api.posted() == ""


@pytest.mark.parametrize("token", [None, "wrong", ""])
async def test_api_bad_token_is_401(api: Api, token: str | None) -> None:
    status, body = await api.post({"ids": [bsn(1)]}, token=token)
    assert status == 401 and "bearer-token" in body["fout"]
    assert await lookups(api.runtime.sessions) == [] and await api.posted() == ""


@pytest.mark.parametrize(("raw", "body", "expected"), [
    (b"{niet json", None, "geen geldige JSON"),
    (b"\xff\xfe", None, "geen geldige JSON"),
    (None, [bsn(1)], "JSON-object"),
    (None, {"ids": []}, "niet-lege lijst"),
    (None, {"ids": bsn(1)}, "niet-lege lijst"),
    (None, {"ids": [123456782]}, "niet-lege lijst"),
    (None, {"id": [bsn(1)]}, "niet-lege lijst"),
    (None, {"ids": [bsn(1)] * 51}, "maximaal 50"),
    (None, {"ids": [bsn(1)], "referentie": "spatie erin"}, "referentie"),
    (None, {"ids": [bsn(1)], "bron": 5}, "bron"),
])
async def test_api_bad_request_is_400(api: Api, raw: bytes | None, body: Any, expected: str) -> None:
    status, answer = await api.post(body, raw=raw)
    assert status == 400 and expected in answer["fout"]
    assert await lookups(api.runtime.sessions) == []


async def test_api_bad_id_is_422_with_positions(api: Api) -> None:
    status, body = await api.post({"ids": [bsn(1), "123456789", "12"]})
    assert status == 422 and "niets gecontroleerd" in body["fout"]
    assert [e["positie"] for e in body["ongeldig"]] == [2, 3] and "elfproef" in body["ongeldig"][0]["reden"]
    assert "123456789" not in str(body)
    assert await lookups(api.runtime.sessions) == [] and await api.posted() == ""


async def test_api_registry_down_is_503(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url, sections={
        "http": {"enabled": True, "port": 0}, "instroom": {"token": TOKEN, "room": ROOM},
        "registry": {"adapter": "http", "url": "http://127.0.0.1:9/api", "token": "x", "retries": 0}})
    runtime = Runtime(load_settings(config), clock=FixedClock(NOW))
    await runtime.start(ConsoleTransport(io.StringIO()))
    try:
        async with aiohttp.ClientSession() as client, client.post(
            f"http://127.0.0.1:{runtime.http_port}/api/instroom", json={"ids": [bsn(1)]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp:
            assert resp.status == 503 and "niet bereikbaar" in (await resp.json())["fout"]
    finally:
        await runtime.close()


async def test_api_absent_without_token(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url, sections={"http": {"enabled": True, "port": 0}})
    runtime = Runtime(load_settings(config))
    await runtime.start(ConsoleTransport(io.StringIO()))
    try:
        async with aiohttp.ClientSession() as client, client.post(
            f"http://127.0.0.1:{runtime.http_port}/api/instroom", json={"ids": [bsn(1)]}) as resp:
            assert resp.status in (404, 405)
    finally:
        await runtime.close()


@pytest.mark.parametrize(("section", "message"), [
    ({"token": "kort"}, "te kort"),
    ({"token": TOKEN}, "instroom.room"),
    ({"token": TOKEN, "room": "zsm"}, "instroom.room"),
])
def test_bad_instroom_config(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sections={"instroom": section})
    with pytest.raises(ConfigError, match=message):
        Runtime(load_settings(config))


def test_check_config_reports_registry_and_instroom_problems(tmp_path: Path) -> None:
    from cli.config_check import check

    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sections={
        "http": {"enabled": False}, "instroom": {"token": TOKEN, "room": ROOM},
        "registry": {"adapter": "http", "url": "http://gcos.example/api", "token": "t"}})
    problems, notes = check(load_settings(config))
    assert any("http.enabled = false" in p for p in problems)
    assert any("zonder TLS" in n for n in notes) and any("niet in matrix.rooms" in n for n in notes)
