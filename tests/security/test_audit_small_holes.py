"""The small holes of issue 13 on the web paths: a throttled /rapport login (a Dutch 429, one audit record per
burst of refused tokens), a bounded /api/instroom body (size and depth: a 400 with a Dutch line, never a 500),
and no invalid BSN echoed beyond its masked form in an answer, an audit record or a log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.transport.console import ConsoleTransport
from config.settings import load_settings
from domain.clock import FixedClock
from storage.models import AuditRecord
from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW, bsn, markering
from web.instroom_api import MAX_BODY, MAX_DEPTH

TOKENS = {"jansen": "tok-jansen-0123456789abcdef"}
INSTROOM_TOKEN = "instroom-token-0123456789"
ROOM = "!zsm:localhost"


async def _audit(sessions: Any, kind: str) -> list[AuditRecord]:
    async with sessions() as s:
        return list((await s.execute(select(AuditRecord).where(AuditRecord.kind == kind)
                                     .order_by(AuditRecord.id))).scalars())


@pytest.fixture
async def rapport_bot(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    bot = await ConsoleBot.start(write_config(tmp_path, database_url, sections={
        "http": {"enabled": True, "port": 0}, "rapport.tokens": TOKENS}), clock=FixedClock(NOW), http=True)
    try:
        yield bot
    finally:
        await bot.close()


async def test_login_burst_is_throttled_with_one_audit_record(rapport_bot: ConsoleBot) -> None:
    """300 wrong tokens as fast as a client can send them: the first five are refused (401), the rest get a Dutch
    429 without their token being compared, even the right one; the whole burst is one audit record. After the
    pause the right token logs in, and a later burst is a record of its own."""
    pages = rapport_bot.runtime.rapport_pages
    clock = [1000.0]
    pages.throttle.clock = lambda: clock[0]
    login = f"{rapport_bot.base_url}/rapport/login"
    async with aiohttp.ClientSession() as http:
        async def attempt(i: int) -> tuple[int, str]:
            async with http.post(login, data={"token": f"wrong-{i:04d}-0123456789"}, allow_redirects=False) as r:
                return r.status, await r.text()

        answers = [await attempt(i) for i in range(5)]
        answers += await asyncio.gather(*(attempt(i) for i in range(5, 300)))
        assert [s for s, _ in answers[:5]] == [401] * 5
        assert {s for s, _ in answers[5:]} == {429}
        assert "Te veel onjuiste toegangstokens achter elkaar. Wacht 60 seconden" in answers[5][1]
        assert "Traceback" not in answers[5][1]
        async with http.post(login, data={"token": TOKENS["jansen"]}, allow_redirects=False) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "60", "the right token waits as well"
        async with http.get(f"{rapport_bot.base_url}/rapport.csv",
                            headers={"Authorization": "Bearer " + TOKENS["jansen"]}) as r:
            assert r.status == 429 and (await r.text()).startswith("Te veel onjuiste toegangstokens")
        refused = await _audit(rapport_bot.runtime.sessions, "rapport.geweigerd")
        assert len(refused) == 1 and refused[0].details == {"via": "login", "reeks_venster_s": 60}

        clock[0] += 61
        async with http.post(login, data={"token": TOKENS["jansen"]}, allow_redirects=False) as r:
            assert r.status == 303
        clock[0] += 120
        for i in range(3):
            assert (await attempt(i))[0] == 401
    assert len(await _audit(rapport_bot.runtime.sessions, "rapport.geweigerd")) == 2
    assert len(await _audit(rapport_bot.runtime.sessions, "rapport.ingelogd")) == 1


@pytest.fixture
async def proxied_bot(tmp_path: Path, sqlite_url: str) -> AsyncIterator[ConsoleBot]:
    """/rapport behind a reverse proxy on loopback, named in http.trusted_proxies (this test is the proxy)."""
    bot = await ConsoleBot.start(write_config(tmp_path, sqlite_url, sections={
        "http": {"enabled": True, "port": 0, "trusted_proxies": ["127.0.0.0/8", "::1"]}, "rapport.tokens": TOKENS}),
        clock=FixedClock(NOW), http=True)
    try:
        yield bot
    finally:
        await bot.close()


async def test_behind_a_trusted_proxy_one_client_s_burst_does_not_lock_out_another(proxied_bot: ConsoleBot) -> None:
    """The proxy forwards for two clients: the one guessing is blocked, the other still logs in; a guesser who
    writes someone else's address into X-Forwarded-For is still counted by the address the proxy appended."""
    proxied_bot.runtime.rapport_pages.throttle.clock = lambda: 1000.0
    login = f"{proxied_bot.base_url}/rapport/login"
    async with aiohttp.ClientSession() as http:
        async def post(forwarded: str, token: str) -> int:
            async with http.post(login, data={"token": token}, allow_redirects=False,
                                 headers={"X-Forwarded-For": forwarded}) as r:
                return r.status

        assert [await post("198.51.100.7", f"wrong-{i:04d}-0123456789") for i in range(6)] == [401] * 5 + [429]
        # the guesser poses as the colleague; the proxy appends the guesser's real address
        assert await post("203.0.113.20, 198.51.100.7", TOKENS["jansen"]) == 429
        assert await post("203.0.113.20", TOKENS["jansen"]) == 303, "the colleague behind the same proxy logs in"
    assert len(await _audit(proxied_bot.runtime.sessions, "rapport.geweigerd")) == 1


