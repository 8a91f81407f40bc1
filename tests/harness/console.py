"""The console backend as a test bot: same runtime, dispatcher and database as in the room.

``await bot.say("!ping", as_role="ovj")`` returns the reply text exactly as the console prints it.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.dispatcher import IncomingCommand, Outcome
from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from config.settings import Settings, load_settings
from domain.clock import Clock
from tests.harness.config import user_for


@dataclass
class ConsoleBot:
    runtime: Runtime
    out: io.StringIO = field(default_factory=io.StringIO)
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    async def start(cls, config_path: Path, clock: Clock | None = None, *, http: bool = False) -> ConsoleBot:
        """``http=True`` also serves the web routes (needs ``[http] enabled``; port 0 picks a free port, see
        ``base_url``)."""
        settings: Settings = load_settings(config_path)
        runtime = Runtime(settings, clock=clock) if clock else Runtime(settings)
        bot = cls(runtime)
        await runtime.start(ConsoleTransport(bot.out), http=http)
        return bot

    async def say(self, body: str, *, as_role: str = "ovj", as_user: str | None = None,
                  sent_at: datetime | None = None, event_id: str | None = None) -> str:
        assert self.runtime.dispatcher and self.runtime.sender
        before = self.out.tell()
        outcome = await self.runtime.dispatcher.handle(IncomingCommand(
            event_id=event_id or f"$t-{uuid.uuid4().hex}", room_id=CONSOLE_ROOM,
            sender=as_user or user_for(as_role), body=body, sent_at=sent_at or self.runtime.clock.now(),
        ))
        self.outcomes.append(outcome)
        await self.runtime.sender.drain()
        self.out.seek(before)
        text = self.out.read()
        self.out.seek(0, io.SEEK_END)
        return text.strip()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.http_port}"

    async def close(self) -> None:
        await self.runtime.close()


async def ping_handled(runtime: Runtime, event_id: str, *, sent_at: datetime | None = None) -> Outcome:
    """An officer's ``!ping`` through the runtime's dispatcher, as the sync loop hands it over; it must be handled.
    What happens to the reply afterwards (its lane, its claim, its record) is what the calling test looks at."""
    assert runtime.dispatcher
    outcome = await runtime.dispatcher.handle(IncomingCommand(
        event_id=event_id, room_id=CONSOLE_ROOM, sender=user_for("ovj"), body="!ping",
        sent_at=sent_at or runtime.clock.now()))
    assert outcome.status == "handled", outcome
    return outcome
