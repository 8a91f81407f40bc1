"""The crypto store is lost but the same ``matrix.device_id`` is configured: the homeserver refuses the new
one-time keys. The bot must say so (log, /readyz, /metrics) instead of silently retrying forever."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.settings import load_settings
from devtools.synapse import free_port
from tests.harness.matrix import Homeserver
from tests.harness.matrix_bot import InProcessBot, make_setup

pytestmark = pytest.mark.matrix


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_lost_store_with_same_device_id_is_reported(homeserver: Homeserver, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    setup = await make_setup(homeserver, tmp_path, http_port=port)
    settings = load_settings(setup.config)
    try:
        bot = InProcessBot(setup.config)
        runtime = await bot.runtime()
        await setup.officer.wait_reply(await setup.officer.send(setup.room_id, "!ping"), timeout=60)
        assert runtime.metrics.device_conflict._value.get() == 0
        assert (await asyncio.to_thread(get, port, "/readyz"))[0] == 200
        await bot.close()

        for item in settings.matrix.store_path.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        caplog.set_level(logging.ERROR, logger="bot.transport.matrix")
        bot = InProcessBot(setup.config)
        runtime = await bot.runtime()
        try:
            deadline = time.monotonic() + 60
            while runtime.metrics.device_conflict._value.get() == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert runtime.metrics.device_conflict._value.get() == 1, "the key collision was not detected"
            status, body = await asyncio.to_thread(get, port, "/readyz")
            assert status == 503 and f"apparaat {settings.matrix.device_id} weigert nieuwe sleutels" in body
            assert "nieuwe matrix.device_id" in body
            metrics = (await asyncio.to_thread(get, port, "/metrics"))[1]
            assert "zsm_device_keys_conflict 1.0" in metrics
            errors = [r for r in caplog.records if "device keys refused" in r.getMessage()]
            assert len(errors) == 1, "reported once, not on every sync"
            assert "verwijder het oude apparaat" in errors[0].getMessage()
        finally:
            await bot.close()
    finally:
        await setup.officer.close()
