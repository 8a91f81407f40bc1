"""The audit trail: every lookup, decision and message leaves a record, chained by hash.

Personal identifiers are stored as a keyed hash (HMAC-SHA256 with a key from the environment): a database
dump does not reveal whom a record is about, yet an inzage export for a known BSN finds every record.
Each record's hash covers its id and the previous hash, so a changed, deleted or reordered record breaks
the chain at that point.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditHead, AuditRecord

GENESIS = "0" * 64


def _canonical(record_id: int, at: datetime, kind: str, actor: str | None, role: str | None,
               subject: str | None, details: dict[str, Any], prev_hash: str) -> bytes:
    payload = [record_id, at.isoformat(), kind, actor, role, subject, details, prev_hash]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(record_id: int, at: datetime, kind: str, actor: str | None, role: str | None,
               subject: str | None, details: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(_canonical(record_id, at, kind, actor, role, subject, details, prev_hash)).hexdigest()


@dataclass(frozen=True)
class Auditor:
    key: bytes

    def subject_of(self, identifier: str) -> str:
        """Keyed hash of a person's identifier (BSN, SKN): stable, not reversible without the key."""
        normalized = "".join(identifier.split()).upper()
        return hmac.new(self.key, normalized.encode(), hashlib.sha256).hexdigest()

    async def record(
        self,
        session: AsyncSession,
        *,
        kind: str,
        at: datetime,
        actor: str | None = None,
        role: str | None = None,
        person: str | None = None,
        subject: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record inside the caller's transaction, so it commits or rolls back with the act.
        ``person`` is hashed here; ``subject`` is an already keyed hash (``subject_of``)."""
        head = (
            await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        ).scalar_one()
        subject = self.subject_of(person) if person else subject
        body = dict(details or {})
        at = at.replace(microsecond=(at.microsecond // 1000) * 1000)
        record_id = head.last_id + 1
        digest = chain_hash(record_id, at, kind, actor, role, subject, body, head.last_hash)
        rec = AuditRecord(
            id=record_id, at=at, kind=kind, actor=actor, role=role, subject=subject,
            details=body, prev_hash=head.last_hash, hash=digest,
        )
        session.add(rec)
        head.last_id = record_id
        head.last_hash = digest
        await session.flush()
        return rec

    async def record_many(self, session: AsyncSession, entries: list[dict[str, Any]]) -> None:
        """Append several records under one lock of the chain's head; each entry takes ``record``'s keywords.
        The chain is the same as when they were recorded one by one."""
        if not entries:
            return
        head = (
            await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        ).scalar_one()
        last_id, last_hash = head.last_id, head.last_hash
        records = []
        for e in entries:
            at: datetime = e["at"]
            at = at.replace(microsecond=(at.microsecond // 1000) * 1000)
            person = e.get("person")
            subject = self.subject_of(person) if person else None
            body = dict(e.get("details") or {})
            last_id += 1
            digest = chain_hash(last_id, at, e["kind"], e.get("actor"), e.get("role"), subject, body, last_hash)
            records.append(AuditRecord(id=last_id, at=at, kind=e["kind"], actor=e.get("actor"), role=e.get("role"),
                                       subject=subject, details=body, prev_hash=last_hash, hash=digest))
            last_hash = digest
        session.add_all(records)
        head.last_id = last_id
        head.last_hash = last_hash
        await session.flush()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem_at: int | None = None
    reason: str = ""
    checkpoint: int = 0  # records removed by the purge before the first one checked


async def verify_chain(session: AsyncSession, batch: int = 5000) -> VerifyResult:
    """Walk the chain in id order: a changed record breaks its hash, a deleted one leaves a gap or a wrong
    ``prev_hash``, a reordering breaks the link, a removed tail no longer matches the head."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    # After a purge the chain starts at the checkpoint: the hash of the last removed record.
    expected_prev = head.checkpoint_hash or GENESIS
    expected_id = head.checkpoint_id + 1
    checked = 0
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(AuditRecord).where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(batch)
            )
        ).scalars().all()
        if not rows:
            break
        for r in rows:
            if r.id != expected_id:
                return VerifyResult(False, checked, expected_id, f"record {expected_id} ontbreekt (volgende is {r.id})",
                                    head.checkpoint_id)
            if r.prev_hash != expected_prev:
                reason = "verwijst niet naar het vorige record (verwijderd of verplaatst)"
                return VerifyResult(False, checked, r.id, reason, head.checkpoint_id)
            digest = chain_hash(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, r.prev_hash)
            if digest != r.hash:
                return VerifyResult(False, checked, r.id, "inhoud gewijzigd (hash klopt niet)", head.checkpoint_id)
            expected_prev = r.hash
            expected_id += 1
            checked += 1
        last_id = rows[-1].id
    if head.last_id != expected_id - 1 or head.last_hash != expected_prev:
        return VerifyResult(False, checked, expected_id, f"laatste records ontbreken (kop verwacht {head.last_id})",
                            head.checkpoint_id)
    return VerifyResult(True, checked, checkpoint=head.checkpoint_id)


async def prune(session: AsyncSession, before: datetime) -> int:
    """Remove the oldest records (a prefix of the chain, up to the last one older than ``before``) and move the
    checkpoint to the last removed record's hash. Runs in the purge's transaction; the purge's own record follows."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
    cutoff = await session.scalar(select(func.max(AuditRecord.id)).where(AuditRecord.at < before))
    if cutoff is None or cutoff <= head.checkpoint_id:
        return 0
    last_hash = await session.scalar(select(AuditRecord.hash).where(AuditRecord.id == cutoff))
    if last_hash is None:
        return 0
    result = await session.execute(delete(AuditRecord).where(AuditRecord.id <= cutoff))
    head.checkpoint_id = int(cutoff)
    head.checkpoint_hash = last_hash
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
