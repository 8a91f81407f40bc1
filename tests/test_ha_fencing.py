"""Two instances that both believe they are active (the old one has not yet noticed that its lock connection is
gone): the fence in every claim stops the old one, so nothing is sent twice. PostgreSQL, a real SMTP server;
the Matrix side is a recording transport (the send queue's rows and claims are what is under test here).
Also for a command's reply, which is written already claimed in the command's transaction."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.metrics import Metrics
from bot.outbound import Sender
from bot.runtime import Runtime
from bot.shutdown import cancel_within
from bot.transport.console import ConsoleTransport
from config.reference import load_veiligheidshuizen
from config.settings import load_settings
from domain.clock import SystemClock
from services import messages
from services.mail_outbox import MailService, MailWorker, RoomNotice
from services.messages import NewMessage, txn_id_for
from storage.audit import Auditor
from storage.db import Tx, create_engine, session_factory
from storage.leader import NotActive, PgLeader
from storage.migrate import upgrade
from storage.models import OutgoingMessage
from tests.harness import pg
from tests.harness.config import VEILIGHEIDSHUIZEN, write_config
from tests.harness.console import ping_handled
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


async def _cut_lock(leader: PgLeader) -> None:
    """End the instance's lock connection on the server side, as a network cut or a database restart would."""
    await pg.end_backend(leader._pid)


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

        # The old instance's lock connection is cut; the standby takes the lock while the old one still believes
        # it is active.
        await _cut_lock(old)
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


class StuckTransport(ConsoleTransport):
    """The room as the old instance reaches it: it takes the first message and then never answers (the instance
    is as good as killed mid-send); ``accepted`` is what reached the room (what a successor's own sync shows)."""

    def __init__(self, stuck_on: str) -> None:
        super().__init__(io.StringIO())
        self.stuck_on = stuck_on
        self.sent: list[str] = []
        self.accepted: dict[str, str] = {}
        self.stuck = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self.sent.append(txn_id)
        event_id = self.accepted[txn_id] = await super().send(room_id, content, txn_id)
        if txn_id == self.stuck_on:
            self.stuck.set()
            await self.release.wait()
        return event_id


class ListTransport(ConsoleTransport):
    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.sent: list[str] = []

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self.sent.append(txn_id)
        return await super().send(room_id, content, txn_id)


async def test_replies_claimed_by_a_lost_instance_are_sent_once_by_its_successor(pg_url: str, tmp_path: Path) -> None:
    """The old instance's replies: one it got into the room but never recorded, one written claimed (fenced)
    that waits behind it, and one written after its lock was gone (the fence in its INSERT leaves it unclaimed).
    The successor sends the second and third once and records the first without sending it; the old one, which
    still believes it is active, sends none of them once its stuck send returns."""
    one, two, three = (txn_id_for(f"${n}") for n in ("one", "two", "three"))
    quiet = {"aanvraag": {"tik_seconden": 0}}
    old_leader, new_leader = PgLeader(pg_url), PgLeader(pg_url)
    old_leader.heartbeat_s = 3600.0  # the old instance does not notice the loss by itself during this test
    elections = [asyncio.create_task(old_leader.run())]
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = Runtime(load_settings(write_config(tmp_path / "old", pg_url, sections=quiet)), leader=old_leader)
    new = Runtime(load_settings(write_config(tmp_path / "new", pg_url, sections=quiet)), leader=new_leader)
    old_room, new_room = StuckTransport(stuck_on=one), ListTransport()
    loops: list[asyncio.Task[None]] = []
    try:
        await wait_until(lambda: old_leader.active, "the first instance to take the lock", timeout=60)
        await old.start(old_room, http=False)
        assert old.sender and old.dispatcher
        loops.append(asyncio.create_task(old.sender.run()))


        async def claimed_until(txn_id: str) -> datetime | None:
            async with old.sessions() as s:
                return await s.scalar(select(OutgoingMessage.claimed_until).where(OutgoingMessage.txn_id == txn_id))

        await ping_handled(old, "$one")
        await asyncio.wait_for(old_room.stuck.wait(), timeout=20)  # sent on its claim, never recorded
        await ping_handled(old, "$two")
        assert await claimed_until(two) is not None  # written claimed: it waits in the lane behind the first
        await _cut_lock(old_leader)
        elections.append(asyncio.create_task(new_leader.run()))
        await wait_until(lambda: new_leader.active, "the standby to take the lock", timeout=60)
        await ping_handled(old, "$three")
        assert old_leader.active, "the old instance has not noticed (the situation under test)"
        assert await claimed_until(three) is None  # its INSERT's fence found the lock gone

        await new.start(new_room, http=False)
        assert new.sender
        new.sender.sent_elsewhere = old_room.accepted.get  # what the successor's own sync would show it
        loops.append(asyncio.create_task(new.sender.run()))

        async def all_sent() -> bool:
            async with new.sessions() as s:
                rows = (await s.execute(select(OutgoingMessage.txn_id, OutgoingMessage.status))).all()
            return {t: st for t, st in rows} == {one: "sent", two: "sent", three: "sent"}

        # The claims of the first two are taken over after the grace (storage.leader.TAKEOVER_GRACE_S).
        await wait_until(all_sent, "the successor to send or record every reply", timeout=60)
        assert sorted(new_room.sent) == sorted([two, three])

        old_room.release.set()  # the old instance's stuck send returns; its lane goes on with what it was offered
        await asyncio.wait_for(old.sender.drain(), timeout=30)  # waits for the lane, then finds nothing due
        assert old_room.sent == [one], "the instance that lost its lock sent a reply"
    finally:
        old_room.release.set()
        await cancel_within(loops)
        for task in elections:
            task.cancel()
        await asyncio.gather(*elections, return_exceptions=True)
        await new.close()
        await old.close()
        await old_leader.close()
        await new_leader.close()
