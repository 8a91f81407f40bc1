"""One live process per Matrix device on a PostgreSQL database: a second ``zsm-bot run`` configured with the same
``matrix.device_id`` would fight the first for the device's keys, so it refuses to start with one Dutch line while
the first lives; once the first is gone (SIGKILL: its claim ends with its connection) the same device may start."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from storage.leader import DeviceClaim, DeviceInUse
from tests.harness.config import REPO
from tests.harness.ha import Instance, make_pair, wait_until
from tests.harness.matrix import Homeserver

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


async def run_to_end(config: Path) -> tuple[int, list[str], str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "run", "--config", str(config), cwd=str(REPO), env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, err.decode().strip().splitlines(), out.decode()


@pytest.mark.matrix
async def test_second_process_with_the_same_device_is_refused(homeserver: Homeserver, tmp_path: Path,
                                                              pg_url: str) -> None:
    pair = await make_pair(homeserver, tmp_path, pg_url, count=2)
    first, other = pair.instances
    # The operator's mistake: a second instance with its own store and port, but the first one's device id.
    twin_config = other.config.with_name("twin.toml")
    twin_config.write_text(other.config.read_text(encoding="utf-8").replace(other.device_id, first.device_id),
                           encoding="utf-8")
    twin = Instance("twin", twin_config, other.port, first.device_id, other.config.parent / "twin.log")
    try:
        first.start()
        await wait_until(first.is_active, "the first instance to be active and ready", timeout=180)

        code, lines, out = await run_to_end(twin_config)
        plain = [line for line in lines if not line.startswith("{")]
        assert code == 2 and len(plain) == 1 and lines[-1] == plain[0], lines
        assert f"er draait al een zsm-bot met apparaat {first.device_id!r}" in plain[0]
        assert "geef elk exemplaar een eigen matrix.device_id en store_path" in plain[0]
        assert "Traceback" not in "\n".join(lines) and not out.strip()

        # The first one is untouched: still active, and it answers.
        assert first.proc is not None and first.proc.poll() is None
        assert await first.is_active()
        await pair.officer.wait_member(pair.room_id, pair.bot_user, timeout=60)
        await pair.officer.wait_reply(await pair.officer.send(pair.room_id, "!ping"), timeout=90)

        # Gone (no clean stop): the device is free, and the same configuration starts and becomes active.
        first.kill()
        twin.start()
        await wait_until(lambda: twin.active_gauge(), "the twin to start on the freed device", timeout=180)
    finally:
        twin.stop()
        first.stop()
        await pair.officer.close()


async def test_device_claim_is_one_per_device_and_freed_on_close(pg_url: str) -> None:
    """The storage part alone: the same user and device is refused while claimed, another device is not."""
    one = DeviceClaim(pg_url, "@zsm-bot:localhost", "DEVA")
    same = DeviceClaim(pg_url, "@zsm-bot:localhost", "DEVA")
    other = DeviceClaim(pg_url, "@zsm-bot:localhost", "DEVB")
    other_user = DeviceClaim(pg_url, "@zsm-bot-twee:localhost", "DEVA")
    try:
        await one.acquire()
        with pytest.raises(DeviceInUse, match=r"geef elk exemplaar een eigen matrix\.device_id en store_path"):
            await same.acquire()
        await other.acquire()
        await other_user.acquire()
        await one.close()
        await same.acquire()  # freed with the first one's connection
    finally:
        for claim in (one, same, other, other_user):
            await claim.close()
