"""Mail outbox throughput to a local SMTP server (aiosmtpd, STARTTLS) against a bare aiosmtplib loop.

    python -m bench.outbox_throughput [--mails 500] [--blocks 6] [--db sqlite|postgresql]

Both sides send the same messages over one TLS connection to the same server in the same run, in alternating
blocks (which side goes first flips per block, so machine drift and warm-up hit both alike). The outbox also
does its durable work per mail (status row, audit record, room notice in the send queue). Prints mails per
second for both per block and the median ratio over the blocks (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

from bench.leader import as_in_production
from bench.stats import median, print_config
from config.mail import parse_mail_settings
from domain.clock import SystemClock
from domain.lifecycles import MailStatus
from domain.veiligheidshuizen import Veiligheidshuis
from integrations.mail.compose import build_message
from integrations.mail.relay import connect
from services.base import Tx
from services.mail_outbox import MailService, MailWorker, RoomNotice
from storage.audit import Auditor
from storage.besluit_models import OutboxMail
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import AuditRecord
from tests.smtp_helpers import free_port, make_cert

VH = Veiligheidshuis(key="utrecht", naam="Veiligheidshuis regio Utrecht", regio="Midden-Nederland",
                     mailbox="terugkoppeling@vh-utrecht.example", gemeenten=("Utrecht",))


async def main(n: int, blocks: int, db: str) -> None:
    per_block = max(1, n // blocks)
    print_config("bench.outbox_throughput", {
        "mails": per_block * blocks, "blocks": f"{blocks} of {per_block} mails, bare and outbox alternated "
                                               "(which goes first flips per block)",
        "database": db, "server": "aiosmtpd on loopback (own process) with STARTTLS, one connection per run",
        "outbox work per mail": "status row, room notice in the send queue, audit (as the worker writes it)",
        "leadership": "as zsm-bot run has it (PostgreSQL: the election won, each round fenced)",
        "target": "median ratio outbox/bare >= 0.80"})
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

    async def notify(session: Tx, notices: list[RoomNotice]) -> None:
        await queue_many(session, [NewMessage(n.room_id, {"body": n.text}, txn_id_for(n.in_reply_to, n.purpose),
                                              n.in_reply_to) for n in notices], clock.now())

    # The leadership zsm-bot run has on this database: on PostgreSQL every round of mails is fenced under it.
    elected = contextlib.AsyncExitStack()
    leader = await elected.enter_async_context(as_in_production(url))
    worker = MailWorker(sessions, settings, clock, auditor, notify, leader=leader)

    async def queue_block(block: int) -> list[OutboxMail]:
        """Queue one block's mails (not timed) and return the stored rows, which the bare loop sends as well."""
        async with sessions() as s, s.begin():
            for i in range(block * per_block, (block + 1) * per_block):
                await service.queue(s, kind="terugkoppeling", vh=VH, room_id="!bench:local", event_id=f"$bench{i}",
                                    subject_hash="0" * 64, now=clock.now(), hold=False, values={
                                        "persoon": "BSN 123456782", "zaak": f"2026-{i}", "datum": "20-11-2026 10:00",
                                        "afdoening": "OM-strafbeschikking", "reclassering": i % 2 == 0,
                                        "minderjarig": False, "motivering": None, "advies": "",
                                        "beperkt": False})
        async with sessions() as s:
            return list((await s.execute(select(OutboxMail).where(OutboxMail.status == MailStatus.PENDING)
                                         .order_by(OutboxMail.id))).scalars())

    async def bare(rows: list[OutboxMail]) -> float:
        """The same messages (built from the same stored rows), one TLS connection, nothing else."""
        t0 = time.perf_counter()
        client: aiosmtplib.SMTP = await connect(settings)
        for r in rows:
            await client.send_message(build_message(
                sender=settings.afzender, recipient=r.recipient, subject=r.mail_subject,
                message_id=r.message_id.replace("<zsm-", "<bare-"), text=r.body_text or "", html=r.body_html or "",
                date=r.created_at))
        await client.quit()
        return len(rows) / (time.perf_counter() - t0)

    async def outbox(rows: list[OutboxMail]) -> float:
        t0 = time.perf_counter()
        await worker.drain()
        return len(rows) / (time.perf_counter() - t0)

    bare_rates: list[float] = []
    outbox_rates: list[float] = []
    ratios: list[float] = []
    for block in range(blocks):
        rows = await queue_block(block)
        if block % 2 == 0:
            b_rate, o_rate = await bare(rows), await outbox(rows)
        else:
            o_rate, b_rate = await outbox(rows), await bare(rows)
        bare_rates.append(b_rate)
        outbox_rates.append(o_rate)
        ratios.append(o_rate / b_rate)
        print(f"  block {block + 1}/{blocks} ({'bare first' if block % 2 == 0 else 'outbox first'}): "
              f"bare {b_rate:7.1f} mails/s, outbox {o_rate:7.1f} mails/s, ratio {o_rate / b_rate:.2f}", flush=True)

    total = per_block * blocks
    async with sessions() as s:
        sent = await s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "sent"))
        audit_records = await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.kind == "mail.verzonden"))
    server.stdin.close()
    # Read everything the sink prints (one line per Message-ID): reading one line and then waiting for the exit
    # deadlocked once the ids filled the pipe (the hang at --mails 2000).
    out, _ = await server.communicate()
    received, unique = (int(w) for w in out.splitlines()[0].split()[1::2])
    await elected.aclose()
    await engine.dispose()
    if drop:
        from tests.harness import pg
        await pg.drop_database(drop)
    assert sent == total and received == 2 * total and unique == received, (sent, received, unique)
    print(f"bare aiosmtplib loop: median {median(bare_rates):8.1f} mails/s (blocks: "
          f"{', '.join(f'{r:.0f}' for r in bare_rates)})")
    print(f"outbox worker:        median {median(outbox_rates):8.1f} mails/s (blocks: "
          f"{', '.join(f'{r:.0f}' for r in outbox_rates)})")
    verdict = "OK" if median(ratios) >= 0.8 else "MISSED"
    print(f"ratio outbox/bare:    median {median(ratios):8.2f} over {blocks} blocks (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}; target >= 0.80: {verdict})")
    assert audit_records == sent, (audit_records, sent)
    print(f"audit: {audit_records} 'mail.verzonden' records for {sent} mails (one per mail, each batch of "
          f"acceptances written in one insert)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=500, help="mails in total, over all blocks")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    a = parser.parse_args()
    asyncio.run(main(a.mails, a.blocks, a.db))
