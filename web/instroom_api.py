"""``POST /api/instroom``: a case system (the role BOSZ plays) reports incoming suspects; the bot checks them
and posts the signal in the ZSM room for the known ones only.

Request: ``Authorization: Bearer <token>`` and ``{"ids": ["<bsn-of-skn>", ...], "bron": "BOSZ",
"referentie": "<unique per batch, optional>"}``. Answers (JSON, Dutch ``fout`` text): 200
``{"gecontroleerd": n, "bekend": k, "gemeld": bool}``, 400 bad JSON or shape, 401 bad token, 422 bad id(s),
503 registry unreachable. ``referentie`` makes a retried POST post the signal only once.

Configuration ``[instroom]``: ``token`` (set ZSM_BOT_INSTROOM_TOKEN), ``room`` (the ZSM room id),
``max_batch``. Without a token the route is not offered at all.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from commands.instroom import lookup_all, parse_batch
from commands.vh_view import ALL_FIELDS, Zicht, compose_batch, signal_fields
from config.instroom import InstroomSettings
from domain.clock import local
from integrations.registry.base import RegistryUnavailable
from services.messages import NewMessage, message_content, queue, txn_id_for

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

_REF = re.compile(r"^[A-Za-z0-9._:/\-]{1,100}$")
ACTOR = "api:instroom"


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="zsm-bot"'} if status == 401 else None
    return web.json_response({"fout": message, **extra}, status=status, headers=headers)


def routes(runtime: Runtime, cfg: InstroomSettings) -> list[web.RouteDef]:
    expected = f"Bearer {cfg.token}".encode()

    async def post_instroom(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "Geen of een onjuist bearer-token in de Authorization-header.")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "De body is geen geldige JSON.")
        if not isinstance(body, dict):
            return _error(400, 'Verwacht een JSON-object als {"ids": ["123456782"]}.')
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return _error(400, "Veld 'ids' moet een niet-lege lijst van teksten (BSN of SKN) zijn.")
        if len(ids) > cfg.max_batch:
            return _error(400, f"Te veel ids ({len(ids)}); maximaal {cfg.max_batch} per verzoek.")
        bron = body.get("bron", "")
        ref = body.get("referentie")
        if not isinstance(bron, str) or len(bron) > 40:
            return _error(400, "Veld 'bron' moet een korte tekst zijn.")
        if ref is not None and (not isinstance(ref, str) or not _REF.match(ref)):
            return _error(400, "Veld 'referentie' moet 1-100 letters, cijfers of ._:/- zijn.")
        services = runtime.services
        people, problems = parse_batch(ids, services.settings.check.identificatie)
        if problems:
            return _error(422, "Een of meer ids zijn ongeldig; er is niets gecontroleerd.",
                          ongeldig=[{"positie": i, "reden": reason} for i, reason in problems])
        registry = services.registry
        try:
            items = await lookup_all(registry, people)
        except RegistryUnavailable:
            return _error(503, "Het register is nu niet bereikbaar; probeer het later opnieuw.")
        now = services.clock.now()
        known = [i for i in items if i.markeringen]
        request_key = f"api-instroom:{ref or uuid.uuid4().hex}"
        # The signal lands in the shared room: what the covenant profiles allow any role at the table to see.
        zicht = Zicht(role_fields=frozenset(ALL_FIELDS), regio=services.settings.regio)
        async with runtime.sessions() as session:
            for item in items:
                await services.auditor.record(
                    session, kind="register.raadpleging", at=now, actor=ACTOR, role=None, person=item.person.value,
                    details={"soort": item.person.kind, "via": "api-instroom", "bron": bron or None,
                             "referentie": ref, "uitkomst": "hit" if item.markeringen else "no-hit",
                             "register": registry.name,
                             "veiligheidshuizen": sorted({m.veiligheidshuis for m in item.markeringen}),
                             "velden": signal_fields([item], services.veiligheidshuizen, zicht)},
                )
            if known:
                reply = compose_batch(items, today=local(now).date(), veiligheidshuizen=services.veiligheidshuizen,
                                      system=registry.name, zicht=zicht, known_only=True, source=bron)
                await queue(session, NewMessage(room_id=cfg.room, content=message_content(reply),
                                                txn_id=txn_id_for(request_key, "signaal"), case_data=True), now)
            await session.commit()
        if known and runtime.sender is not None:
            runtime.sender.wake()
        log.info("instroom api", extra={"checked": len(items), "known": len(known)})
        return web.json_response({"gecontroleerd": len(items), "bekend": len(known), "gemeld": bool(known)})

    return [web.post("/api/instroom", post_instroom)]
