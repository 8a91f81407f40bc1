"""``/rapport``: the figures of issue 7 as tables, charts over time and CSV, for the coordinators, behind a login.

Access: a named token from ``[rapport]`` (``token`` for one, set ZSM_BOT_RAPPORT_TOKEN; or a table ``tokens`` of
``naam = "token"`` so every access is audited per person). A browser logs in on ``/rapport/login`` and gets a
random server-side session id in a cookie (HttpOnly, SameSite=Strict, Secure when ``cookie_secure``); a script
sends ``Authorization: Bearer <token>``. Tokens are compared in constant time. Without a configured token the
pages answer 404 with an explanation: never open. Every page view and CSV download, and every refused token, is
an audit record in its own transaction.

The figures come from an injected ``ComputeFn`` (period, veiligheidshuis or None) -> ``Rapport``, by default
``services.rapport.RapportService.figures``, and the page's audit records go through that service too; this
module only shows them: counts through ``small_count``, durations only when the query produced them (enough
observations), charts as server-side SVG (web/svg_chart.py), so the CSP allows no script at all.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Protocol

from aiohttp import web
from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from config.rapport import RapportSettings
from config.settings import Settings
from domain.clock import AMSTERDAM, Clock, format_local
from domain.identifiers import echo
from domain.rapport import (
    MIN_OBSERVATIONS,
    PERIOD_HELP,
    Cijfers,
    Period,
    PeriodError,
    Rapport,
    as_csv,
    format_duur,
    parse_period,
    small_count,
)
from domain.rapport import (
    share as rapport_share,
)
from domain.veiligheidshuizen import Veiligheidshuizen
from services.rapport import RapportService
from web.ops import client_address
from web.svg_chart import Point, Series, bar_chart, line_chart

log = logging.getLogger(__name__)
ComputeFn = Callable[[Period, str | None], Awaitable[Rapport]]


class RecordFn(Protocol):
    """Writes one audit record of the page (kind, actor, details) in a transaction of its own."""

    async def __call__(self, kind: str, actor: str, **details: Any) -> None: ...

COOKIE = "zsm_rapport"
MAX_SPAN = timedelta(days=3 * 366)  # a longer range would draw thousands of buckets
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


def config_notes(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, notes) for ``zsm-bot config-check``."""
    cfg = settings.rapport
    if cfg is None:
        return [], ["rapport: geen token ingesteld; de pagina /rapport staat uit"]
    problems, notes = [], []
    if not settings.http.enabled:
        problems.append("rapport: er is een token ingesteld maar http.enabled = false; /rapport is dan niet bereikbaar")
    if not cfg.cookie_secure:
        notes.append("rapport.cookie_secure = false: zet het op true zodra /rapport achter TLS (https) staat")
    return problems, notes


# --- What is shown: one table of labels, used by the tables and the CSV -----------------------------------------

@dataclass(frozen=True)
class Column:
    attr: str
    label: str
    duur: bool = False
    alleen_totaal: bool = False  # checks: a lookup that found nobody belongs to no veiligheidshuis


@dataclass(frozen=True)
class Row:
    naam: str
    cijfers: Cijfers
    totaal: bool


GROUPS: tuple[tuple[str, tuple[Column, ...]], ...] = (
    ("Instroom", (Column("checks", "Checks", alleen_totaal=True),
                  Column("personen_bekend", "Bekende personen binnen"),
                  Column("personen_teruggekoppeld", "Van hen teruggekoppeld"),
                  Column("hits_volwassen", "Treffers, volwassen"),
                  Column("hits_minderjarig", "Treffers, minderjarig"), Column("aanmeldingen", "Aanmeldingen"))),
    ("Besluiten en terugkoppeling", (
        Column("besluiten_bekend", "Besluiten op bekenden"), Column("terugkoppeling_afgeleverd", "Teruggekoppeld"),
        Column("terugkoppeling_mediaan_s", "Terugkoppeling mediaan", True),
        Column("terugkoppeling_p90_s", "Terugkoppeling p90", True),
        Column("advies_gevolgd", "Advies gevolgd"), Column("advies_afgeweken", "Afgeweken (gemotiveerd)"),
        Column("advies_vrijgesteld", "Vrijgesteld (technisch sepot, selectie minderjarige)"))),
    ("Adviesaanvragen", (
        Column("aanvragen_geopend", "Geopend"), Column("aanvragen_bevestigd", "Bevestigd"),
        Column("aanvragen_op_tijd", "Op tijd beantwoord"), Column("aanvragen_te_laat", "Te laat beantwoord"),
        Column("aanvragen_verlopen", "Verlopen"), Column("respons_mediaan_s", "Responstijd mediaan", True),
        Column("respons_p90_s", "Responstijd p90", True))),
    ("Mail", (Column("mail_afgeleverd", "Afgeleverd"), Column("mail_herhaald", "Opnieuw geprobeerd"),
              Column("mail_dood", "Niet afleverbaar"))),
)
DASH = "–"


