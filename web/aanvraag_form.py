"""The answer form for veiligheidshuis staff without a Matrix account, behind a signed link that expires.

The link in the mail carries ``t=<expiry>.<HMAC-SHA256(request id, expiry)>`` with the key from
``[aanvraag] link_sleutel`` (``ZSM_BOT_AANVRAAG_LINK_SLEUTEL``). A forged, altered or expired token gets a
403 page and changes nothing. Pages are rendered by Jinja2 with autoescaping; nothing typed is echoed as markup.
"""

from __future__ import annotations

from aiohttp import web
from jinja2 import DictLoader, Environment, select_autoescape

from domain import aanvraag as rules
from domain.clock import Clock, format_local
from domain.errors import UserError
from services.aanvraag import AanvraagService

MAX_ANSWER = 4000

_PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="referrer" content="no-referrer"></head>
<body><main>
<h1>{{ title }}</h1>
{% if message %}<p id="melding">{{ message }}</p>{% endif %}
{% if form %}
<dl>
<dt>Persoon</dt><dd id="persoon">{{ person }}</dd>
<dt>Veiligheidshuis</dt><dd>{{ vh }}</dd>
<dt>Doelgroep</dt><dd>{{ doelgroep }}</dd>
{% for line in schets %}<dt>{{ line.split(": ", 1)[0] }}</dt><dd class="schets">{{ line.split(": ", 1)[1] }}</dd>
{% endfor %}{% if vraag %}<dt>Vraag van ZSM</dt><dd id="vraag">{{ vraag }}</dd>{% endif %}
<dt>Termijn</dt><dd id="termijn">uiterlijk {{ deadline }} (Nederlandse tijd)</dd>
</dl>
<form method="post" action="{{ action }}">
<input type="hidden" name="t" value="{{ token }}">
<p><label for="naam">Uw naam</label><br><input id="naam" name="naam" required maxlength="120"></p>
<p><label for="afdoening">Geadviseerde afdoening</label><br>
<select id="afdoening" name="afdoening" required><option value="">kies een afdoening of 'geen'</option>
{% for code, label in afdoeningen %}<option value="{{ code }}">{{ label }}</option>{% endfor %}</select></p>
<p><label for="advies">Advies met reden</label><br>
<textarea id="advies" name="advies" required rows="8" cols="70" maxlength="{{ max }}"></textarea></p>
<p><button id="verstuur" type="submit">Advies versturen</button></p>
</form>
{% endif %}
</main></body></html>"""

_env = Environment(loader=DictLoader({"page.html": _PAGE}), autoescape=select_autoescape(default=True))
_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'"}


def _page(status: int = 200, **values: object) -> web.Response:
    body = _env.get_template("page.html").render(max=MAX_ANSWER, afdoeningen=values.pop("afdoeningen", ()),
                                                 **values)
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status, headers=_HEADERS)


def routes(service: AanvraagService, clock: Clock) -> list[web.RouteDef]:
    async def _checked(request: web.Request, token: str) -> tuple[int, web.Response | None]:
        raw = request.match_info["ref"]
        if not raw.isdigit():
            return 0, _page(404, title="Niet gevonden", message="Deze aanvraag bestaat niet.")
        request_id = int(raw)
        problem = service.verify(request_id, token, clock.now())
        if problem:
            return request_id, _page(403, title="Link geweigerd", message=problem +
                                     " Vraag ZSM of de bereikbaarheidsdienst om een nieuwe link.")
        return request_id, None

    async def show(request: web.Request) -> web.Response:
        request_id, refused = await _checked(request, request.query.get("t", ""))
        if refused:
            return refused
        req = await service.form_view(request_id)
        if req is None:
            return _page(404, title="Niet gevonden", message="Deze aanvraag bestaat niet.")
        if not req.active:
            return _page(409, title=f"Aanvraag {req.ref}", message=req.state.label.capitalize() +
                         ": een advies kan niet meer via deze link.")
        return _page(
            title=f"Advies op aanvraag {req.ref}", form=True, token=request.query.get("t", ""),
            action=f"/aanvraag/{req.id}/antwoord", person=req.identificatie, vh=req.vh_naam, schets=req.schets,
            doelgroep=req.doelgroep, vraag=req.vraag, deadline=format_local(req.deadline),
            afdoeningen=service.afdoening_choices(),
        )

    async def submit(request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("t", ""))
        request_id, refused = await _checked(request, token)
        if refused:
            return refused
        naam = " ".join(str(form.get("naam", "")).split())[:120]
        advies = str(form.get("advies", "")).strip()
        afdoening = str(form.get("afdoening", "")).strip()
        if not naam or not advies or not afdoening:
            return _page(400, title="Niet verstuurd", message="Vul uw naam, de geadviseerde afdoening (of 'geen') "
                         "en het advies in. Ga terug en probeer het opnieuw.")
        if len(advies) > MAX_ANSWER:
            return _page(400, title="Niet verstuurd", message=f"Het advies is te lang (maximaal {MAX_ANSWER} tekens).")
        try:
            req = await service.answer_from_form(request_id, naam, afdoening, advies, clock.now())
        except UserError as exc:
            return _page(409, title=f"Aanvraag {rules.ref_text(request_id)}", message=exc.message)
        if req is None:
            return _page(404, title="Niet gevonden", message="Deze aanvraag bestaat niet.")
        ref = req.ref
        return _page(title=f"Advies ontvangen ({ref})",
                     message="Dank u. Uw advies is doorgegeven aan ZSM en wordt bij de beslissing betrokken.")

    return [web.get("/aanvraag/{ref}/antwoord", show), web.post("/aanvraag/{ref}/antwoord", submit)]
