"""The console backend: the same dispatcher and database, commands from stdin, replies as plain text."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any, TextIO

from bot.dispatcher import Dispatcher, IncomingCommand
from bot.outbound import Sender

CONSOLE_ROOM = "!console:local"


class ConsoleTransport:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.redacted: list[str] = []  # the console has no room history; what would have been redacted, for tests

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        self.redacted.append(event_id)

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        prefix = "" if room_id == CONSOLE_ROOM else f"[naar {room_id}] "
        self.out.write(prefix + str(content.get("body", "")) + "\n")
        self.out.flush()
        return f"$console-{txn_id}"


async def run_console(dispatcher: Dispatcher, sender: Sender, user_id: str, stdin: TextIO | None = None) -> int:
    """Read commands line by line until EOF; each reply is printed before the next line is read."""
    stdin = stdin or sys.stdin
    loop = asyncio.get_running_loop()
    await sender.drain()
    while True:
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            return 0
        body = line.rstrip("\n")
        if not body.strip():
            continue
        if not body.lstrip().startswith("!"):
            body = "!" + body.lstrip()
        now = dispatcher.services.clock.now()
        await dispatcher.handle(
            IncomingCommand(event_id=f"$console-{uuid.uuid4().hex}", room_id=CONSOLE_ROOM, sender=user_id,
                            body=body, sent_at=now)
        )
        await sender.drain()
