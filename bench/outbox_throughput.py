"""Mail outbox throughput to a local SMTP server (aiosmtpd, STARTTLS) against a bare aiosmtplib loop.

    python -m bench.outbox_throughput [--mails 500] [--db sqlite|postgresql]

Both sides send the same messages over one TLS connection to the same server in the same run. The outbox
also does its durable work per mail (status row, audit record, room notice in the send queue). Prints
mails per second for both and the ratio (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

from config.mail import parse_mail_settings
from domain.clock import SystemClock
from domain.veiligheidshuizen import Veiligheidshuis
from integrations.mail.compose import build_message
from integrations.mail.relay import connect
from services.mail_outbox import MailService, MailWorker, RoomNotice
from storage.audit import Auditor
from storage.besluit_models import OutboxMail
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.smtp_helpers import free_port, make_cert

VH = Veiligheidshuis(key="utrecht", naam="Veiligheidshuis regio Utrecht", regio="Midden-Nederland",
                     mailbox="terugkoppeling@vh-utrecht.example", gemeenten=("Utrecht",))


async def main(n: int, db: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    cert, key = make_cert(tmp)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.smtp_sink", str(cert), str(key), str(port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert server.stdout and server.stdin
    assert (await server.stdout.readline()).strip() == b"ready"
    settings = parse_mail_settings({"host": "127.0.0.1", "port": port, "ca_bestand": str(cert),
                                     "afzender": "zsm-bot@om.example", "herroep_seconden": 0}, tmp)
    drop = None
    if db == "postgresql":
        from tests.harness import pg
        url, name = await pg.create_database()
        drop = name
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    clock = SystemClock()
    auditor = Auditor(b"bench-key")
    service = MailService(settings)

    from services.messages import NewMessage, queue_many, txn_id_for

    async def notify(session, notices: list[RoomNotice]) -> None:  # type: ignore[no-untyped-def]
        await queue_many(session, [NewMessage(n.room_id, {"body": n.text}, txn_id_for(n.in_reply_to, n.purpose),
                                              n.in_reply_to) for n in notices], clock.now())

    worker = MailWorker(sessions, settings, clock, auditor, notify)
    async with sessions() as s, s.begin():
        for i in range(n):
            await service.queue(s, kind="terugkoppeling", vh=VH, room_id="!bench:local", event_id=f"$bench{i}",
                                subject_hash="0" * 64, now=clock.now(), hold=False, values={
                                    "persoon": "BSN 123456782", "zaak": f"2026-{i}", "datum": "20-11-2026 10:00",
                                    "afdoening": "OM-strafbeschikking", "reclassering": i % 2 == 0,
                                    "motivering": None, "beperkt": False})
    async with sessions() as s:
        rows = list((await s.execute(select(OutboxMail).order_by(OutboxMail.id))).scalars())

    # Bare loop: the same messages (built from the same stored rows), one TLS connection, nothing else.
    t0 = time.perf_counter()
    client: aiosmtplib.SMTP = await connect(settings)
    for r in rows:
        await client.send_message(build_message(
            sender=settings.afzender, recipient=r.recipient, subject=r.mail_subject,
            message_id=r.message_id.replace("<zsm-", "<bare-"), text=r.body_text or "", html=r.body_html or "",
            date=r.created_at))
    await client.quit()
    bare_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    await worker.drain()
    outbox_s = time.perf_counter() - t0

    async with sessions() as s:
        sent = await s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "sent"))
    server.stdin.close()
    received = int((await server.stdout.readline()).split()[1])
    await server.wait()
    await engine.dispose()
    if drop:
        from tests.harness import pg
        await pg.drop_database(drop)
    assert sent == n and received == 2 * n, (sent, received)
    bare_rate, outbox_rate = n / bare_s, n / outbox_s
    print(f"database: {db}; mails: {n}; server: aiosmtpd on loopback (own process) with STARTTLS")
    print(f"bare aiosmtplib loop: {bare_rate:8.1f} mails/s ({bare_s:.2f} s)")
    print(f"outbox worker:        {outbox_rate:8.1f} mails/s ({outbox_s:.2f} s)")
    print(f"ratio outbox/bare:    {outbox_rate / bare_rate:8.2f} (target >= 0.80)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    a = parser.parse_args()
    asyncio.run(main(a.mails, a.db))
