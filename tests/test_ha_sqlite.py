"""SQLite holds one bot: a second ``zsm-bot run`` on the same database file refuses to start with one Dutch line,
while the first keeps answering."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.harness.config import REPO
from tests.harness.matrix import Homeserver
from tests.harness.matrix_bot import make_setup

pytestmark = pytest.mark.matrix
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


async def test_second_run_on_one_sqlite_file_is_refused(homeserver: Homeserver, tmp_path: Path) -> None:
    setup = await make_setup(homeserver, tmp_path)
    log = open(tmp_path / "first.log", "ab")  # noqa: SIM115 (closed in finally)
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "run", "--config", str(setup.config), cwd=str(REPO), env=ENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=log)
    try:
        await setup.officer.wait_member(setup.room_id, setup.bot_user, timeout=90)
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=90)

        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "run", "--config", str(setup.config), cwd=str(REPO), env=ENV,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(second.communicate(), 120)
        assert second.returncode == 2
        # stderr is also the log stream of `run`: its JSON log lines come first, then the one plain line for a person
        all_lines = err.decode().strip().splitlines()
        lines = [line for line in all_lines if not line.startswith("{")]
        assert len(lines) == 1, all_lines
        assert "er draait al een zsm-bot op" in lines[0] and "stop die eerst" in lines[0]
        assert all_lines[-1] == lines[0]
        assert "Traceback" not in err.decode() and not out.strip()

        # the first one is untouched by the attempt
        assert first.returncode is None
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=90)
    finally:
        first.terminate()
        await asyncio.wait_for(first.wait(), 30)
        log.close()
        await setup.officer.close()
