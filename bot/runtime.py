"""Wiring: settings to engine, services, dispatcher, send queue, health server and a transport.

Both backends (Matrix and console) go through ``Runtime``, so what the console proves about a command
holds for the room as well.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bot import aanvraag, instroom_api
from bot.dispatcher import Dispatcher
from bot.metrics import Metrics
from bot.outbound import Sender
from bot.settings import Settings
from bot.transport import Transport
from bot.web import ReadyCheck, build_app, start_site
from commands import default_table
from commands.base import Services
from commands.check import check_settings
from domain.clock import Clock, SystemClock
from domain.veiligheidshuizen import load_veiligheidshuizen
from integrations.registry.config import build_registry
from storage.audit import Auditor
from storage.db import SessionFactory, create_engine, session_factory
from storage.migrate import upgrade

log = logging.getLogger(__name__)


def audit_key(settings: Settings) -> bytes:
    """The configured key; for the embedded default a generated key file beside the configuration."""
    if settings.audit.key:
        return settings.audit.key.encode()
    path = settings.source.resolve().parent / "var" / "audit.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.warning("audit key generated in a file; set ZSM_BOT_AUDIT_KEY in production", extra={"path": str(path)})
    return path.read_text().strip().encode()


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        check_settings(self.settings)  # a bad [check] section stops the start, not the first !check
        self.engine = create_engine(self.settings.database_url)
        self.sessions: SessionFactory = session_factory(self.engine)
        self.auditor = Auditor(audit_key(self.settings))
        self.services = Services(
            settings=self.settings, auditor=self.auditor, clock=self.clock, table=default_table(),
            veiligheidshuizen=load_veiligheidshuizen(self.settings.veiligheidshuizen_path),
            registry=build_registry(self.settings, self.sessions),
        )
        self.sender: Sender | None = None
        self.dispatcher: Dispatcher | None = None
        self.ready_checks: list[ReadyCheck] = []
        self.extra_routes: list[web.RouteDef] = []
        self._stack = AsyncExitStack()
        closer = getattr(self.services.registry, "close", None)
        if closer is not None:
            self._stack.push_async_callback(closer)
        instroom = instroom_api.api_settings(self.settings)
        if instroom is not None:
            self.extra_routes.extend(instroom_api.routes(self, instroom))
        aanvraag.install(self)

    async def start(self, transport: Transport, *, http: bool = True) -> None:
        await upgrade(self.engine)
        self.sender = Sender(self.sessions, transport, self.clock, self.auditor, self.metrics)
        self.dispatcher = Dispatcher(self.services, self.sessions, self.metrics, on_committed=self.sender.offer)
        async with self.sessions() as s, s.begin():
            await self.auditor.record(s, kind="configuratie.geladen", at=self.clock.now(),
                                      details={"bron": str(self.settings.source)})
        await aanvraag.start(self)
        if http and self.settings.http.enabled:
            app = build_app(self.sessions, self.metrics, self.ready_checks, self.extra_routes)
            runner = await start_site(app, self.settings.http.host, self.settings.http.port)
            self._stack.push_async_callback(runner.cleanup)
            self.http_port = _bound_port(runner)

    async def close(self) -> None:
        await self._stack.aclose()
        await self.engine.dispose()


def _bound_port(runner: web.AppRunner) -> int | None:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    return None


def default_var_dir(settings: Settings) -> Path:
    return settings.source.resolve().parent / "var"
