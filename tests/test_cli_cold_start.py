"""Cold start: the bot waits for a database and a homeserver that come up after it, says so in the log and in
/readyz, and then works; a one-off command does not wait.

"Comes up later" is a real port that nothing listens on until the test opens it: a TCP forwarder to the test's
PostgreSQL or Synapse, started once the bot has reported that it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot.coldstart import reason
from bot.runtime import Runtime
from bot.transport.console import ConsoleTransport
from config.settings import load_settings
from tests.harness import pg
from tests.harness.config import write_config
from tests.harness.markings import bsn
from tests.harness.matrix import Homeserver
from tests.harness.matrix_bot import InProcessBot, make_setup
from tests.smtp_helpers import free_port


@contextlib.asynccontextmanager
async def forwarder(port: int, target_host: str, target_port: int) -> AsyncIterator[None]:
    """Opens ``port`` and forwards every connection to the target: the peer that starts after the bot."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}/readyz") as resp:
        return resp.status, await resp.json()


async def eventually(probe: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def waiting_for(http_port: int | None, what: str) -> bool:
    if http_port is None:
        return False  # the listener is not up yet
    with contextlib.suppress(aiohttp.ClientError):
        status, body = await readyz(http_port)
        return status == 503 and any(p.startswith(f"wacht op {what}") for p in body.get("problems", []))
    return False


async def test_runtime_waits_for_a_database_that_starts_later(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    url, name = await pg.create_database()
    real = urlsplit(url)
    port = free_port()
    later = url.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{port}")
    settings = load_settings(write_config(tmp_path, later, sections={"http": {"enabled": True, "port": 0}}),
                             environ={})
    runtime = Runtime(settings)
    caplog.set_level(logging.WARNING, logger="bot.coldstart")
    starting = asyncio.create_task(runtime.start(ConsoleTransport(io.StringIO()), wait=True))
    try:
        await eventually(lambda: waiting_for(getattr(runtime, "http_port", None), "database"))
        assert not starting.done()
        assert any("wacht op database" in r.getMessage() for r in caplog.records)
        async with forwarder(port, real.hostname or "127.0.0.1", real.port or 5432):
            await asyncio.wait_for(starting, 90)
            status, body = await readyz(runtime.http_port)
            assert status == 200, body
    finally:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await runtime.close()
        await pg.drop_database(name)


async def test_a_one_off_command_does_not_wait(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, f"postgresql+asyncpg://zsm@127.0.0.1:{free_port()}/zsm"),
                             environ={})
    runtime = Runtime(settings)
    try:
        with pytest.raises(OSError):
            await asyncio.wait_for(runtime.start(ConsoleTransport(io.StringIO()), http=False), 60)
    finally:
        await runtime.close()


@pytest.mark.matrix
async def test_bot_waits_for_a_homeserver_that_starts_later(homeserver: Homeserver, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    port, http_port = free_port(), free_port()
    setup = await make_setup(homeserver, tmp_path, http_port=http_port,
                             matrix={"homeserver": f"http://127.0.0.1:{port}"})
    caplog.set_level(logging.WARNING, logger="bot.coldstart")
    bot = InProcessBot(setup.config)
    try:
        await eventually(lambda: waiting_for(http_port, "homeserver"))
        assert not bot.task.done()
        assert any("wacht op homeserver" in r.getMessage() for r in caplog.records)
        async with forwarder(port, "127.0.0.1", homeserver.synapse.port):
            await setup.officer.wait_member(setup.room_id, setup.bot_user, timeout=90)
            ping = await setup.officer.send(setup.room_id, "!ping")
            reply = await setup.officer.wait_reply(ping, timeout=90)
            assert reply.body == "pong"

            async def ready() -> bool:
                return (await readyz(http_port))[0] == 200

            await eventually(ready)
            await bot.close()
    finally:
        await bot.close()
        await setup.officer.close()


@contextlib.asynccontextmanager
async def gateway(port: int, target: str) -> AsyncIterator[asyncio.Event]:
    """A reverse proxy on ``port`` that answers 502 Bad Gateway (as nginx does before a homeserver that is still
    starting) until the yielded event is set, and then passes every request to ``target``."""
    up = asyncio.Event()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def handle(request: web.Request) -> web.StreamResponse:
        if not up.is_set():
            return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with session.request(request.method, target + request.path_qs, headers=headers,
                                   data=await request.read()) as upstream:
            body = await upstream.read()
            passed = {k: v for k, v in upstream.headers.items()
                      if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")}
            return web.Response(status=upstream.status, body=body, headers=passed)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield up
    finally:
        await runner.cleanup()
        await session.close()


@pytest.mark.matrix
async def test_bot_waits_behind_a_proxy_that_answers_502(homeserver: Homeserver, tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    setup = await make_setup(homeserver, tmp_path, http_port=http_port,
                             matrix={"homeserver": f"http://127.0.0.1:{port}"})
    async with gateway(port, homeserver.synapse.url) as up:
        bot = InProcessBot(setup.config)
        try:
            await eventually(lambda: waiting_for(http_port, "homeserver"))
            _, body = await readyz(http_port)
            assert any("HomeserverNotReady" in p for p in body["problems"]), body
            assert not bot.task.done()
            up.set()
            await setup.officer.wait_member(setup.room_id, setup.bot_user, timeout=90)
            ping = await setup.officer.send(setup.room_id, "!ping")
            assert (await setup.officer.wait_reply(ping, timeout=90)).body == "pong"
        finally:
            await bot.close()
            await setup.officer.close()


RAPPORT_TOKEN = "tok-rapport-0123456789abcdef"
INSTROOM_TOKEN = "instroom-token-0123456789"


async def feature_calls(port: int) -> dict[str, tuple[int, str, str | None]]:
    """The report page, the instroom API and the answer form as a browser or a case system calls them:
    status, body and Retry-After per route."""
    base = f"http://127.0.0.1:{port}"
    answers: dict[str, tuple[int, str, str | None]] = {}
    async with aiohttp.ClientSession() as client:
        calls = {
            "rapport": client.get(base + "/rapport.csv", headers={"Authorization": f"Bearer {RAPPORT_TOKEN}"}),
            "instroom": client.post(base + "/api/instroom", json={"ids": [bsn(1)]},
                                    headers={"Authorization": f"Bearer {INSTROOM_TOKEN}"}),
            "antwoord": client.get(base + "/aanvraag/1/antwoord?t=onzin"),
        }
        for name, call in calls.items():
            async with call as resp:
                answers[name] = (resp.status, await resp.text(), resp.headers.get("Retry-After"))
    return answers


async def test_web_routes_answer_503_while_waiting_for_the_database(tmp_path: Path) -> None:
    url, name = await pg.create_database()
    real = urlsplit(url)
    port = free_port()
    later = url.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{port}")
    settings = load_settings(write_config(tmp_path, later, sections={
        "http": {"enabled": True, "port": 0}, "rapport.tokens": {"jansen": RAPPORT_TOKEN},
        "instroom": {"token": INSTROOM_TOKEN, "room": "!zsm:localhost"}}), environ={})
    runtime = Runtime(settings)
    starting = asyncio.create_task(runtime.start(ConsoleTransport(io.StringIO()), wait=True))
    try:
        await eventually(lambda: waiting_for(getattr(runtime, "http_port", None), "database"))
        _, ready = await readyz(runtime.http_port)
        assert any(p.startswith("wacht op database (poging") and "verbinding geweigerd" in p
                   for p in ready["problems"]), ready
        waiting = await feature_calls(runtime.http_port)
        for route, (status, body, retry_after) in waiting.items():
            assert status == 503, (route, status, body)
            assert body.strip() == "de bot wacht op de database; probeer het zo opnieuw", route
            assert retry_after is not None and int(retry_after) > 0, route
        async with aiohttp.ClientSession() as client, client.get(
                f"http://127.0.0.1:{runtime.http_port}/healthz") as resp:
            assert resp.status == 200  # liveness is not the database's business
        async with forwarder(port, real.hostname or "127.0.0.1", real.port or 5432):
            await asyncio.wait_for(starting, 90)
            served = await feature_calls(runtime.http_port)
            assert served["rapport"][0] == 200 and served["rapport"][1].startswith("periode"), served["rapport"]
            assert served["instroom"][0] == 200, served["instroom"]
            assert served["antwoord"][0] == 403 and "Link geweigerd" in served["antwoord"][1]
    finally:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await runtime.close()
        await pg.drop_database(name)


def test_the_reason_of_waiting_is_said_in_dutch() -> None:
    """The log line and /readyz say why the peer is not reachable, with the class an operator can search for."""
    def chained(cause: BaseException) -> BaseException:
        try:
            raise OSError("wrapper") from cause
        except OSError as exc:
            return exc

    assert reason(chained(socket.gaierror(-2, "Name or service not known"))) == "host onbekend, OSError"
    assert reason(ConnectionRefusedError(111, "refused")) == "verbinding geweigerd, ConnectionRefusedError"
    assert reason(TimeoutError()) == "geen antwoord binnen de tijd, TimeoutError"
    assert reason(RuntimeError("anders")) == "RuntimeError"