async def test_trusted_proxies_must_be_addresses(tmp_path: Path, sqlite_url: str) -> None:
    from domain.errors import ConfigError

    config = write_config(tmp_path, sqlite_url, sections={"http": {"trusted_proxies": ["10.0.0.0/8", "nginx"]}})
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(err.value) == ("http.trusted_proxies[1]: geen IP-adres of netwerk: 'nginx'; schrijf bijvoorbeeld "
                              "\"10.0.0.5\" of \"10.0.0.0/24\"")
    from_env = load_settings(config, environ={"ZSM_BOT_HTTP_TRUSTED_PROXIES": "10.1.2.3, 192.168.0.0/16"})
    assert [str(n) for n in from_env.http.trusted_proxies] == ["10.1.2.3/32", "192.168.0.0/16"]


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Runtime, str]]:
    config = write_config(tmp_path, database_url, sections={
        "http": {"enabled": True, "port": 0}, "instroom": {"token": INSTROOM_TOKEN, "room": ROOM}})
    runtime = Runtime(load_settings(config), clock=FixedClock(NOW))
    await runtime.start(ConsoleTransport(io.StringIO()))
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(bsn(1), "utrecht", geboortedatum=date(1990, 1, 1))], NOW)
    try:
        yield runtime, f"http://127.0.0.1:{runtime.http_port}/api/instroom"
    finally:
        await runtime.close()


async def _post(url: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
            url, data=raw, headers={"Authorization": f"Bearer {INSTROOM_TOKEN}",
                                    "Content-Type": "application/json"}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(("raw", "expected"), [
    (b"[" * 5000 + b"]" * 5000, "te diep genest"),
    (b'{"ids": ["123456782"], "x": [' + b"1," * 40_000 + b"1]}", "te groot"),
    (b'{"ids": ["123456782"], "x": ' + b'{"a": ' * (MAX_DEPTH) + b"1" + b"}" * MAX_DEPTH + b"}", "te diep genest"),
    (b'{"ids": ["' + b"1" * (MAX_BODY + 10) + b'"]}', "te groot"),
])
async def test_instroom_body_size_and_depth_are_bounded(api: tuple[Runtime, str], raw: bytes, expected: str) -> None:
    runtime, url = api
    status, answer = await _post(url, raw)
    assert status == 400 and expected in answer["fout"], answer
    assert await _audit(runtime.sessions, "register.raadpleging") == []


async def test_instroom_brackets_inside_strings_do_not_count_and_a_normal_batch_passes(
        api: tuple[Runtime, str]) -> None:
    _, url = api
    status, answer = await _post(url, json.dumps({"ids": [bsn(1)], "bron": "[[[[[[[[[[{{{{{{{{{{"}).encode())
    assert status == 200 and answer["bekend"] == 1, answer
    padded = json.dumps({"ids": [bsn(1)]}).encode() + b" " * (MAX_BODY - 100)  # near the limit, in many chunks
    status, answer = await _post(url, padded)
    assert status == 200 and answer["bekend"] == 1, answer


INVALID = ("123456789", "1234 567 89", "123.456.78x", "1234567890", "12345678901234")


async def test_invalid_bsn_is_never_echoed_beyond_its_masked_form(api: tuple[Runtime, str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Neither the API's answer, nor the audit trail, nor a log line carries more than the last three digits of
    a refused identifier, however it was split."""
    runtime, url = api
    with caplog.at_level(logging.DEBUG):
        status, answer = await _post(url, json.dumps({"ids": [bsn(1), *INVALID]}).encode())
    assert status == 422 and [e["positie"] for e in answer["ongeldig"]] == [2, 3, 4, 5, 6]
    async with runtime.sessions() as s:
        trail = " ".join(json.dumps(d) for d in (await s.execute(select(AuditRecord.details))).scalars())
    for where in (json.dumps(answer, ensure_ascii=False), trail, caplog.text):
        digits = re.findall(r"\d[\d .x]*\d", where)
        for bad in INVALID:
            plain = re.sub(r"\D", "", bad)
            assert not any(plain[:4] in re.sub(r"\D", "", d) for d in digits if len(re.sub(r"\D", "", d)) > 3), \
                (bad, where[:300])


async def test_rapport_period_and_house_do_not_echo_an_identifier(rapport_bot: ConsoleBot) -> None:
    """A BSN typed where a period or veiligheidshuis belongs: the page and the chat say what to type, showing at
    most its last three digits (a short typo is still shown as typed)."""
    bearer = {"Authorization": "Bearer " + TOKENS["jansen"]}
    async with aiohttp.ClientSession() as http:
        for params in ({"periode": "123456782"}, {"periode": "1234 567 82"}, {"periode": "2026-04", "vh": "x123456782"},
                       {"periode": "2026-13"}):
            async with http.get(f"{rapport_bot.base_url}/rapport", params=params, headers=bearer) as r:
                page = await r.text()
            assert r.status == 400 and "Traceback" not in page
            assert "123456" not in page and "1234 567" not in page and "12345" not in page, params
        assert "Onbekende periode &#39;2026-13&#39;" in page
    for text in ("!rapport 123456782", "!rapport 2026-04 x123456782", "!rapport 1234.5678.2"):
        reply = await rapport_bot.say(text, as_role="beheerder")
        assert "Onbekend" in reply and "1234" not in reply, reply
    assert "78.2" in reply, "the last three digits, as a refused identifier shows them"