def duration_text(seconds: float | None) -> str:
    return format_duur(seconds, missing=DASH)


def cell(row: Row, col: Column) -> str:
    if col.alleen_totaal and not row.totaal:
        return DASH
    value = getattr(row.cijfers, col.attr)
    return duration_text(value) if col.duur else small_count(int(value))


def share(part: int, whole: int) -> str:
    return rapport_share(part, whole) or DASH


def escalaties_text(c: Cijfers) -> str:
    return ", ".join(f"{step}: {small_count(n)}" for step, n in c.escalaties if n) or "0"


def _rows(rapport: Rapport, names: Mapping[str, str]) -> list[Row]:
    """A row per veiligheidshuis, then the total (for one veiligheidshuis its row is the total)."""
    rows = [Row(names.get(key, key), c, False) for key, c in rapport.per_vh]
    if rapport.veiligheidshuis is None or not rows:
        rows.append(Row("Totaal", rapport.totaal, True))
    return rows


def _masked(n: int) -> Point:
    """A small count is drawn as a bar of height 5, lighter, labelled '< 5': the height must not reveal it."""
    if 1 <= n <= 4:
        return Point(float(MIN_OBSERVATIONS), small_count(n), muted=True)
    return Point(float(n), str(n))


def charts(rapport: Rapport) -> list[Markup]:
    labels = [p.label for p, _ in rapport.reeks]
    cs = [c for _, c in rapport.reeks]

    def bars(attr: str, name: str) -> Series:
        return Series(name, [_masked(getattr(c, attr)) for c in cs])

    def hours(attr: str, name: str) -> Series:
        return Series(name, [Point(None, DASH) if getattr(c, attr) is None else
                             Point(getattr(c, attr) / 3600, duration_text(getattr(c, attr))) for c in cs])

    return [
        bar_chart("Bekende personen in ZSM", labels,
                  [bars("hits_volwassen", "volwassen"), bars("hits_minderjarig", "minderjarig")]),
        bar_chart("Besluiten op bekenden en terugkoppeling", labels,
                  [bars("besluiten_bekend", "besluiten"), bars("terugkoppeling_afgeleverd", "teruggekoppeld")]),
        bar_chart("Adviesaanvragen", labels,
                  [bars("aanvragen_geopend", "geopend"), bars("aanvragen_op_tijd", "op tijd"),
                   bars("aanvragen_verlopen", "verlopen")]),
        line_chart("Responstijd adviesaanvragen (uren)", labels,
                   [hours("respons_mediaan_s", "mediaan"), hours("respons_p90_s", "p90")], unit=" u"),
        bar_chart("Dekking: bekende personen binnengekomen en teruggekoppeld", labels,
                  [bars("personen_bekend", "binnengekomen"), bars("personen_teruggekoppeld", "teruggekoppeld")]),
    ]


