"""Two instances that both believe they are active (the old one has not yet noticed that its lock connection is
gone): the fence in every claim stops the old one, so nothing is sent twice. PostgreSQL, a real SMTP server;
the Matrix side is a recording transport (the send queue's rows and claims are what is under test here)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.metrics import Metrics
from bot.outbound import Sender
from config.reference import load_veiligheidshuizen
from config.settings import load_settings
from domain.clock import SystemClock
from services import messages
from services.mail_outbox import MailService, MailWorker, RoomNotice
from services.messages import NewMessage
from storage.audit import Auditor
from storage.db import Tx, create_engine, session_factory
from storage.leader import NotActive, PgLeader
from storage.migrate import upgrade
from tests.harness import pg
from tests.harness.config import VEILIGHEIDSHUIZEN, write_config
from tests.harness.ha import wait_until
from tests.smtp_helpers import SmtpServer, free_port

ROWS = 20


class Recording:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self.sent.append(txn_id)
        await asyncio.sleep(0)  # let the other instance interleave
        return f"$ev-{txn_id}"

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        raise AssertionError("not used")


async def _no_notice(session: Tx, notices: list[RoomNotice]) -> None:
    return None


async def test_an_instance_that_lost_its_lock_claims_nothing(pg_url: str, tmp_path: Path,
                                                             cert: tuple[Path, Path]) -> None:
    smtp = SmtpServer(*cert, free_port()).start()
    engine = create_engine(pg_url)
    old, new = PgLeader(pg_url), PgLeader(pg_url)
    old.heartbeat_s = 3600.0  # the old instance does not notice the loss by itself during this test
    tasks = [asyncio.create_task(old.run())]
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        await wait_until(lambda: old.active, "the first instance to take the lock", timeout=60)
        tasks.append(asyncio.create_task(new.run()))

        settings = load_settings(write_config(tmp_path, pg_url, sections={"mail": {
            "enabled": True, "host": "127.0.0.1", "port": smtp.port, "ca_bestand": str(cert[0]),
            "herroep_seconden": 0, "afzender": "zsm-bot@om.example"}}))
        vh = load_veiligheidshuizen(VEILIGHEIDSHUIZEN).all()[0]
        mail = MailService(settings.mail)
        now = datetime.now(UTC)
        async with sessions() as s, s.begin():
            await messages.queue_many(s, [NewMessage(room_id="!r:localhost", content={"body": f"m{i}"},
                                                     txn_id=f"txn{i}") for i in range(ROWS)], now)
            for i in range(ROWS):
                await mail.queue_text(s, kind="aanvraag", vh=vh, subject=f"s{i}", text="t", room_id="!r:localhost",
                                      event_id=f"$cmd{i}", subject_hash="h" * 64, now=now)

        # The old instance's lock connection is cut on the server side, as a network cut or a database restart
        # would; the standby takes the lock while the old one still believes it is active.
        conn = await asyncpg.connect(pg.ADMIN_DSN)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", old._pid)
        finally:
            await conn.close()
        await wait_until(lambda: new.active, "the standby to take the lock", timeout=60)
        assert old.active, "the old instance has not noticed (the situation under test)"
        async with sessions() as s:
            with pytest.raises(NotActive):
                await old.fence(s)

        auditor, clock = Auditor(b"test-audit-key"), SystemClock()
        old_matrix, new_matrix = Recording(), Recording()
        old_sender = Sender(sessions, old_matrix, clock, auditor, Metrics(), old)
        new_sender = Sender(sessions, new_matrix, clock, auditor, Metrics(), new)
        old_mail = MailWorker(sessions, settings.mail, clock, auditor, _no_notice, leader=old)
        new_mail = MailWorker(sessions, settings.mail, clock, auditor, _no_notice, leader=new)
        await asyncio.gather(old_sender.drain(), new_sender.drain(), old_mail.drain(), new_mail.drain())

        assert old_matrix.sent == [], "the fenced-out instance sent room messages"
        assert sorted(new_matrix.sent) == sorted(f"txn{i}" for i in range(ROWS))
        got = smtp.collector.message_ids()
        assert len(got) == ROWS and len(set(got)) == ROWS, "each mail once, all by the active instance"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await old.close()
        await new.close()
        await engine.dispose()
        smtp.stop()
