"""The console backend: the same dispatcher and database, commands from stdin, replies as plain text."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
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


def _read_lines(stdin: TextIO) -> asyncio.Queue[str | None]:
    """Lines from a daemon thread (None at the end): a read blocked on the terminal neither delays a stop nor
    keeps the process alive at exit, as a read in the loop's default executor would (asyncio.run waits for it)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def put(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is reading any more
            loop.call_soon_threadsafe(lines.put_nowait, line)

    def read() -> None:
        for line in iter(stdin.readline, ""):
            put(line)
        put(None)

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    return lines


async def run_console(dispatcher: Dispatcher, sender: Sender, user_id: str, stdin: TextIO | None = None) -> int:
    """Read commands line by line until EOF; each reply is printed before the next line is read. A stop
    (SIGTERM, SIGINT) cancels this coroutine: a command in progress rolls back as a whole."""
    lines = _read_lines(stdin or sys.stdin)
    await sender.drain()
    while True:
        line = await lines.get()
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
