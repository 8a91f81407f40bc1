"""Observability: a separate metrics listener, process and build-info metrics, the command latency histogram, the
outbox, escalation and queue gauges read from the database (not capped at a batch), and the start and stop lines
of the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM
from config.build import version
from services import messages
from services.messages import NewMessage, message_content
from services.reply import text
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn, markering, seed
from tests.harness.matrix import Homeserver
from tests.harness.matrix_bot import InProcessBot, make_setup
from tests.smtp_helpers import free_port


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


def value(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_separate_listener_and_the_figures_from_the_database(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, sections={
        "http": {"enabled": True, "port": 0, "metrics_port": 0}})
    bot = await ConsoleBot.start(config, http=True)
    runtime: Runtime = bot.runtime
    try:
        assert runtime.metrics_port != runtime.http_port
        assert (await get(runtime.http_port, "/metrics"))[0] == 404  # moved to its own listener
        assert (await get(runtime.http_port, "/readyz"))[0] == 200
        assert (await get(runtime.metrics_port, "/readyz"))[0] == 404  # the metrics listener serves only /metrics

        person = bsn(7)
        await seed(bot, markering(person, geadviseerde_afdoening="osb"))
        assert (await bot.say("!ping")) == "pong"
        assert "Besluit vastgelegd" in await bot.say(f"!besluit {person} osb")  # mail off: it waits in the outbox
        # 60 replies queued while no sender runs: more than one send batch (50)
        async with runtime.sessions() as s, s.begin():
            await messages.queue_many(s, [NewMessage(room_id=CONSOLE_ROOM, content=message_content(text(f"r{i}")),
                                                     txn_id=f"metrics-test-{i}") for i in range(60)],
                                      runtime.clock.now())

        status, metrics = await get(runtime.metrics_port, "/metrics")
        assert status == 200
        kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        assert f'zsm_build_info{{database="{kind}",python="' in metrics and f'version="{version()}"' in metrics
        assert value(metrics, "process_resident_memory_bytes") > 0 and "python_info{" in metrics
        assert value(metrics, 'zsm_command_duration_seconds_count{command="ping"}') == 1
        assert value(metrics, 'zsm_command_duration_seconds_count{command="besluit"}') == 1
        assert value(metrics, "zsm_send_queue_length") == 60
        # an invented command name never becomes a label of its own
        for i in range(3):
            runtime.metrics.command_done(f"verzonnen{i}", "limited", 0.001)
        assert "verzonnen" not in (await get(runtime.metrics_port, "/metrics"))[1]
        assert value(metrics, 'zsm_mail_outbox{state="pending"}') == 1
        assert value(metrics, 'zsm_mail_outbox{state="dead"}') == 0
        assert value(metrics, "zsm_mail_outbox_oldest_age_seconds") >= 0
        assert value(metrics, 'zsm_aanvragen_open{state="open"}') == 0
        assert value(metrics, "zsm_escalation_steps_due") == 0
        assert value(metrics, "zsm_metrics_scrape_errors_total") == 0
    finally:
        await bot.close()


async def test_escalation_gauges_count_an_open_request(tmp_path: Path) -> None:
    from tests import test_aanvraag

    bot, _ = await test_aanvraag.start(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        await test_aanvraag.seed(bot)
        await test_aanvraag.roster(bot)
        reply = await bot.say(f"!aanvraag {test_aanvraag.BSN} {test_aanvraag.SKETCH}", as_role="kpc")
        assert "A1" in reply, reply
        metrics = (await bot.runtime.metrics.scrape(bot.runtime.sessions, bot.runtime.clock)).decode()
        assert value(metrics, 'zsm_aanvragen_open{state="open"}') == 1
        assert value(metrics, 'zsm_aanvragen_open{state="bevestigd"}') == 0
        assert value(metrics, "zsm_aanvragen_past_deadline") == 0
    finally:
        await bot.close()


@pytest.mark.matrix
async def test_start_and_stop_are_logged_with_version_database_and_rooms(homeserver: Homeserver, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.matrix_main")
    setup = await make_setup(homeserver, tmp_path, http_port=free_port())
    bot = InProcessBot(setup.config)
    try:
        await bot.runtime()
        started = next(r for r in caplog.records if r.getMessage() == "bot started")
        assert (started.version, started.database, started.rooms) == (version(), "sqlite", 1)  # type: ignore[attr-defined]
        assert "sqlite+aiosqlite" not in str(started.__dict__)
        await bot.close()
        stopped = [r for r in caplog.records if r.getMessage() == "bot stopped"]
        assert len(stopped) == 1 and stopped[0].reason == "signal"  # type: ignore[attr-defined]
    finally:
        await bot.close()
        await setup.officer.close()
        await asyncio.sleep(0)


def test_operations_doc_lists_every_metric_and_endpoint() -> None:
    from bot.metrics import Metrics

    docs = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    names = {family.name for family in Metrics().registry.collect()}
    counters = {family.name for family in Metrics().registry.collect() if family.type == "counter"}
    assert len(names) > 25
    for name in sorted(names):
        shown = f"{name}_total" if name in counters else name
        assert shown in docs, shown
    for path in ("/healthz", "/readyz", "/metrics", "/rapport", "/api/instroom", "/aanvraag/{ref}/antwoord"):
        assert f"`{path}`" in docs, path
