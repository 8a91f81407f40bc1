"""The HTTP registry adapter against a real aiohttp server that serves a GCOS-like API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot.dispatcher import IncomingCommand
from bot.transport.console import CONSOLE_ROOM
from config.registry import RegistryHttpSettings
from config.settings import ConfigError
from domain.identifiers import parse_person_id
from integrations.registry.base import RegistryUnavailable
from integrations.registry.http import HttpRegistry
from storage.models import AuditRecord, BotState
from tests.harness.config import user_for
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn, start_bot

TOKEN = "gcos-test-token-123"


@dataclass
class FakeGcos:
    """Serves ``GET /api/markeringen``; behaviour per test through the fields."""

    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_first: int = 0          # answer 503 this many times first
    delay: float = 0.0
    body: bytes | None = None    # raw body instead of JSON
    status: int = 200
    calls: int = 0
    seen_params: list[dict[str, str]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set: every answer waits for it (a registry that is slow right now)
    entered: asyncio.Event = field(default_factory=asyncio.Event)  # a request has arrived

    def release(self) -> None:
        """Let the held answers go (and every later one through at once)."""
        if self.gate is not None:
            self.gate.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.seen_params.append(dict(request.query))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"error": "busy"}, status=503)
        if self.body is not None:
            return web.Response(body=self.body, status=self.status, content_type="application/json")
        if self.status != 200:
            return web.json_response({"error": "x"}, status=self.status)
        key = request.query.get("bsn") or request.query.get("skn") or ""
        items = self.data.get(key)
        if items is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response({"markeringen": items})


def gcos_item(bsn_value: str, vh: str = "zeeland", **kw: Any) -> dict[str, Any]:
    item = {"bsn": bsn_value, "skn": "23456789", "geboortedatum": "2009-01-20", "veiligheidshuis": vh,
            "doelgroep": "jeugdige veelpleger", "status": "actief", "advies": "Halt-afdoening passend.",
            "geadviseerde_afdoening": "HALT", "advies_datum": "2026-05-01", "regisseur": "P. Zeeland, 0118-123456",
            "huishouden": "ja"}
    item.update(kw)
    return item


@pytest.fixture
async def gcos() -> AsyncIterator[tuple[FakeGcos, str]]:
    fake = FakeGcos()
    app = web.Application()
    app.router.add_get("/api/markeringen", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}/api"
    finally:
        await runner.cleanup()


def registry(url: str, **kw: Any) -> HttpRegistry:
    cfg: dict[str, Any] = {"url": url, "token": TOKEN, "timeout_seconds": 0.5, "retries": 2,
                           "backoff_seconds": 0.01}
    cfg.update(kw)
    return HttpRegistry(RegistryHttpSettings(**cfg))


async def test_lookup_returns_markings_sorted_with_source(gcos: tuple[FakeGcos, str]) -> None:
    fake, url = gcos
    person = bsn(20)
    fake.data[person] = [gcos_item(person, "zeeland"), gcos_item(person, "breda", huishouden=False, skn=None,
                                                                 geadviseerde_afdoening="")]
    reg = registry(url)
    try:
        found = await reg.lookup(parse_person_id(person))
    finally:
        await reg.close()
    assert [m.veiligheidshuis for m in found] == ["breda", "zeeland"]
    assert found[1].huishouden and not found[0].huishouden and found[0].geadviseerde_afdoening is None
    assert found[0].bron == "GCOS" and fake.seen_params == [{"bsn": person}]


async def test_lookup_by_skn_and_unknown_is_empty(gcos: tuple[FakeGcos, str]) -> None:
    fake, url = gcos
    fake.data["23456789"] = [gcos_item(bsn(21))]
    reg = registry(url)
    try:
        assert len(await reg.lookup(parse_person_id("skn:23456789"))) == 1
        assert await reg.lookup(parse_person_id(bsn(22))) == []
    finally:
        await reg.close()
    assert fake.seen_params[0] == {"skn": "23456789"}


async def test_retries_with_backoff_then_succeeds(gcos: tuple[FakeGcos, str]) -> None:
    fake, url = gcos
    fake.data[bsn(23)] = [gcos_item(bsn(23))]
    fake.fail_first = 2
    reg = registry(url, retries=2)
    try:
        assert len(await reg.lookup(parse_person_id(bsn(23)))) == 1
    finally:
        await reg.close()
    assert fake.calls == 3


async def test_gives_up_after_retries(gcos: tuple[FakeGcos, str]) -> None:
    fake, url = gcos
    fake.fail_first = 10
    reg = registry(url, retries=1)
    try:
        with pytest.raises(RegistryUnavailable):
            await reg.lookup(parse_person_id(bsn(23)))
    finally:
        await reg.close()
    assert fake.calls == 2


async def test_timeout_never_hangs(gcos: tuple[FakeGcos, str]) -> None:
    fake, url = gcos
    fake.delay = 1
    reg = registry(url, timeout_seconds=0.2, retries=1)
    started = time.monotonic()
    try:
        with pytest.raises(RegistryUnavailable):
            await reg.lookup(parse_person_id(bsn(24)))
    finally:
        await reg.close()
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 200), (b'{"other": []}', 200), (b'{"markeringen": [{"bsn": "1"}]}', 200),
    (b'{"markeringen": [1]}', 200), (b"{}", 400),
])
async def test_bad_answers_are_unavailable_not_crashes(gcos: tuple[FakeGcos, str], body: bytes,
                                                       status: int) -> None:
    fake, url = gcos
    fake.body, fake.status = body, status
    reg = registry(url)
    try:
        with pytest.raises(RegistryUnavailable):
            await reg.lookup(parse_person_id(bsn(25)))
    finally:
        await reg.close()


async def test_wrong_token_is_unavailable(gcos: tuple[FakeGcos, str]) -> None:
    _, url = gcos
    reg = registry(url, token="wrong")
    try:
        with pytest.raises(RegistryUnavailable):
            await reg.lookup(parse_person_id(bsn(25)))
    finally:
        await reg.close()


def http_sections(url: str) -> dict[str, dict[str, Any]]:
    return {"registry": {"adapter": "http", "url": url, "token": TOKEN, "timeout_seconds": 0.5, "retries": 1,
                         "backoff_seconds": 0.01}}


async def test_check_through_http_adapter(gcos: tuple[FakeGcos, str], tmp_path: Path, database_url: str) -> None:
    fake, url = gcos
    person = bsn(26)
    fake.data[person] = [gcos_item(person)]
    bot = await start_bot(tmp_path, database_url, sections=http_sections(url))
    try:
        reply = await bot.say(f"!check {person} zaak: 02/9999-26", as_role="rvdk")
        assert "Zorg- en Veiligheidshuis Zeeland — bron: Zorg- en Veiligheidshuis Zeeland, GCOS (extern register)" \
            in reply
        assert "Minderjarige" in reply and "huishouden/gezin" in reply and person not in reply
        assert "Niet bekend" in await bot.say(f"!check {bsn(27)}")
        async with bot.runtime.sessions() as s:
            recs = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging")
                                    .order_by(AuditRecord.id))).scalars().all()
        assert [r.details["uitkomst"] for r in recs] == ["hit", "no-hit"]
        assert recs[0].details["bron"] == "GCOS (extern register)" and recs[0].details["zaak"] == "02/9999-26"
    finally:
        await bot.close()


async def test_registry_down_gives_clear_dutch_answer(tmp_path: Path, database_url: str) -> None:
    bot = await start_bot(tmp_path, database_url, sections=http_sections("http://127.0.0.1:9/api"))
    try:
        reply = await bot.say(f"!check {bsn(28)}")
        assert "niet bereikbaar" in reply and "bereikbaarheidsdienst" in reply and "Traceback" not in reply
        assert bot.outcomes[-1].status == "handled"
        reply = await bot.say(f"!instroom {bsn(28)} {bsn(29)}")
        assert "niet bereikbaar" in reply
        async with bot.runtime.sessions() as s:
            recs = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging"))
                    ).scalars().all()
        assert recs and all(r.details["uitkomst"] == "register onbereikbaar" for r in recs)
    finally:
        await bot.close()


async def lookups_audited(bot: Any) -> list[str]:
    async with bot.runtime.sessions() as s:
        recs = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging")
                                .order_by(AuditRecord.id))).scalars().all()
    return [r.details["uitkomst"] for r in recs]


async def slow_registry_bot(fake: FakeGcos, url: str, tmp_path: Path, database_url: str,
                            known: dict[str, bool], matrix: dict[str, Any] | None = None) -> ConsoleBot:
    """A bot whose HTTP registry holds every answer until ``fake.gate`` is set (a registry that is slow right now);
    ``known``: person -> whether the registry knows them."""
    for person, is_known in known.items():
        fake.data[person] = [gcos_item(person)] if is_known else []
    fake.gate = asyncio.Event()
    sections = http_sections(url)
    sections["registry"]["timeout_seconds"] = 30
    if matrix:
        sections["matrix"] = matrix
    return await start_bot(tmp_path, database_url, sections=sections)


@pytest.mark.parametrize(("command", "asked", "answer"), [
    ("!check {a}", 1, "Zorg- en Veiligheidshuis Zeeland"),
    ("!instroom {a}, {b}", 2, "Instroom: 1 van 2 bekend"),
    ("!besluit {a} halt", 1, "vastgelegd"),
    ("!besluit {a} 01", 1, "Technisch sepot 01 vastgelegd: geen terugkoppeling."),
    ("!vraag-vrijgave {a} reden: voorgeleiding", 1, "Geen vrijgave nodig"),
    ("!aanvraag {a} 24u feit: winkeldiefstal voornemen: taakstraf", 1,
     "Met zeeland is niets als prioritair afgesproken"),
])
async def test_slow_registry_holds_no_write_lock(gcos: tuple[FakeGcos, str], tmp_path: Path, sqlite_url: str,
                                                 command: str, asked: int, answer: str) -> None:
    """SQLite has one writer: a command waiting for a slow registry inside its transaction would stall every
    other command, the mail worker and the sender. The registry is asked before the transaction begins, once."""
    fake, url = gcos
    known, unknown = bsn(30), bsn(33)
    bot = await slow_registry_bot(fake, url, tmp_path, sqlite_url, {known: True, unknown: False})
    try:
        said = asyncio.create_task(bot.say(command.format(a=known, b=unknown)))
        await asyncio.wait_for(fake.entered.wait(), 10)
        # While the registry has not answered, another writer gets its turn at once.
        async with asyncio.timeout(5), bot.runtime.sessions() as s, s.begin():
            await s.execute(update(BotState).where(BotState.key == "niet-bestaand").values(value="x"))
        assert not said.done()
        fake.release()
        reply = await asyncio.wait_for(said, 10)
        assert answer in reply, reply
        assert fake.calls == asked  # asked once per person: the transaction took the answers got ahead
    finally:
        fake.release()
        await bot.close()


async def test_a_registry_that_never_answers_is_told_not_retried(gcos: tuple[FakeGcos, str], tmp_path: Path,
                                                                 sqlite_url: str) -> None:
    """A command that runs out of time is answered that it did, once: not taken for a database outage (whose
    ``TimeoutError`` holds the event to handle it again later), which would retry it in silence."""
    fake, url = gcos
    bot = await slow_registry_bot(fake, url, tmp_path, sqlite_url, {}, {"command_timeout_seconds": 1})
    try:
        reply = await asyncio.wait_for(bot.say(f"!check {bsn(35)}"), 20)
        assert reply == "!check duurde te lang en is afgebroken; er is niets vastgelegd. Probeer het opnieuw."
        assert [o.status for o in bot.outcomes] == ["failed"]
        assert await lookups_audited(bot) == []
    finally:
        fake.release()
        await bot.close()


async def test_a_slow_registry_uses_up_the_commands_one_time_budget(gcos: tuple[FakeGcos, str], tmp_path: Path,
                                                                     sqlite_url: str) -> None:
    """The command timeout bounds the whole command, the registry asked ahead included: what the registry took is
    not given again to the transaction. The registry answers after 2.5 s of a 4 s budget, then the writer's turn is
    held until 5.5 s: the command has run out by then and says so, where a fresh 4 s for the transaction would
    have lasted until 6.5 s and got the turn."""
    fake, url = gcos
    person = bsn(34)
    bot = await slow_registry_bot(fake, url, tmp_path, sqlite_url, {person: True}, {"command_timeout_seconds": 4})
    loop = asyncio.get_running_loop()
    try:
        said = asyncio.create_task(bot.say(f"!check {person}"))
        await asyncio.wait_for(fake.entered.wait(), 10)
        entered = loop.time()  # the command's budget began before this
        async with bot.runtime.sessions() as s, s.begin():
            await s.execute(update(BotState).where(BotState.key == "niet-bestaand").values(value="x"))
            await asyncio.sleep(2.5)
            fake.release()
            await asyncio.sleep(entered + 5.5 - loop.time())
        reply = await asyncio.wait_for(said, 20)
        assert reply == "!check duurde te lang en is afgebroken; er is niets vastgelegd. Probeer het opnieuw."
        assert fake.calls == 1
    finally:
        fake.release()
        await bot.close()


async def test_duplicate_delivery_asks_the_registry_nothing(gcos: tuple[FakeGcos, str], tmp_path: Path,
                                                           database_url: str) -> None:
    """A redelivered event (a restart, a second sync) is recognised before the registry is asked: no lookup
    happens that no audit record holds."""
    fake, url = gcos
    person = bsn(31)
    fake.data[person] = [gcos_item(person)]
    bot = await start_bot(tmp_path, database_url, sections=http_sections(url))
    try:
        assert "Zeeland" in await bot.say(f"!check {person}", event_id="$dubbel")
        assert await bot.say(f"!check {person}", event_id="$dubbel") == ""
        assert [o.status for o in bot.outcomes] == ["handled", "duplicate"]
        assert fake.calls == 1
        assert await lookups_audited(bot) == ["hit"]
    finally:
        await bot.close()


async def test_two_deliveries_at_once_ask_the_registry_once(gcos: tuple[FakeGcos, str], tmp_path: Path,
                                                             database_url: str) -> None:
    """A second delivery of an event while the first still waits for the registry waits for the first, then finds
    its inbox row: one lookup, and it is audited."""
    fake, url = gcos
    person = bsn(36)
    bot = await slow_registry_bot(fake, url, tmp_path, database_url, {person: True})
    try:
        assert bot.runtime.dispatcher
        cmd = IncomingCommand(event_id="$twee-tegelijk", room_id=CONSOLE_ROOM, sender=user_for("ovj"),
                              body=f"!check {person}", sent_at=bot.runtime.clock.now())
        first = asyncio.create_task(bot.runtime.dispatcher.handle(cmd))
        await asyncio.wait_for(fake.entered.wait(), 10)
        second = asyncio.create_task(bot.runtime.dispatcher.handle(cmd))
        fake.release()
        outcomes = await asyncio.wait_for(asyncio.gather(first, second), 20)
        assert [o.status for o in outcomes] == ["handled", "duplicate"]
        assert fake.calls == 1
        assert await lookups_audited(bot) == ["hit"]
    finally:
        fake.release()
        await bot.close()


async def test_refused_check_asks_the_registry_nothing(gcos: tuple[FakeGcos, str], tmp_path: Path,
                                                      sqlite_url: str) -> None:
    """What the command refuses (no purpose where one is required, a bad identifier) is not looked up ahead."""
    fake, url = gcos
    person = bsn(32)
    fake.data[person] = [gcos_item(person)]
    sections = http_sections(url)
    sections["check"] = {"zaak_verplicht": True}
    bot = await start_bot(tmp_path, sqlite_url, sections=sections)
    try:
        assert await bot.say(f"!check {person}") == (
            "Geef het zaaknummer mee als doel van de raadpleging: !check <bsn-of-skn> zaak: <parketnummer>.")
        assert "Gebruik: !check" in await bot.say("!check 123456789 zaak: 10/123456-26")
        assert fake.calls == 0
        assert "Zeeland" in await bot.say(f"!check {person} zaak: 10/123456-26")
        assert fake.calls == 1
    finally:
        await bot.close()


@pytest.mark.parametrize(("section", "message"), [
    ({"adapter": "gcos"}, "registry.adapter"),
    ({"adapter": "http"}, "registry.url"),
    ({"adapter": "http", "url": "ftp://x"}, "registry.url"),
    ({"adapter": "http", "url": "http://x"}, "registry.token"),
])
async def test_bad_registry_config_stops_start(tmp_path: Path, sqlite_url: str, section: dict[str, Any],
                                               message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await start_bot(tmp_path, sqlite_url, sections={"registry": section})
