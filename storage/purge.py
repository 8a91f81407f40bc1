"""The purge: removes what has outlived its retention period and records how much, never what."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycles import MailStatus
from domain.retention import Retention
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag
from storage.audit import Auditor, prune
from storage.besluit_models import AanmeldingRow, BesluitRow, OutboxMail
from storage.models import InboxEntry, OutgoingMessage, OutgoingSubject
from storage.redaction import mark_expired, purgeable
from storage.registry_models import MarkeringRow
from storage.vrijgave_models import Vrijgave
from storage.werklijst_models import Binnenkomst

FINAL_MAIL = (MailStatus.SENT, MailStatus.DEAD, MailStatus.VERVALLEN)
REDACT_KEY = "te_redigeren"  # in purge()'s answer: case-data room messages newly queued for redaction


async def purge(session: AsyncSession, auditor: Auditor, retention: Retention, now: datetime) -> dict[str, int]:
    """Runs inside the caller's transaction, so the removal and its audit record commit together. Returns the
    rows removed per kind, plus under ``REDACT_KEY`` the room messages newly queued for redaction."""

    def before(kind: str) -> datetime:
        return now - retention.period(kind)

    counts: dict[str, int] = {}

    async def remove(name: str, stmt: object) -> None:
        result = await session.execute(stmt)  # type: ignore[call-overload]
        counts[name] = counts.get(name, 0) + int(result.rowcount or 0)

    # First mark what the room must lose, so the bookkeeping rows it needs are not purged below.
    to_redact = await mark_expired(session, before=before("zaakberichten"))
    await remove("inbox", delete(InboxEntry).where(InboxEntry.handled_at < before("inbox")))
    await remove("berichten", delete(OutgoingMessage).where(
        OutgoingMessage.status.in_(("sent", "dead")), OutgoingMessage.created_at < before("berichten"),
        purgeable()))
    await remove("mail", delete(OutboxMail).where(
        OutboxMail.status.in_(FINAL_MAIL), OutboxMail.created_at < before("mail")))
    await remove("besluiten", delete(BesluitRow).where(BesluitRow.decided_at < before("besluiten")))
    await remove("aanmeldingen", delete(AanmeldingRow).where(AanmeldingRow.created_at < before("aanmeldingen")))
    old = select(AdviesAanvraag.id).where(
        AdviesAanvraag.closed_at.is_not(None), AdviesAanvraag.closed_at < before("aanvragen"))
    await remove("aanvragen", delete(AanvraagStap).where(AanvraagStap.aanvraag_id.in_(old)))
    await remove("aanvragen", delete(AdviesAanvraag).where(AdviesAanvraag.id.in_(
        select(AdviesAanvraag.id).where(AdviesAanvraag.closed_at.is_not(None),
                                        AdviesAanvraag.closed_at < before("aanvragen")))))
    await remove("berichten", delete(OutgoingSubject).where(
        OutgoingSubject.txn_id.not_in(select(OutgoingMessage.txn_id))))
    await remove("binnenkomsten", delete(Binnenkomst).where(Binnenkomst.came_in_at < before("binnenkomsten")))
    counts["audit"] = await prune(session, auditor, before("audit"))
    await auditor.record(session, kind="bewaring.opgeschoond", at=now,
                         details={"verwijderd": counts, "te_redigeren": to_redact})
    return {**counts, REDACT_KEY: to_redact}


# services.aanvraag writes an !advies answer into the built-in registry under this source.
ANSWER_SOURCE = "advies op aanvraag"


async def remove_person(session: AsyncSession, *, subjects: Sequence[str], values: Sequence[str]) -> dict[str, int]:
    """Technisch sepot 01: everything the bot holds on the person beyond the decision rows (``delete_case``) and
    its room messages (``storage.redaction.mark_case``): every mail about them, whatever its kind or state (an
    aanmelding carries the full BSN), referrals, advice requests with their steps and texts, release requests,
    and the registry's copy of an ``!advies`` answer. ``subjects`` are the person's keyed hashes, ``values`` their
    identifiers (BSN, SKN): an advice request keeps the identifier it was asked with. Rows removed per kind; the
    audit trail keeps its keyed facts."""
    counts: dict[str, int] = {}

    async def remove(name: str, stmt: object) -> None:
        result = await session.execute(stmt)  # type: ignore[call-overload]
        counts[name] = counts.get(name, 0) + int(result.rowcount or 0)

    subjects, values = list(subjects), list(values)
    await remove("mail", delete(OutboxMail).where(OutboxMail.subject_hash.in_(subjects)))
    await remove("aanmeldingen", delete(AanmeldingRow).where(AanmeldingRow.subject.in_(subjects)))
    requests = select(AdviesAanvraag.id).where(
        or_(AdviesAanvraag.bsn.in_(values), AdviesAanvraag.person_value.in_(values)))
    await remove("aanvraag_stappen", delete(AanvraagStap).where(AanvraagStap.aanvraag_id.in_(requests)))
    await remove("aanvragen", delete(AdviesAanvraag).where(
        or_(AdviesAanvraag.bsn.in_(values), AdviesAanvraag.person_value.in_(values))))
    await remove("vrijgaven", delete(Vrijgave).where(Vrijgave.subject.in_(subjects)))
    await remove("adviesantwoorden", delete(MarkeringRow).where(
        or_(MarkeringRow.bsn.in_(values), MarkeringRow.skn.in_(values)), MarkeringRow.bron == ANSWER_SOURCE))
    return counts
