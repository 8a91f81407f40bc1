"""Two ``zsm-bot run`` processes, own devices, one PostgreSQL database: one active, one standby. A stream of
commands, the active one killed (SIGKILL) in the middle: the standby takes over, every command is answered once
and every decision's mail reaches the relay once (a copy the relay accepted just before the kill may go again,
with the same Message-ID), also when the relay is down over the kill and back after it. Both devices carry the
account's one cross-signing signature."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.transport.cross_signing import verify
from domain.advies import Markering
from storage.besluit_models import OutboxMail
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import BotState, OutgoingMessage
from storage.registry_queries import upsert
from tests.harness.ha import Instance, make_pair, start_active_then_standby, wait_until
from tests.harness.matrix import Homeserver, Officer
from tests.smtp_helpers import SmtpServer, free_port

pytestmark = pytest.mark.matrix

ADULT = "123456782"
N = 50
KILL_AFTER = 20  # replies seen before the active instance is killed


async def _seed(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as s, s.begin():
            await upsert(s, [Markering(bsn=ADULT, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis="utrecht",
                                       doelgroep="veelpleger", status="actief", advies="-", geadviseerde_afdoening=None,
                                       advies_datum=date(2026, 10, 1), regisseur="R")], datetime.now(UTC))
    finally:
        await engine.dispose()


async def _queues_empty(url: str, mails: int) -> bool:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            waiting = await s.scalar(select(func.count()).select_from(OutgoingMessage)
                                     .where(OutgoingMessage.status == "pending"))
            sent = await s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "sent"))
        return waiting == 0 and sent == mails
    finally:
        await engine.dispose()


async def _both_devices_cross_signed(officer: Officer, bot_user: str, instances: list[Instance]) -> None:
    """One set of cross-signing keys for the account (kept in the shared database): each instance's device carries
    a signature of the one self-signing key the master key vouches for."""

    async def signed() -> bool:
        gauges = [await inst.gauge("zsm_device_cross_signed") for inst in instances]
        return all(g == 1 for g in gauges)

    await wait_until(signed, "both devices cross-signed", timeout=120)
    client = officer.client
    async with aiohttp.ClientSession() as http, http.post(
            f"{client.homeserver}/_matrix/client/v3/keys/query", json={"device_keys": {bot_user: []}},
            headers={"Authorization": f"Bearer {client.access_token}"}) as r:
        keys = await r.json()
    (mkid, mpub), = keys["master_keys"][bot_user]["keys"].items()
    ssk = keys["self_signing_keys"][bot_user]
    (skid, spub), = ssk["keys"].items()
    assert verify(ssk, bot_user, mkid, mpub)
    for inst in instances:
        assert verify(keys["device_keys"][bot_user][inst.device_id], bot_user, skid, spub), inst.name


def _is_mail_notice(ev: Any) -> bool:
    return "verzonden aan" in str(getattr(ev, "body", ""))


@pytest.mark.parametrize("relay_down", [False, True], ids=["relay-up", "relay-down-over-the-kill"])
async def test_sigkill_of_the_active_instance_mid_stream(homeserver: Homeserver, tmp_path: Path, pg_url: str,
                                                         cert: tuple[Path, Path], relay_down: bool) -> None:
    smtp = SmtpServer(*cert, free_port()).start()
    await _seed(pg_url)
    pair = await make_pair(homeserver, tmp_path, pg_url, sections={"mail": {
        "enabled": True, "host": "127.0.0.1", "port": smtp.port, "ca_bestand": str(cert[0]), "herroep_seconden": 0,
        "afzender": "zsm-bot@om.example", "backoff_seconden": 0.2, "backoff_max_seconden": 2,
        "max_pogingen": 100}})
    officer, room = pair.officer, pair.room_id
    a, b = pair.instances
    try:
        await start_active_then_standby(pair)
        await _both_devices_cross_signed(officer, pair.bot_user, [a, b])

        commands: list[str] = []
        decisions: set[str] = set()
        killed_at = 0.0
        for i in range(N):
            body = f"!besluit {ADULT} osb zaak: Z{i}" if i % 5 == 0 else "!ping"
            event_id = await officer.send(room, body)
            commands.append(event_id)
            if i % 5 == 0:
                decisions.add(event_id)
            if i == N // 2:
                await wait_until(lambda: sum(1 for c in commands if officer.replies_to(c)) >= KILL_AFTER,
                                 f"{KILL_AFTER} replies from the active instance", timeout=180)
                # The standby has done nothing but sync: no command handled, no message sent.
                assert await b.gauge("zsm_messages_sent_total") == 0
                assert await b.is_standby()
                if relay_down:
                    smtp.stop()
                a.kill()
                killed_at = time.monotonic()
                if relay_down:
                    await wait_until(b.is_active, "the standby to take over", timeout=60)
                    smtp.start()
        first_after = await officer.wait_reply(commands[-1], timeout=240)
        assert first_after is not None
        for event_id in commands:
            await officer.wait_reply(event_id, timeout=240)
        failover_s = time.monotonic() - killed_at
        await wait_until(b.is_active, "the standby to report itself active", timeout=60)
        await wait_until(lambda: _queues_empty(pg_url, len(decisions)), "every message and mail sent", timeout=240)
        # Everything the bot queued is sent; one more answered command proves the room has shown it all.
        marker = await officer.send(room, "!ping")
        await officer.wait_reply(marker, timeout=120)

        answers = {c: [ev for ev in officer.replies_to(c) if not _is_mail_notice(ev)] for c in commands}
        notices = {c: [ev for ev in officer.replies_to(c) if _is_mail_notice(ev)] for c in decisions}
        assert {c: len(v) for c, v in answers.items() if len(v) != 1} == {}, "each command answered exactly once"
        assert {c: len(v) for c, v in notices.items() if len(v) != 1} == {}, "each mail notice exactly once"

        got = smtp.collector.message_ids()
        engine = create_engine(pg_url)
        try:
            async with session_factory(engine)() as s:
                expected = set((await s.execute(select(OutboxMail.message_id))).scalars())
                tokens = set((await s.execute(select(BotState.key).where(BotState.key.like("matrix.sync_token%"))))
                             .scalars())
        finally:
            await engine.dispose()
        assert tokens == {f"matrix.sync_token:{a.device_id}", f"matrix.sync_token:{b.device_id}"}, "one per device"
        assert len(expected) == len(decisions) and set(got) == expected
        repeats = Counter(got) - Counter(set(got))
        assert sum(repeats.values()) <= 1, f"only the mail in the relay window may go twice: {repeats}"
        print(f"failover: all {N} answered {failover_s:.1f}s after the kill; mail repeats {sum(repeats.values())}")
    finally:
        for inst in pair.instances:
            inst.stop()
        await officer.close()
        smtp.stop()
