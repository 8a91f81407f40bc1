"""Two (or more) ``zsm-bot run`` processes on one PostgreSQL database, each with its own Matrix device, store and
ops port: what the high-availability tests and ``bench/failover.py`` start and kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.synapse import free_port
from tests.harness.config import REPO, write_config
from tests.harness.matrix import PASSWORD, Homeserver, Officer


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode()
    except OSError:
        return 0, ""


async def wait_until(check: Any, what: str, timeout: float = 120) -> Any:
    """Poll ``check`` (sync or async, truthy when done) until it holds; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Instance:
    name: str
    config: Path
    port: int
    device_id: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "run", "--config", str(self.config)], cwd=str(REPO),
                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = await asyncio.to_thread(http_get, self.port, "/readyz")
        try:
            return status, dict(json.loads(body)) if body else {}
        except ValueError:
            return status, {}

    async def gauge(self, name: str) -> float | None:
        _status, body = await asyncio.to_thread(http_get, self.port, "/metrics")
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    async def active_gauge(self) -> float | None:
        return await self.gauge("zsm_active_instance")

    async def is_active(self) -> bool:
        status, _ = await self.readyz()
        return status == 200

    async def is_standby(self) -> bool:
        """Standby and otherwise healthy: synced, /readyz 503 naming only the standby, the gauge at 0."""
        status, body = await self.readyz()
        problems = body.get("problems") or []
        return status == 503 and len(problems) == 1 and problems[0].startswith("standby:") \
            and await self.active_gauge() == 0


@dataclass
class Pair:
    officer: Officer
    room_id: str
    bot_user: str
    instances: list[Instance] = field(default_factory=list)


async def make_pair(hs: Homeserver, tmp_path: Path, database_url: str, *, count: int = 2,
                    sections: dict[str, dict[str, Any]] | None = None) -> Pair:
    """An officer's encrypted room with the bot user invited, and ``count`` configurations of that bot user, one
    device each, on ``database_url``."""
    officer = await hs.officer()
    bot_user = hs.new_user("zsm-bot")
    room_id = await officer.create_room([bot_user])
    pair = Pair(officer, room_id, bot_user)
    for i in range(count):
        name = "abcdefgh"[i]
        directory = tmp_path / name
        directory.mkdir()
        port = free_port()
        device_id = f"HA{name.upper()}{uuid.uuid4().hex[:6].upper()}"
        config = write_config(directory, database_url, sections={
            "matrix": {"homeserver": hs.synapse.url, "user_id": bot_user, "password": PASSWORD, "rooms": [room_id],
                       "device_id": device_id, "sync_timeout_ms": 1000, "commands_per_minute": 10_000,
                       "max_command_age_seconds": 3600},
            "http": {"enabled": True, "port": port},
            "logging": {"level": "INFO", "format": "json"},
            **(sections or {}),
        }, users={officer.user_id: "ovj"})
        pair.instances.append(Instance(name, config, port, device_id, directory / "bot.log"))
    return pair


async def start_active_then_standby(pair: Pair, timeout: float = 180) -> None:
    """The first instance until it is active and in the room, then the second until it reports standby and the
    officer's room key reaches its device."""
    active, standby = pair.instances[:2]
    active.start()
    await wait_until(active.is_active, "the first instance to be active and ready", timeout=timeout)
    await pair.officer.wait_member(pair.room_id, pair.bot_user, timeout=60)
    standby.start()
    await wait_until(standby.is_standby, "the second instance to report standby", timeout=timeout)
    await share_keys_with(pair.officer, pair.room_id, pair.bot_user, standby.device_id)


async def share_keys_with(officer: Officer, room_id: str, user_id: str, device_id: str) -> None:
    """Wait until the officer knows the bot's new device, then start a new room key so that device gets it too.

    Element and other current clients share the room key with a member's new devices on their next message;
    matrix-nio (the officer's client) only does so when the key rotates, so the test rotates it here."""

    def known() -> bool:
        return any(d.id == device_id for d in officer.client.device_store.active_user_devices(user_id))

    async def queried() -> bool:
        await officer.query_keys()
        return known()

    await wait_until(queried, f"the officer to see device {device_id}", timeout=60)
    officer.client.invalidate_outbound_session(room_id)
