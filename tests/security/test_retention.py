"""Retention: the purge removes what is past its period, keeps the rest, and records how much, not what."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config.privacy import parse_retention
from domain.clock import FixedClock
from domain.errors import ConfigError
from domain.retention import DEFAULT_DAYS
from storage.besluit_models import AanmeldingRow, BesluitRow
from storage.models import AuditRecord, InboxEntry, OutgoingMessage
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW


def test_periods_are_settings_with_checked_values() -> None:
    assert parse_retention({}).days == DEFAULT_DAYS
    assert parse_retention({"inbox": 3}).days["inbox"] == 3
    with pytest.raises(ConfigError, match=r"privacy\.bewaren\.alles: onbekende soort"):
        parse_retention({"alles": 3})
    with pytest.raises(ConfigError, match=r"privacy\.bewaren\.inbox: verwacht een aantal dagen"):
        parse_retention({"inbox": 0})


async def test_purge_removes_only_what_expired(tmp_path: Path, database_url: str) -> None:
    clock = FixedClock(NOW)
    bot = await ConsoleBot.start(write_config(tmp_path, database_url, sections={"privacy.bewaren": {
        "inbox": 10, "berichten": 10, "besluiten": 100, "aanmeldingen": 100}}), clock=clock)
    try:
        old, fresh = NOW - timedelta(days=200), NOW - timedelta(days=1)
        async with bot.runtime.sessions() as s, s.begin():
            for i, when in enumerate((old, old, fresh)):
                s.add(InboxEntry(event_id=f"$e{i}", room_id="!r", sender="@a:localhost", command="ping",
                                 outcome="handled", received_at=when, handled_at=when))
                s.add(OutgoingMessage(txn_id=f"t{i}", room_id="!r", content=None, status="sent", attempts=1,
                                      next_attempt_at=when, created_at=when, carries_case_data=True))
                s.add(BesluitRow(subject="h", zaak="", afdoening="sepot02", status="actief", decided_by="@a:l",
                                 role="ovj", decided_at=when, event_id=f"$b{i}", room_id="!r"))
                s.add(AanmeldingRow(subject="h", veiligheidshuis="utrecht", created_by="@a:l", created_at=when))
            s.add(OutgoingMessage(txn_id="pending-old", room_id="!r", content={"body": "x"}, status="pending",
                                  attempts=0, next_attempt_at=old, created_at=old, carries_case_data=False))
        counts = await bot.runtime.purge_now()
        assert counts["inbox"] == 2 and counts["berichten"] == 2
        assert counts["besluiten"] == 2 and counts["aanmeldingen"] == 2
        async with bot.runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboxEntry)) == 1
            left = (await s.execute(select(OutgoingMessage.txn_id))).scalars().all()
            assert sorted(left) == ["pending-old", "t2"], "unsent messages are never purged"
            assert await s.scalar(select(func.count()).select_from(BesluitRow)) == 1
            rec = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "bewaring.opgeschoond"))).scalar_one()
        assert rec.subject is None and set(rec.details) == {"verwijderd", "te_redigeren"}
        assert rec.details["verwijderd"]["besluiten"] == 2
    finally:
        await bot.close()


async def test_old_audit_records_are_purged_behind_a_checkpoint(tmp_path: Path, database_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The chain still verifies after its oldest records are removed; the checkpoint is reported and MAC-valid;
    the head is published as a witness line after the purge and holds; a change or a deletion in what remains is
    still found; the purge records itself in the chain."""
    import logging

    from sqlalchemy import delete, update

    from storage.audit import Witness
    from storage.audit import verify_chain as verify

    clock = FixedClock(NOW)
    bot = await ConsoleBot.start(write_config(tmp_path, database_url, sections={"privacy.bewaren": {"audit": 10}}),
                                 clock=clock)

    async def verify_chain(s: Any, *witnesses: Witness) -> Any:
        return await verify(s, bot.runtime.auditor, now=clock.now(), retention=timedelta(days=10),
                            witnesses=witnesses)

    try:
        for _ in range(3):
            await bot.say("!ping")
        async with bot.runtime.sessions() as s:
            before = await verify_chain(s)
            old = int(await s.scalar(select(func.max(AuditRecord.id))) or 0)
        assert before.ok and before.checkpoint == 0 and old >= 4
        clock.advance(timedelta(days=11))
        await bot.say("!ping")
        with caplog.at_level(logging.INFO, logger="bot.audit_witness"):
            counts = await bot.runtime.purge_now()
        assert counts["audit"] == old
        lines = [r for r in caplog.records if r.getMessage() == "audit witness" and getattr(r, "reason", "") == "purge"]
        assert len(lines) == 1, "the head is published after the purge"
        witness = Witness(lines[0].audit_seq, lines[0].audit_mac, "getuige na opschonen")  # type: ignore[attr-defined]
        async with bot.runtime.sessions() as s:
            result = await verify_chain(s, witness)
            first = int(await s.scalar(select(func.min(AuditRecord.id))) or 0)
            last = int(await s.scalar(select(func.max(AuditRecord.id))) or 0)
            rec = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "bewaring.opgeschoond"))).scalar_one()
        assert result.ok and result.checkpoint == old and first == old + 1, result.problems
        assert witness.seq == last and result.witnessed == 1
        assert rec.details["verwijderd"]["audit"] == old
        assert result.checked == last - old >= 2, "the later ping's record and the purge's own are checked"
        assert (await bot.runtime.purge_now())["audit"] == 0, "nothing younger than the period goes"

        async with bot.runtime.sessions() as s, s.begin():
            await s.execute(update(AuditRecord).where(AuditRecord.id == first).values(kind="x"))
        async with bot.runtime.sessions() as s:
            broken = await verify_chain(s)
        assert not broken.ok and broken.problem_at == first
        async with bot.runtime.sessions() as s, s.begin():
            await s.execute(delete(AuditRecord).where(AuditRecord.id == first))
        async with bot.runtime.sessions() as s:
            gap = await verify_chain(s)
        assert not gap.ok and gap.problem_at == first and "ontbreekt" in gap.reason
        async with bot.runtime.sessions() as s:  # verified by a clock put back before the retention ran out
            early = await verify(s, bot.runtime.auditor, now=NOW + timedelta(days=5), retention=timedelta(days=10))
        assert f"controlepunt na record {old} is jonger dan de bewaartermijn" in early.problems[0]
    finally:
        await bot.close()
