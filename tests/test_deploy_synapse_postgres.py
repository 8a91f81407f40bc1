"""The compose stack's Synapse on PostgreSQL, without docker: the database made by ``deploy/compose/postgres-init.sh``
(as the postgres image runs it, with the role and database names made unique so parallel runs on the shared test
server do not collide), Synapse started on ``deploy/compose/synapse/homeserver.yaml`` the way
``deploy/compose/synapse-start.sh`` starts it (the shared secret written from the environment into /data, the
signing key generated once, the password from ``PGPASSWORD``), with ``/data`` mapped onto a folder and the host
``postgres`` onto the local server. Then the bootstrap registers its accounts and creates the room on it.

Synapse's image ships psycopg2; here it is added to the cached Synapse venv once (``ensure_postgres_driver``).
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import pytest

from devtools.bootstrap import bootstrap
from devtools.synapse import ensure_postgres_driver, ensure_venv, free_port
from tests.harness import pg

pytestmark = [pytest.mark.matrix, pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 (loopback)
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def test_compose_synapse_runs_on_postgres_and_bootstrap_works(tmp_path: Path) -> None:
    problem = await pg.server_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    suffix = uuid.uuid4().hex[:8]
    user, db, password = f"synapse_t_{suffix}", f"synapse_t_{suffix}", "synapse-db-pw"
    admin = pg.ADMIN_DSN  # postgresql://postgres@127.0.0.1:5432/test
    host_part, _, admin_db = admin.rpartition("/")
    admin_user = host_part.split("//", 1)[1].split("@", 1)[0]

    init = subprocess.run(["sh", str(REPO / "deploy/compose/postgres-init.sh")], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "POSTGRES_USER": admin_user, "POSTGRES_DB": admin_db,
                                           "PGHOST": "127.0.0.1", "SYNAPSE_DB_PASSWORD": password,
                                           "SYNAPSE_DB_USER": user, "SYNAPSE_DB_NAME": db})
    synapse: subprocess.Popen[bytes] | None = None
    try:
        assert init.returncode == 0, init.stderr
        conn = await asyncpg.connect(admin)
        try:
            collate = await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = $1", db)
        finally:
            await conn.close()
        assert collate == "C"

        python = ensure_venv()
        ensure_postgres_driver(python)
        data = tmp_path / "data"
        data.mkdir()
        port = free_port()
        config = (REPO / "deploy/compose/synapse/homeserver.yaml").read_text()
        for old, new in {"/data": str(data), "host: postgres": "host: 127.0.0.1", "user: synapse": f"user: {user}",
                         "database: synapse": f"database: {db}", "port: 8008": f"port: {port}",
                         '["0.0.0.0"]': '["127.0.0.1"]', "127.0.0.1:8008": f"127.0.0.1:{port}"}.items():
            assert old in config, old
            config = config.replace(old, new)
        hs_yaml = tmp_path / "homeserver.yaml"
        hs_yaml.write_text(config)
        secret = "shared-secret-" + suffix
        # what synapse-start.sh does before start.py: the secret from the environment, the signing key once
        start_sh = (REPO / "deploy/compose/synapse-start.sh").read_text()
        assert "/data/registration_shared_secret" in start_sh and "--generate-keys" in start_sh
        (data / "registration_shared_secret").write_text(secret)
        env = {**os.environ, "PGPASSWORD": password}
        keys = subprocess.run([str(python), "-m", "synapse.app.homeserver", "-c", str(hs_yaml), "--generate-keys"],
                              capture_output=True, text=True, timeout=120, env=env)
        assert keys.returncode == 0, keys.stderr
        assert (data / "signing.key").is_file()
        log = open(tmp_path / "synapse.log", "ab")  # noqa: SIM115
        synapse = subprocess.Popen([str(python), "-m", "synapse.app.homeserver", "-c", str(hs_yaml)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not healthy(url):
            assert synapse.poll() is None, (tmp_path / "synapse.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Synapse on PostgreSQL did not become healthy"
            time.sleep(0.2)

        room = bootstrap(homeserver=url, shared_secret=secret, bot_user="@zsm-bot:zsm.localhost",
                         bot_password="bot-pw", officer="@officier:zsm.localhost", officer_password="officer-pw",
                         alias_localpart="zsm-afstemming", wait_seconds=30)
        assert room.alias == "#zsm-afstemming:zsm.localhost" and room.room_id.startswith("!")
        conn = await asyncpg.connect(admin.rsplit("/", 1)[0] + f"/{db}")
        try:  # the accounts and the room are in PostgreSQL, not in a SQLite file somewhere
            users = {r["name"] for r in await conn.fetch("SELECT name FROM users")}
            aliases = await conn.fetchval("SELECT room_id FROM room_aliases WHERE room_alias = $1", room.alias)
        finally:
            await conn.close()
        assert {"@zsm-bot:zsm.localhost", "@officier:zsm.localhost"} <= users
        assert aliases == room.room_id
        assert not list(tmp_path.rglob("*.db"))
    finally:
        if synapse is not None:
            synapse.terminate()
            try:
                synapse.wait(timeout=30)
            except subprocess.TimeoutExpired:
                synapse.kill()
                synapse.wait()
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{user}"')
        finally:
            await conn.close()
