"""The round-trip benchmarks' baseline in a process of its own: a minimal matrix-nio client that answers every
message in its rooms with a threaded notice, no database.

    python -m bench.echo_process HOMESERVER USER_ID PASSWORD STORE

Prints ``ready`` once it has synced and uploaded its keys, then answers until its standard input closes. It runs
apart from the benchmark's officer client for the same reason as the bot does (``bench.matrix_roundtrip``): on one
event loop, the officer's own sync work ran between the steps of whichever side had more of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, LoginResponse, RoomMessageText


async def serve(homeserver: str, user_id: str, password: str, store: Path) -> None:
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(homeserver, user_id, store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    try:
        resp = await client.login(password, device_name="echo")
        if not isinstance(resp, LoginResponse):
            raise SystemExit(f"echo: login failed: {resp}")

        async def on_message(room: Any, event: RoomMessageText) -> None:
            if event.sender == client.user_id:
                return
            await client.room_send(room.room_id, "m.room.message", {
                "msgtype": "m.notice", "body": "echo",
                "m.relates_to": {"rel_type": "m.thread", "event_id": event.event_id, "is_falling_back": True,
                                 "m.in_reply_to": {"event_id": event.event_id}},
            }, ignore_unverified_devices=True)

        async def on_invite(room: Any, event: Any) -> None:
            await client.join(room.room_id)

        client.add_event_callback(on_message, RoomMessageText)
        client.add_event_callback(on_invite, InviteMemberEvent)
        await client.sync(timeout=0, full_state=True)
        if client.should_upload_keys:
            await client.keys_upload()
        syncing = asyncio.create_task(client.sync_forever(timeout=30000))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our standard input
        syncing.cancel()
        with contextlib.suppress(BaseException):
            await syncing
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
