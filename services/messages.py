"""The one writer of outgoing room messages: every reply, note, notice, advice-request ping, reminder and answer
is queued here, in the caller's transaction, as a row of ``outgoing_message`` that the send loop delivers.

The transaction id is derived from what caused the message (the command's event id, a request and its step), so
a message is queued once and a resend after a crash or a 429 is recognised by the homeserver as the same one.
A message about a person carries that person's keyed hash (``subject``), so a technisch sepot 01 finds it.
A message goes in the bulk lane unless its writer says a person is waiting for it (``INTERACTIVE``: a command's
reply and notes); the send loop serves that lane first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from services.base import Tx
from services.reply import Reply
from storage import outgoing
from storage.leader import Leadership
from storage.outgoing import BULK, INTERACTIVE, NewMessage, Queued

__all__ = ["BULK", "INTERACTIVE", "NewMessage", "Queued", "message_content", "queue", "queue_at_commit", "queue_many",
           "txn_id_for"]


def txn_id_for(source_event_id: str, purpose: str = "reply") -> str:
    digest = hashlib.sha256(f"{source_event_id}\x00{purpose}".encode()).hexdigest()[:40]
    return f"zsm{digest}"


def message_content(
    reply: Reply,
    *,
    in_reply_to: str | None = None,
    thread_root: str | None = None,
    mentions: tuple[str, ...] = (),
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": reply.text,
        "format": "org.matrix.custom.html",
        "formatted_body": reply.html,
        "m.mentions": {"user_ids": list(mentions)} if mentions else {},
    }
    if in_reply_to:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": thread_root or in_reply_to,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": in_reply_to},
        }
    return content


async def queue(tx: Tx, msg: NewMessage, now: datetime, *, if_absent: bool = True,
                claim_for: Leadership | None = None) -> Queued | None:
    """Queue one message inside the caller's transaction; the txn id is the idempotency key.

    With ``if_absent`` (the default) a message already queued under this txn id is left alone and None is
    returned. The dispatcher passes False: its inbox row already guarantees one reply per event, and a
    duplicate then collides on the txn id (``storage.inbox.AlreadyRecorded``), rolling back the duplicate
    delivery as a whole.

    ``claim_for``: written already claimed by this instance (fenced in the same statement), for a caller that
    hands the row to the sender after its commit (``storage.outgoing.insert_one``).
    """
    if if_absent and await outgoing.present_txn_ids(tx, [msg.txn_id]):
        return None
    return await outgoing.insert_one(tx, msg, now, claim_for=claim_for)


def queue_at_commit(tx: Tx, msg: NewMessage, now: datetime, *,
                    claim_for: Leadership | None = None) -> Callable[[], Queued]:
    """``queue`` without ``if_absent``, for a transaction-less session (``storage.audit.one_statement_sessions``):
    the row goes in the commit's one statement, and the returned function gives its ``Queued`` after the commit."""
    return outgoing.insert_one_at_commit(tx, msg, now, claim_for=claim_for)


async def queue_many(tx: Tx, msgs: Sequence[NewMessage], now: datetime) -> None:
    """``queue`` for a batch: one lookup of the txn ids already queued; a txn id twice in the batch counts once."""
    if not msgs:
        return
    seen = await outgoing.present_txn_ids(tx, [m.txn_id for m in msgs])
    fresh: list[NewMessage] = []
    for m in msgs:
        if m.txn_id in seen:
            continue
        seen.add(m.txn_id)
        fresh.append(m)
    await outgoing.insert_many(tx, fresh, now)
