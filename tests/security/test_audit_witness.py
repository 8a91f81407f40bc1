"""The witness: the running bot publishes the chain's head outside the database (a structured log line, and a
message in the audit room when configured), and notices at once when the head it published is gone."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from bot.logs import JsonFormatter
from config.reader import ConfigReader
from config.settings import load_settings
from domain.errors import ConfigError
from storage.audit import Witness, verify_chain
from storage.models import AuditHead, AuditRecord
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot

AUDIT_ROOM = "!audit:localhost"


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The bot's own JSON log lines, as `zsm-bot run` writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.audit_witness")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(saved)


def _witness_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if '"audit witness"' in line]


async def test_running_bot_publishes_the_head_in_the_log_and_the_audit_room(
        tmp_path: Path, database_url: str, log_stream: io.StringIO) -> None:
    config = write_config(tmp_path, database_url, sections={"audit": {"witness_room": AUDIT_ROOM,
                                                                      "witness_interval_seconds": 10}})
    bot = await ConsoleBot.start(config)
    try:
        await _until(lambda: bool(_witness_lines(log_stream)))
        line = _witness_lines(log_stream)[0]
        assert line["level"] == "INFO" and line["reason"] == "interval"
        seq, mac = int(line["audit_seq"]), str(line["audit_mac"])  # type: ignore[call-overload]
        assert seq >= 1 and len(mac) == 64
        assert bot.runtime.sender is not None
        await bot.runtime.sender.drain()
        assert f"[naar {AUDIT_ROOM}] Auditketen: record {seq}, MAC {mac}" in bot.out.getvalue()
        await bot.say("!ping")
        head = await bot.runtime.witness.publish("test")
        assert head.seq > seq
        async with bot.runtime.sessions() as s:
            result = await verify_chain(s, bot.runtime.auditor, now=bot.runtime.clock.now(),
                                        retention=bot.runtime.retention.period("audit"),
                                        witnesses=[Witness(seq, mac, "logregel"), Witness(head.seq, head.mac, "kop")])
        assert result.ok and result.witnessed == 2, result.problems
    finally:
        await bot.close()


async def test_a_rewritten_tail_is_logged_at_the_next_publication(
        tmp_path: Path, sqlite_url: str, log_stream: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    bot = await ConsoleBot.start(write_config(tmp_path, sqlite_url))
    try:
        await bot.say("!ping")
        await bot.say("!ping")
        head = await bot.runtime.witness.publish("test")
        async with bot.runtime.sessions() as s, s.begin():
            prev = await s.scalar(select(AuditRecord.hash).where(AuditRecord.id == head.seq - 1))
            await s.execute(delete(AuditRecord).where(AuditRecord.id == head.seq))
            await s.execute(update(AuditHead).values(last_id=head.seq - 1, last_hash=prev))
        with caplog.at_level(logging.ERROR, logger="bot.audit_witness"):
            await bot.runtime.witness.publish("test")
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
            "audit chain rewritten since the last witness"]
    finally:
        await bot.close()


def test_witness_settings_are_typed_and_refused_when_unknown(tmp_path: Path) -> None:
    from config.audit import parse_audit

    assert parse_audit(ConfigReader({}, "audit")).witness_interval_seconds == 300
    with pytest.raises(ConfigError, match=r"audit\.witness_interval_seconds: verwacht minstens 10"):
        parse_audit(ConfigReader({"witness_interval_seconds": 1}, "audit"))
    with pytest.raises(ConfigError, match=r"audit\.witness_room: verwacht een room-id"):
        parse_audit(ConfigReader({"witness_room": "audit"}, "audit"))
    with pytest.raises(ConfigError, match=r"audit\.witness_intervall: onbekende sleutel; bedoelde u "
                                          r"audit\.witness_interval_seconds\?"):
        load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={"audit": {
            "witness_intervall": 60}}))
    settings = load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db"),
                             {"ZSM_BOT_AUDIT_WITNESS_INTERVAL_SECONDS": "60"})
    assert settings.audit.witness_interval_seconds == 60
    from cli.config_check import check

    _, notes = check(load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={
        "audit": {"witness_room": AUDIT_ROOM}})))
    assert f"audit.witness_room {AUDIT_ROOM} staat niet in matrix.rooms; de bot moet er lid van zijn" in notes
