"""``[audit]``: the audit key and the witness, the chain's head published outside the database.

``key`` (set ZSM_BOT_AUDIT_KEY in production) keys both the hash of personal identifiers and the chain's MACs.
``witness_interval_seconds`` is how often the head is published as a log line (and after each purge);
``witness_room`` optionally also posts it in a dedicated Matrix room.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.reader import ConfigReader
from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID

KEYS = ("key", "witness_interval_seconds", "witness_room")


@dataclass(frozen=True)
class AuditSettings:
    # Keyed hash for personal identifiers and the chain's MACs; never in the file in production.
    key: str = ""
    witness_interval_seconds: int = 300
    witness_room: str | None = None


def parse_audit(r: ConfigReader) -> AuditSettings:
    r.only(KEYS)
    room = r.text("witness_room") or None
    if room is not None and not ROOM_ID.match(room):
        raise ConfigError(f"audit.witness_room: verwacht een room-id als !abc:example.nl, kreeg {room!r}")
    return AuditSettings(key=r.text("key", "") or "",
                         witness_interval_seconds=r.integer("witness_interval_seconds", 300, minimum=10, maximum=3600),
                         witness_room=room)
