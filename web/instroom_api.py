"""``POST /api/instroom``: a case system (the role BOSZ plays) reports incoming suspects; the bot checks them
and posts the signal in the ZSM room for the known ones only.

Request: ``Authorization: Bearer <token>`` and ``{"ids": ["<bsn-of-skn>", ...], "bron": "BOSZ",
"referentie": "<unique per batch, optional>"}``. Answers (JSON, Dutch ``fout`` text): 200
``{"gecontroleerd": n, "bekend": k, "gemeld": bool}``, 400 bad JSON or shape (also a body over ``MAX_BODY``
bytes or nested deeper than ``MAX_DEPTH``, refused before parsing), 401 bad token, 422 bad id(s), 503 registry
unreachable. ``referentie`` makes a retried POST post the signal only once.

Configuration ``[instroom]``: ``token`` (set ZSM_BOT_INSTROOM_TOKEN), ``room`` (the ZSM room id),
``max_batch``. Without a token the route is not offered at all.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from config.instroom import InstroomSettings
from services.base import Tx
from services.instroom import InstroomService, SignaalResult

log = logging.getLogger(__name__)

_REF = re.compile(r"^[A-Za-z0-9._:/\-]{1,100}$")
# The largest batch (1,000 ids) with its fields fits well within 64 KiB; the expected body is two levels deep.
MAX_BODY = 64 * 1024
MAX_DEPTH = 8
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")

# Composes the signal as the room sees it (like !instroom) and queues it inside the given transaction:
# (tx, result, source, idempotency key). The wiring supplies it, so this page needs no chat rendering of its own.
PublishFn = Callable[[Tx, SignaalResult, str, str], Awaitable[None]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="zsm-bot"'} if status == 401 else None
    return web.json_response({"fout": message, **extra}, status=status, headers=headers)


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than ``limit`` (brackets inside strings not counted):
    checked before ``json.loads``, whose recursion a deep enough body exhausts."""
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None when it is longer than ``MAX_BODY`` (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY + 1 - size):  # read(n) may return less than n
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return None
    return b"".join(chunks)


def routes(service: InstroomService, cfg: InstroomSettings, publish: PublishFn, wake: Callable[[], None]
           ) -> list[web.RouteDef]:
    """``post`` puts the signal in the send queue (same transaction as the audit records); ``wake`` nudges the
    sender once that transaction committed."""
    expected = f"Bearer {cfg.token}".encode()

    async def post_instroom(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "Geen of een onjuist bearer-token in de Authorization-header.")
        raw = await _read_limited(request)
        if raw is None:
            return _error(400, f"De body is te groot (hoogstens {MAX_BODY // 1024} KiB); stuur minder ids per "
                               "verzoek.")
        if too_deep(raw):
            return _error(400, f"De JSON is te diep genest (hoogstens {MAX_DEPTH} niveaus); stuur een object als "
                               '{"ids": ["123456782"]}.')
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
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
        request_key = f"api-instroom:{ref or uuid.uuid4().hex}"

        async def publish_signal(tx: Tx, result: SignaalResult) -> None:
            await publish(tx, result, bron, request_key)

        result = await service.signaal(ids, bron, ref, publish_signal)
        if result.problems:
            return _error(422, "Een of meer ids zijn ongeldig; er is niets gecontroleerd.",
                          ongeldig=[{"positie": i, "reden": reason} for i, reason in result.problems])
        if result.unavailable:
            return _error(503, "Het register is nu niet bereikbaar; probeer het later opnieuw.")
        known = result.known
        if known:
            wake()
        log.info("instroom api", extra={"checked": len(result.items), "known": len(known)})
        return web.json_response({"gecontroleerd": len(result.items), "bekend": len(known), "gemeld": bool(known)})

    return [web.post("/api/instroom", post_instroom)]