# --- Pages ------------------------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem}
tbody th{text-align:left;font-weight:normal}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.totaal{font-weight:bold;background:#f4f4f4}
form.filter{display:flex;gap:.8rem;align-items:end;flex-wrap:wrap}label{display:block;font-size:.85rem}
nav.snel a{margin-right:.7rem}.melding{background:#fde8e8;border:1px solid #e0a0a0;padding:.5rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{border:1px solid #eee;max-width:100%;height:auto}
.klein{font-size:.85rem;color:#555}"""

_PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{{ nonce }}">@CSS@</style></head>
<body><main>
<h1>{{ title }}</h1>
{% if message %}<p class="melding" id="melding">{{ message }}</p>{% endif %}
{% if login %}
<form method="post" action="/rapport/login">
<p><label for="token">Toegangstoken</label><input id="token" name="token" type="password" required
 autocomplete="current-password" size="40"></p>
<p><button id="inloggen" type="submit">Inloggen</button></p>
</form>
{% endif %}
{% if filter %}
<form class="filter" method="get" action="/rapport">
<div><label for="periode">Periode</label><input id="periode" name="periode" value="{{ periode }}" size="24"></div>
<div><label for="vh">Veiligheidshuis</label><select id="vh" name="vh">
<option value="">Alle veiligheidshuizen</option>
{% for key, naam in houses %}<option value="{{ key }}"{% if key == vh %} selected{% endif %}>{{ naam }}</option>
{% endfor %}</select></div>
<div><button id="toon" type="submit">Toon</button></div>
</form>
<p class="klein">{{ help }}</p>
<nav class="snel">{% for label, value in quick %}
<a href="/rapport?periode={{ value|urlencode }}&amp;vh={{ vh|urlencode }}">{{ label }}</a>
{% endfor %}</nav>
{% endif %}
{% if rapport %}
<p id="samenvatting">Periode <strong id="periode-label">{{ rapport.period.label }}</strong>
({{ van }} t/m {{ tot }}), {{ vh_naam }}.
<a id="csv" href="/rapport.csv?periode={{ periode|urlencode }}&amp;vh={{ vh|urlencode }}">CSV downloaden</a></p>
{% for group, cols in groups %}
<h2>{{ group }}</h2>
<table class="cijfers"><thead><tr><th>Veiligheidshuis</th>{% for c in cols %}<th>{{ c.label }}</th>{% endfor %}
{% if loop.index == 1 %}<th>Dekking terugkoppeling</th>{% endif %}
{% if loop.index == 2 %}<th>Aandeel teruggekoppeld</th>{% endif %}{% if loop.index == 3 %}<th>Escalaties</th>{% endif %}
</tr></thead><tbody>
{% set gi = loop.index %}
{% for row in rows %}{% set c = row.cijfers %}<tr{% if row.totaal %} class="totaal"{% endif %}>
<th scope="row">{{ row.naam }}</th>
{% for col in cols %}<td class="n">{{ cell(row, col) }}</td>{% endfor %}
{% if gi == 1 %}<td class="n dekking">{{ share(c.personen_teruggekoppeld, c.personen_bekend) }}</td>{% endif %}
{% if gi == 2 %}<td class="n">{{ share(c.terugkoppeling_afgeleverd, c.besluiten_bekend) }}</td>{% endif %}
{% if gi == 3 %}<td>{{ escalaties(c) }}</td>{% endif %}</tr>
{% endfor %}</tbody></table>
{% endfor %}
<p class="klein">Aantallen van 1 tot en met 4 staan er als &lt; 5, zodat geen cijfer naar een persoon wijst. Een
duur (mediaan, p90) staat er alleen bij minstens {{ min_obs }} waarnemingen; anders {{ dash }}. Checks zonder
treffer horen bij geen veiligheidshuis en tellen alleen mee in het totaal. In de grafieken is een lichte balk
&lt; 5 (getekend als 5).</p>
<h2>Over de tijd</h2>
<div class="charts">{% for svg in charts %}{{ svg }}{% endfor %}</div>
<form method="post" action="/rapport/logout"><p><button type="submit">Uitloggen</button></p></form>
{% endif %}
</main></body></html>"""

_env = Environment(loader=DictLoader({"page.html": _PAGE.replace("@CSS@", _CSS)}),
                   autoescape=select_autoescape(default=True))


def _headers(nonce: str) -> dict[str, str]:
    return {"Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; "
                                       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "X-Frame-Options": "DENY"}


def render_page(status: int = 200, **values: Any) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    body = _env.get_template("page.html").render(
        nonce=nonce, cell=cell, share=share, escalaties=escalaties_text, groups=GROUPS,
        help=PERIOD_HELP, min_obs=MIN_OBSERVATIONS, dash=DASH, **values)
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status, headers=_headers(nonce))


def quick_links(today: date) -> list[tuple[str, str]]:
    iso = today.isocalendar()
    last_week = (today - timedelta(days=7)).isocalendar()
    last_month = today.replace(day=1) - timedelta(days=1)
    q = (today.month - 1) // 3 + 1
    lq_year, lq = (today.year - 1, 4) if q == 1 else (today.year, q - 1)
    return [("Deze week", f"{iso.year}-W{iso.week:02d}"), ("Vorige week", f"{last_week.year}-W{last_week.week:02d}"),
            ("Deze maand", f"{today.year}-{today.month:02d}"),
            ("Vorige maand", f"{last_month.year}-{last_month.month:02d}"),
            ("Dit kwartaal", f"{today.year}-Q{q}"), ("Vorig kwartaal", f"{lq_year}-Q{lq}"),
            ("Dit jaar", f"{today.year}-01-01..{today.year}-12-31")]


# --- Access ------------------------------------------------------------------------------------------------------

@dataclass
class _Sessions:
    """Random session ids held in memory: a restart logs everyone out, which is fine for a report page."""

    ttl_s: float
    by_id: dict[str, tuple[str, float]] = field(default_factory=dict)

    def new(self, name: str) -> str:
        now = time.monotonic()
        self.by_id = {k: v for k, v in self.by_id.items() if v[1] > now}
        sid = secrets.token_urlsafe(32)
        self.by_id[sid] = (name, now + self.ttl_s)
        return sid

    def who(self, sid: str) -> str | None:
        entry = self.by_id.get(sid)
        if entry is None or entry[1] <= time.monotonic():
            self.by_id.pop(sid, None)
            return None
        return entry[0]


@dataclass
class _Burst:
    last: float
    count: int
    blocked_until: float = 0.0


@dataclass
class LoginThrottle:
    """Refused tokens per client address: after ``limit`` refusals with less than ``window_s`` between them the
    client gets 429 for ``window_s``, its token not even compared. Such a burst of refusals is one audit record
    (at its first refusal), not one per attempt. Behind a reverse proxy named in ``http.trusted_proxies`` the
    client is the address the proxy forwards (``web.ops.client_address``); behind one that is not named, every
    client shares the proxy's address and a burst elsewhere blocks the login for a minute."""

    limit: int = 5
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    by_client: dict[str, _Burst] = field(default_factory=dict)

    def blocked_for(self, client: str) -> float:
        """Seconds the client still has to wait (0 when not blocked)."""
        burst = self.by_client.get(client)
        return max(0.0, burst.blocked_until - self.clock()) if burst else 0.0

    def refused(self, client: str) -> bool:
        """Count a refusal; True when it starts a burst (and is to be audited)."""
        now = self.clock()
        if len(self.by_client) > 10_000:
            self.by_client = {k: b for k, b in self.by_client.items() if now - b.last <= self.window_s}
        burst = self.by_client.get(client)
        new = burst is None or now - burst.last > self.window_s
        if burst is None or new:
            burst = self.by_client[client] = _Burst(now, 0)
        burst.count += 1
        burst.last = now
        if burst.count >= self.limit and burst.blocked_until <= now:
            burst.blocked_until = now + self.window_s
            log.warning("rapport login throttled", extra={"attempts": burst.count})
        return new


def match_token(tokens: Mapping[str, str], given: str) -> str | None:
    """The name of the token given, comparing against every token in constant time (no early exit)."""
    found: str | None = None
    for name, token in tokens.items():
        if hmac.compare_digest(given.encode(), token.encode()):
            found = name
    return found


def same_origin(request: web.Request) -> bool:
    """A POST from another site (login CSRF) is refused. Browsers send Sec-Fetch-Site; Origin is "null" under our
    no-referrer policy, so it only counts when it names a site. Scripts send neither."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return origin.split("://", 1)[-1] == request.host


@dataclass
class RapportPages:
    cfg: RapportSettings | None
    compute: ComputeFn | None
    houses: Sequence[tuple[str, str]]  # (key, naam) in configuration order
    record: RecordFn
    clock: Clock
    _logins: _Sessions = field(init=False)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # http.trusted_proxies: behind them the throttle counts per client (X-Forwarded-For), not per proxy.
    trusted_proxies: Sequence[IPv4Network | IPv6Network] = ()

    def __post_init__(self) -> None:
        self._logins = _Sessions(ttl_s=3600.0 * (self.cfg.sessie_uren if self.cfg else 1))

    async def _refused(self, request: web.Request, **details: Any) -> None:
        if self.throttle.refused(client_address(request, self.trusted_proxies)):
            await self._audit("rapport.geweigerd", "rapport:onbekend", reeks_venster_s=int(self.throttle.window_s),
                              **details)

    def _too_many(self, request: web.Request, *, html: bool) -> web.Response | None:
        """The 429 for a client in a burst of refused tokens, or None."""
        wait = math.ceil(self.throttle.blocked_for(client_address(request, self.trusted_proxies)))
        if not wait:
            return None
        message = (f"Te veel onjuiste toegangstokens achter elkaar. Wacht {wait} seconden en probeer het dan "
                   "opnieuw met het juiste token.")
        headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
        if html:
            resp = render_page(429, title="Rapport: even wachten", message=message)
            resp.headers.update(headers)
            return resp
        return web.Response(status=429, text=message + "\n", headers={**headers, "X-Content-Type-Options": "nosniff"})

    async def _audit(self, kind: str, actor: str, **details: Any) -> None:
        await self.record(kind, actor, **details)

    async def _who(self, request: web.Request) -> tuple[str | None, str | None, bool]:
        """(name, via, refused-bearer). A wrong bearer token is audited; a missing credential is not."""
        assert self.cfg is not None
        auth = request.headers.get("Authorization", "")
        if auth:
            scheme, _, given = auth.partition(" ")
            name = match_token(self.cfg.tokens, given.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                await self._refused(request, via="bearer", pad=request.path)
                return None, None, True
            return name, "bearer", False
        sid = request.cookies.get(COOKIE, "")
        name = self._logins.who(sid) if sid else None
        return name, ("cookie" if name else None), False

    def _off(self) -> web.Response:
        return render_page(404, title="Rapport staat uit", message="Het rapport is niet ingeschakeld: er is geen "
                           "toegangstoken ingesteld ([rapport] token of tokens, of ZSM_BOT_RAPPORT_TOKEN).")

    def _login_page(self, status: int, message: str | None = None) -> web.Response:
        resp = render_page(status, title="Rapport: inloggen", login=True, message=message)
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="zsm-rapport"'
        return resp

    def _filter(self, request: web.Request) -> tuple[Period, str | None, str, str] | str:
        """(period, vh or None, period text, vh text) or a Dutch message saying what to type."""
        text = request.query.get("periode", "").strip()
        if not text:
            d = self.clock.now().astimezone(AMSTERDAM).date()
            text = f"{d.year}-{d.month:02d}"
        vh = request.query.get("vh", "").strip()
        if len(text) > 40:
            return f"De periode is te lang. {PERIOD_HELP}"
        try:
            period = parse_period(text)
        except PeriodError as exc:
            return str(exc)
        if period.end - period.start > MAX_SPAN:
            return f"Kies een periode van hoogstens drie jaar. {PERIOD_HELP}"
        keys = [k for k, _ in self.houses]
        if vh and vh not in keys:
            return (f"Onbekend veiligheidshuis '{echo(vh)}'. Kies er een uit de lijst, of laat het veld leeg voor "
                    f"alle veiligheidshuizen ({', '.join(keys)}).")
        return period, (vh or None), text, vh

    async def _guarded(self, request: web.Request, fmt: str) -> web.Response:
        if self.cfg is None:
            return self._off()
        if request.headers.get("Authorization") and (busy := self._too_many(request, html=fmt != "csv")):
            return busy
        name, via, refused = await self._who(request)
        if name is None:
            if fmt == "csv" or refused:
                return web.Response(status=401, text="Inloggen vereist: Authorization: Bearer <token>.\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="zsm-rapport"',
                                             "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
            return self._login_page(401, "Log in met uw toegangstoken om het rapport te zien.")
        parsed = self._filter(request)
        names = dict(self.houses)
        if isinstance(parsed, str):
            if fmt == "csv":
                return web.Response(status=400, text=parsed + "\n", content_type="text/plain", charset="utf-8",
                                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
            return render_page(400, title="Rapport", message=parsed, filter=True, houses=self.houses,
                               periode=echo(request.query.get("periode", "")), vh="",
                               quick=quick_links(self.clock.now().astimezone(AMSTERDAM).date()))
        period, vh, text, vh_text = parsed
        await self._audit("rapport.bekeken", f"rapport:{name}", via=via, formaat=fmt, periode=period.label,
                          veiligheidshuis=vh or "alle")
        if self.compute is None:
            return render_page(503, title="Rapport", message="De cijfers zijn nog niet beschikbaar in deze versie "
                               "van de bot.")
        try:
            rapport = await self.compute(period, vh)
        except Exception as exc:  # the page says so in Dutch; the log gets the type only, never data
            log.error("rapport compute failed", extra={"error": type(exc).__name__})
            return render_page(503, title="Rapport", message="De cijfers konden nu niet worden berekend. Probeer "
                               "het later opnieuw; blijft het misgaan, meld het dan aan de beheerder.")
        if fmt == "csv":
            filename = "rapport-" + re.sub(r"[^0-9A-Za-z-]+", "_", period.label) + ".csv"
            return web.Response(text=as_csv(rapport, names), content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                         "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        return render_rapport(rapport, self.houses, periode=text, vh=vh_text,
                              today=self.clock.now().astimezone(AMSTERDAM).date())

    async def page(self, request: web.Request) -> web.Response:
        return await self._guarded(request, "html")

    async def csv(self, request: web.Request) -> web.Response:
        return await self._guarded(request, "csv")

    async def login_form(self, _: web.Request) -> web.Response:
        return self._off() if self.cfg is None else self._login_page(200)

    async def login(self, request: web.Request) -> web.Response:
        if self.cfg is None:
            return self._off()
        if not same_origin(request):
            return render_page(403, title="Geweigerd", message="Log in via de inlogpagina van het rapport zelf.")
        if busy := self._too_many(request, html=True):
            return busy
        form = await request.post()
        given = str(form.get("token", ""))[:200]
        name = match_token(self.cfg.tokens, given) if given else None
        if name is None:
            await self._refused(request, via="login")
            return self._login_page(401, "Onjuist toegangstoken. Controleer het token en probeer het opnieuw.")
        await self._audit("rapport.ingelogd", f"rapport:{name}", via="login")
        resp = web.Response(status=303, headers={"Location": "/rapport", "Cache-Control": "no-store"})
        resp.set_cookie(COOKIE, self._logins.new(name), httponly=True, samesite="Strict", path="/",
                        secure=self.cfg.cookie_secure, max_age=int(self._logins.ttl_s))
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        if not same_origin(request):
            return render_page(403, title="Geweigerd", message="Log uit via de knop op de rapportpagina.")
        self._logins.by_id.pop(request.cookies.get(COOKIE, ""), None)
        resp = web.Response(status=303, headers={"Location": "/rapport/login", "Cache-Control": "no-store"})
        resp.del_cookie(COOKIE, path="/")
        return resp

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/rapport", self.page), web.get("/rapport.csv", self.csv),
                web.get("/rapport/login", self.login_form), web.post("/rapport/login", self.login),
                web.post("/rapport/logout", self.logout)]


def render_rapport(rapport: Rapport, houses: Sequence[tuple[str, str]], *, periode: str, vh: str,
                   today: date) -> web.Response:
    names = dict(houses)
    last = rapport.period.end - timedelta(seconds=1)
    return render_page(
        title="Rapport ZSM en veiligheidshuizen", filter=True, houses=houses, periode=periode, vh=vh,
        quick=quick_links(today), rapport=rapport, rows=_rows(rapport, names), charts=charts(rapport),
        van=_day(rapport.period.start), tot=_day(last),
        vh_naam=names.get(rapport.veiligheidshuis, rapport.veiligheidshuis) if rapport.veiligheidshuis
        else "alle veiligheidshuizen")


def _day(when: datetime) -> str:
    return format_local(when).split(" ")[0]


def install(service: RapportService, settings: Settings, veiligheidshuizen: Veiligheidshuizen,
            clock: Clock) -> RapportPages:
    """The pages over the figures of ``service`` (each computed in a transaction of its own, so the page never
    holds a write transaction); the caller adds ``pages.routes()`` to the server. Tests may replace
    ``pages.compute`` with a function returning hand-made figures."""
    houses = [(vh.key, vh.naam) for vh in veiligheidshuizen.all()]
    return RapportPages(settings.rapport, service.figures, houses, service.audit, clock,
                        trusted_proxies=settings.http.trusted_proxies)
