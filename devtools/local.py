"""``scripts/run-local``: the embedded default, for a first look and for demos.

Starts (and on first run installs) a Synapse on 127.0.0.1, creates the bot account, an officer account and an
encrypted room named "ZSM afstemmingsoverleg", writes ``var/local/zsm-bot.toml`` and runs the bot on SQLite.
State is kept under ``var/local`` so the next run reuses accounts, room and crypto store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
from pathlib import Path

from nio import AsyncClient, LoginResponse, RoomCreateResponse

from devtools.synapse import Synapse

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "local"
PORT = 8448


async def _create_room(url: str, officer: str, password: str, bot_user: str) -> str:
    client = AsyncClient(url, officer)
    try:
        resp = await client.login(password, device_name="run-local setup")
        if not isinstance(resp, LoginResponse):
            raise SystemExit(f"officer login failed: {resp}")
        state = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
        room = await client.room_create(name="ZSM afstemmingsoverleg", invite=[bot_user], initial_state=state)
        if not isinstance(room, RoomCreateResponse):
            raise SystemExit(f"room creation failed: {room}")
        return str(room.room_id)
    finally:
        await client.close()


def prepare() -> tuple[Synapse, Path, dict[str, str]]:
    VAR.mkdir(parents=True, exist_ok=True)
    synapse = Synapse(VAR / "synapse", port=PORT, rc_message={"per_second": 10, "burst_count": 50})
    print(f"Synapse starten op {synapse.url} (eerste keer: installeren, ongeveer 20 s)...", flush=True)
    synapse.start()
    state_file = VAR / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
    else:
        state = {"bot_password": secrets.token_urlsafe(16), "officer_password": secrets.token_urlsafe(9)}
        synapse.register("zsm-bot", state["bot_password"])
        synapse.register("officier", state["officer_password"])
        state["room"] = asyncio.run(_create_room(synapse.url, "@officier:localhost", state["officer_password"],
                                                 "@zsm-bot:localhost"))
        state_file.write_text(json.dumps(state))
        state_file.chmod(0o600)
    shutil.copy(ROOT / "config" / "veiligheidshuizen.toml", VAR / "veiligheidshuizen.toml")
    config = VAR / "zsm-bot.toml"
    config.write_text(f"""[matrix]
homeserver = "{synapse.url}"
user_id = "@zsm-bot:localhost"
device_id = "ZSMLOCAL"
password = "{state['bot_password']}"
store_path = "var/matrix-store"
rooms = ["{state['room']}"]

[database]
url = "sqlite+aiosqlite:///var/zsm-bot.db"

[http]
port = 8080

[logging]
level = "INFO"
format = "text"

[users]
"@officier:localhost" = "ovj"
""")
    return synapse, config, state


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--console", action="store_true", help="geen homeserver: commando's vanaf standaardinvoer")
    args = ap.parse_args()
    if args.console:
        VAR.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "config" / "veiligheidshuizen.toml", VAR / "veiligheidshuizen.toml")
        config = VAR / "console.toml"
        config.write_text('[matrix]\nhomeserver = "http://127.0.0.1:9"\nuser_id = "@zsm-bot:localhost"\n'
                          '[http]\nenabled = false\n[users]\n"@officier:localhost" = "ovj"\n')
        print("Console: typ commando's, bijvoorbeeld !help of !ping (Ctrl-D stopt).", flush=True)
        from cli.main import main as cli
        return cli(["console", "--config", str(config), "--as", "@officier:localhost"])
    synapse, config, state = prepare()
    print(f"""
De bot draait. Log in met een Matrix-client (bijvoorbeeld Element) op:
  homeserver:  {synapse.url}
  gebruiker:   officier
  wachtwoord:  {state['officer_password']}
Open de room "ZSM afstemmingsoverleg" en typ !help. Stoppen: Ctrl-C.
Gezondheid: http://127.0.0.1:8080/healthz  metrics: http://127.0.0.1:8080/metrics
""", flush=True)
    from cli.main import main as cli
    try:
        return cli(["run", "--config", str(config)])
    finally:
        synapse.stop()


if __name__ == "__main__":
    sys.exit(main())
