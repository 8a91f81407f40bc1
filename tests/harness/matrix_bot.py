"""The bot as a real Matrix client in tests: an officer's encrypted room with the bot invited, and the bot run
in-process by ``run_matrix`` (the same entry point as ``zsm-bot run``)."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.matrix_main import run_matrix
from bot.runtime import Runtime
from config.settings import load_settings
from tests.harness.config import write_config
from tests.harness.matrix import PASSWORD, Homeserver, Officer


@dataclass
class Setup:
    officer: Officer
    room_id: str
    bot_user: str
    config: Path


async def make_setup(hs: Homeserver, tmp_path: Path, *, encrypted: bool = True, lift_bot: bool = True,
                     extra_rooms: list[str] | None = None, http_port: int = 0,
                     matrix: dict[str, Any] | None = None, sections: dict[str, dict[str, Any]] | None = None) -> Setup:
    officer = await hs.officer()
    bot_user = hs.new_user("zsm-bot", lift_limit=lift_bot)
    room_id = await officer.create_room([bot_user], encrypted=encrypted)
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        sections={
            "matrix": {"homeserver": hs.synapse.url, "user_id": bot_user, "password": PASSWORD,
                       "rooms": [room_id, *(extra_rooms or [])], "device_id": "BOT" + uuid.uuid4().hex[:8].upper(),
                       "sync_timeout_ms": 1000, **(matrix or {})},
            "http": {"enabled": http_port > 0, "port": http_port},
            **(sections or {}),
        },
        users={officer.user_id: "ovj"},
    )
    return Setup(officer, room_id, bot_user, config)


class InProcessBot:
    def __init__(self, config: Path) -> None:
        self.settings = load_settings(config)
        self.stop = asyncio.Event()
        self.started: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(run_matrix(self.settings, stop=self.stop, started=self.started))

    async def runtime(self) -> Runtime:
        """The running bot once it is ready. Generous on a busy CI machine; a bot that does not get there says
        where it waits instead of a bare timeout."""
        either: list[asyncio.Future[Any]] = [self.started, self.task]
        done, _ = await asyncio.wait(either, timeout=START_S, return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            raise AssertionError(f"the bot stopped before it was ready: {self.task.exception()!r}")
        if self.started not in done:
            raise AssertionError(f"the bot was not ready within {START_S:.0f}s; it waits in:\n{_stack(self.task)}")
        return self.started.result()

    async def close(self) -> None:
        """Stop the bot and wait until it has really stopped (engine disposed, locks released), so a bot started
        next on the same database never meets a half-stopped one. Cancelling it instead would leave its
        connections in the middle of a transaction; a bot that does not stop is a failure of its own."""
        self.stop.set()
        done, _ = await asyncio.wait([self.task], timeout=STOP_S)
        if not done:
            raise AssertionError(f"the bot did not stop within {STOP_S:.0f}s; it waits in:\n{_stack(self.task)}")
        if not self.task.cancelled():
            self.task.exception()  # retrieved: a bot that failed says so in its own test, not at exit


START_S = 120.0
STOP_S = 90.0


def _stack(task: asyncio.Task[Any]) -> str:
    buf = io.StringIO()
    task.print_stack(file=buf)
    return buf.getvalue()
