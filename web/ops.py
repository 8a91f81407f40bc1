"""The operations server: liveness, readiness and metrics, on loopback unless configured otherwise.

``/metrics`` may move to a listener of its own (``http.metrics_port``), for a scraper on another network that
should not reach the report pages or the instroom API. Feature routes (the instroom API, report pages, answer
forms) are added by the runtime through ``extra_routes`` so this module stays about operations. What it probes is
handed in by the runtime (a database round trip, the metrics text, further readiness checks), so it needs neither
the runtime nor the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

ReadyCheck = Callable[[], Awaitable[str | None]]
# One round trip to the database; raises when it cannot be reached.
DatabasePing = Callable[[], Awaitable[None]]
# The metrics text, read fresh for each scrape.
MetricsText = Callable[[], Awaitable[bytes]]
# True once the database is reachable and upgraded; until then the feature routes answer 503.
DatabaseReady = Callable[[], bool]

# Served whatever the database does: they report on it (or on the process) themselves.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WAITING_BODY = "de bot wacht op de database; probeer het zo opnieuw\n"
RETRY_AFTER_S = 10


def client_address(request: web.Request, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """Who is asking: the peer, or behind a trusted reverse proxy the address that proxy put in X-Forwarded-For.

    The header is read from the right, skipping our own proxies: the first address that is not one of them was
    added by a proxy we trust, whatever a client wrote further left, so a client cannot pose as another."""
    peer = request.remote or ""
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _database_gate(ready: DatabaseReady) -> Callable[..., Awaitable[web.StreamResponse]]:
    """While a cold start waits for the database, the feature routes (report, instroom API, answer form) would
    fail inside their first query with a 500 that tells a caller nothing; a 503 with Retry-After tells a case
    system or a browser to come back, and the routes work normally once the database is there."""

    @web.middleware
    async def gate(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        routed = getattr(request.match_info, "http_exception", None) is None  # a 404/405 stays what it is
        if routed and request.path not in OPS_PATHS and not ready():
            return web.Response(status=503, text=WAITING_BODY, content_type="text/plain", charset="utf-8",
                                headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"})
        return await handler(request)

    return gate


def _metrics_route(metrics: MetricsText) -> web.RouteDef:
    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(body=await metrics(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    return web.get("/metrics", metrics_view)


def build_metrics_app(metrics: MetricsText) -> web.Application:
    """The separate metrics listener: /metrics only."""
    app = web.Application(client_max_size=1024)
    app.add_routes([_metrics_route(metrics)])
    return app


def build_app(
    database: DatabasePing,
    metrics: MetricsText | None,
    ready_checks: Iterable[ReadyCheck] = (),
    extra_routes: Iterable[web.RouteDef] = (),
    database_ready: DatabaseReady = lambda: True,
) -> web.Application:
    """``metrics`` None: /metrics is served by its own listener (``build_metrics_app``), not here.
    ``database_ready`` False: every route but the operations ones answers 503 (cold start)."""
    checks = list(ready_checks)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems: list[str] = []
        try:
            await database()
        except Exception as exc:
            problems.append(f"database: niet bereikbaar ({type(exc).__name__})")
        for check in checks:
            problem = await check()
            if problem:
                problems.append(problem)
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=1024 * 1024, middlewares=[_database_gate(database_ready)])
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    if metrics is not None:
        app.add_routes([_metrics_route(metrics)])
    app.add_routes(list(extra_routes))
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
