"""A ✅ reaction on the ping message acknowledges the request, as ``!ack`` does.

The Matrix backend calls ``handle_reaction`` for every ``m.reaction`` event; the ping's transaction id is
stored on the request, so the event id the homeserver gave it is found in ``outgoing_message``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime

ACK_KEYS = frozenset({"✅", "✅️", "✔️", "✔"})


async def handle_reaction(runtime: Runtime, *, sender: str, room_id: str, reacts_to: str, key: str) -> str | None:
    """Returns a short Dutch outcome (for the log or a reply), or None when the reaction is not ours."""
    service = runtime.services.aanvraag
    if key not in ACK_KEYS:
        return None
    return await service.acknowledge_by_reaction(reacts_to, room_id, sender, runtime.clock.now())
