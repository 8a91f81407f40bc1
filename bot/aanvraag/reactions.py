"""A ✅ reaction on the ping message acknowledges the request, as ``!ack`` does.

The Matrix backend calls ``handle_reaction`` for every ``m.reaction`` event; the ping's transaction id is
stored on the request, so the event id the homeserver gave it is found in ``outgoing_message``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain import aanvraag as rules
from services.aanvraag import AanvraagService

if TYPE_CHECKING:
    from bot.runtime import Runtime

ACK_KEYS = frozenset({"✅", "✅️", "✔️", "✔"})


async def handle_reaction(runtime: Runtime, *, sender: str, room_id: str, reacts_to: str, key: str) -> str | None:
    """Returns a short Dutch outcome (for the log or a reply), or None when the reaction is not ours."""
    if key not in ACK_KEYS:
        return None
    service: AanvraagService = runtime.services.extras["aanvraag"]
    now = runtime.clock.now()
    async with runtime.sessions() as s, s.begin():
        req = await service.request_for_event(s, reacts_to)
        if req is None or req.oncall_room != room_id:
            return None
        ref = rules.ref_text(req.id)
        if not await service.is_member(s, req.veiligheidshuis, sender):
            await service.auditor.record(s, kind="aanvraag.bevestiging_geweigerd", at=now, actor=sender,
                                         details={"aanvraag": ref, "via": "reactie"})
            return f"{sender} staat niet in het rooster van {req.veiligheidshuis}; bevestiging van {ref} genegeerd."
        problem = await service.acknowledge(s, req, sender, now, via="reactie")
    if problem:
        return problem
    service.on_enqueued()
    return f"Aanvraag {ref} bevestigd door {sender}."
