"""The operations server: liveness, readiness and metrics, on loopback unless configured otherwise.

``/metrics`` may move to a listener of its own (``http.metrics_port``), for a scraper on another network that
should not reach the report pages or the instroom API. Feature routes (the instroom API, report pages, answer
forms) are added by the runtime through ``extra_routes`` so this module stays about operations. What it probes is
handed in by the runtime (a database round trip, the metrics text, further readiness checks), so it needs neither
the runtime nor the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

ReadyCheck = Callable[[], Awaitable[str | None]]
# One round trip to the database; raises when it cannot be reached.
DatabasePing = Callable[[], Awaitable[None]]
# The metrics text, read fresh for each scrape.
MetricsText = Callable[[], Awaitable[bytes]]


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
) -> web.Application:
    """``metrics`` None: /metrics is served by its own listener (``build_metrics_app``), not here."""
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

    app = web.Application(client_max_size=1024 * 1024)
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
