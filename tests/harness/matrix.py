"""Matrix test harness: one real Synapse per session, fresh users and encrypted rooms per test.

An ``Officer`` is a second matrix-nio client with its own crypto store: it sends commands into the room and
collects the bot's replies (decrypted) by the event they answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

from devtools.synapse import Synapse

PASSWORD = "correct-horse-battery"


@dataclass
class Officer:
    client: AsyncClient
    replies: list[RoomMessageNotice | RoomMessageText] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    # Messages that arrived before their room key: a real client (Element) decrypts them once the key comes, so the
    # officer does too, after every sync, instead of counting a late key as a lost reply.
    _undecrypted: list[MegolmEvent] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def start(self) -> None:
        async def on_message(room: Any, event: Any) -> None:
            if event.sender != self.client.user_id:
                self.replies.append(event)
                self._event.set()

        async def on_undecryptable(room: Any, event: Any) -> None:
            if event.sender != self.client.user_id:
                self._undecrypted.append(event)

        async def after_sync(_: Any) -> None:
            still: list[MegolmEvent] = []
            for held in self._undecrypted:
                try:
                    event = self.client.decrypt_event(held)
                except Exception:  # no key yet: try again after the next sync
                    still.append(held)
                    continue
                if isinstance(event, RoomMessageNotice | RoomMessageText):
                    self.replies.append(event)
                    self._event.set()
            self._undecrypted = still

        self.client.add_event_callback(on_message, (RoomMessageNotice, RoomMessageText))
        self.client.add_event_callback(on_undecryptable, MegolmEvent)
        self.client.add_response_callback(after_sync, SyncResponse)
        await self.client.sync(timeout=0, full_state=True)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self._task = asyncio.create_task(self.client.sync_forever(timeout=1000, loop_sleep_time=10))

    async def create_room(self, invite: list[str], *, encrypted: bool = True) -> str:
        state = [{"type": "m.room.encryption", "state_key": "",
                  "content": {"algorithm": "m.megolm.v1.aes-sha2"}}] if encrypted else []
        resp = await self.client.room_create(name=f"zsm-{uuid.uuid4().hex[:6]}", invite=invite, initial_state=state)
        assert isinstance(resp, RoomCreateResponse), resp
        return str(resp.room_id)

    async def accept_invite(self, timeout: float = 30) -> str:
        """Join the first room this officer is invited to (the bot's direct room) and return its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for room_id in list(self.client.invited_rooms):
                await self.client.join(room_id)
                while room_id not in self.client.rooms and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return str(room_id)
            await asyncio.sleep(0.05)
        raise AssertionError("no invitation arrived")

    async def wait_member(self, room_id: str, user_id: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            room = self.client.rooms.get(room_id)
            if room and user_id in room.users:
                if room.encrypted:
                    await self.wait_devices(user_id, max(1.0, deadline - time.monotonic()))
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{user_id} did not join {room_id}")

    async def wait_devices(self, user_id: str, timeout: float = 30) -> None:
        """Do not encrypt for a room before the other side's device keys are known (else it cannot read us)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if list(self.client.device_store.active_user_devices(user_id)):
                return
            await self.query_keys()
            await asyncio.sleep(0.1)
        raise AssertionError(f"no device keys for {user_id}")

    async def query_keys(self) -> None:
        """Ask for changed device keys, unless the sync task runs: ``sync_forever`` asks after every sync itself, and
        of two queries at once the second raises (nio's "No key query required"), which, when it was the sync
        task's, ended the officer's syncing for the rest of the test."""
        if self._task is not None:
            if self._task.done():
                raise AssertionError(f"the officer's sync stopped: {self._task.exception()!r}")
            return
        if self.client.should_query_keys:
            await self.client.keys_query()

    async def send(self, room_id: str, body: str) -> str:
        for _ in range(50):
            resp = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                               ignore_unverified_devices=True)
            if isinstance(resp, RoomSendResponse):
                return str(resp.event_id)
            await asyncio.sleep(0.2)
        raise AssertionError(f"could not send: {resp}")

    def replies_to(self, event_id: str) -> list[Any]:
        out = []
        for ev in self.replies:
            rel = ev.source.get("content", {}).get("m.relates_to") or {}
            if (rel.get("m.in_reply_to") or {}).get("event_id") == event_id:
                out.append(ev)
        return out

    async def wait_reply(self, event_id: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.replies_to(event_id)
            if found:
                return found[0]
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout=0.2)
        raise AssertionError(f"no reply to {event_id} within {timeout}s")

    async def wait_for(self, predicate: Any, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.replies:
                if predicate(ev):
                    return ev
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout=0.2)
        raise AssertionError("expected message did not arrive")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.client.close()


@dataclass
class Homeserver:
    synapse: Synapse
    admin_token: str
    stores: Path

    def new_user(self, prefix: str, *, lift_limit: bool = True) -> str:
        local = f"{prefix}-{uuid.uuid4().hex[:8]}"
        info = self.synapse.register(local, PASSWORD)
        if lift_limit:
            self.synapse.lift_rate_limit(self.admin_token, str(info["user_id"]))
        return str(info["user_id"])

    async def officer(self, prefix: str = "ovj") -> Officer:
        user_id = self.new_user(prefix)
        store = self.stores / user_id.strip("@").replace(":", "_")
        store.mkdir(parents=True)
        client = AsyncClient(self.synapse.url, user_id, store_path=str(store),
                             config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        resp = await client.login(PASSWORD, device_name="officer")
        assert isinstance(resp, LoginResponse), resp
        officer = Officer(client)
        await officer.start()
        return officer
