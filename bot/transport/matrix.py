"""The Matrix side: an encrypted nio client, a supervised sync loop and exactly-once handing to the dispatcher.

nio saves its sync token before callbacks run and runs callbacks inline without catching their errors, so the
bot keeps its own token: it is stored only when every command of that sync and of all earlier syncs has been
handled (committed with its inbox row). After a crash the bot syncs again from the last trusted token; commands
already handled are recognised by the inbox and skipped, the rest are handled now. Commands run as tasks so a
slow one never stalls the sync loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    KeysUploadError,
    LocalProtocolError,
    LoginResponse,
    MegolmEvent,
    ReactionEvent,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomMessageText,
    RoomPreset,
    RoomRedactError,
    RoomRedactResponse,
    RoomSendError,
    RoomSendResponse,
    RoomVisibility,
    SyncError,
    SyncResponse,
    WhoamiResponse,
)

from bot.coldstart import Waiting, until_reachable
from bot.dispatcher import Dispatcher, IncomingCommand
from bot.metrics import Metrics
from bot.transport import RateLimited, SendFailed
from bot.transport.cross_signing import CrossSigner, KeyFile
from config.settings import MatrixSettings
from domain.clock import Clock
from domain.matrix_ids import DIRECT_PREFIX
from services.messages import NewMessage, message_content, queue, txn_id_for
from services.reply import text
from storage import bot_state, inbox
from storage.db import SessionFactory, read_only
from storage.leader import SOLO, Leadership, database_unreachable

log = logging.getLogger(__name__)

TOKEN_KEY = "matrix.sync_token"  # noqa: S105 (a state key, not a secret); per device: TOKEN_KEY + ":" + device id
SYNC_FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": 100}, "state": {"lazy_load_members": False}},
    "presence": {"types": []},
}
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0
UTD_WAIT_S = 8.0
TOKEN_STORE_INTERVAL_S = 2.0
YIELDS_TO_COMMANDS = 2
SEND_TIMEOUT_S = 45.0  # one room_send, including sharing the room key (key claims, to-device messages)
DIRECT_JOIN_WAIT_S = 3.0  # then the message waits in the send queue until the user joined
KEY_UPLOAD_ATTEMPTS = 3  # failed uploads in a row before the device is reported as unusable
RETRY_S = 2.0  # an event whose handling failed (database unreachable) is tried again after this
CROSS_SIGNING_KEYS = "matrix.cross_signing_keys"  # bot_state key: the encrypted key file, shared by the instances
TXN_FIELD = "nl.zsm.txn"  # the send queue's txn id, inside the (encrypted) content: another device can see it
OWN_SENT_MEMORY = 10_000
HELD_EVENT_MAX_S = 600.0  # a standby forgets a held reaction or unreadable message after this (the active had it)

ReactionHandler = Callable[[str, str, str, str], Awaitable[None]]  # room, sender, reacted event id, key
MembersHandler = Callable[[str, frozenset[str]], Awaitable[None]]  # room, its joined members (room state)


class LoginFailed(Exception):
    pass


class HomeserverNotReady(Exception):
    """A 5xx answer at login: a proxy before a homeserver that is still starting; waited for (bot.coldstart)."""


def _not_ready(resp: object) -> HomeserverNotReady | None:
    status = getattr(getattr(resp, "transport_response", None), "status", None)
    return HomeserverNotReady(f"HTTP {status}") if isinstance(status, int) and status >= 500 else None


class MatrixTransport:
    """Sends through nio; a 429 becomes ``RateLimited`` so the send queue waits and reuses the txn id."""

    def __init__(self, settings: MatrixSettings) -> None:
        settings.store_path.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=True, store_sync_tokens=False, max_limit_exceeded=0, max_timeouts=2,
            request_timeout=settings.sync_timeout_ms / 1000 + 30,
        )
        self.settings = settings
        # txn id -> event id of the bot's own messages seen in the timeline (sent by any of its devices)
        self._own_sent: dict[str, str] = {}
        self.client = AsyncClient(
            settings.homeserver, settings.user_id, device_id=settings.device_id,
            store_path=str(settings.store_path), config=config,
        )

    async def login(self) -> None:
        s = self.settings
        if s.access_token:
            # An access token belongs to one device; the crypto store must be that device's, so check it.
            self.client.access_token = s.access_token
            who = await self.client.whoami()
            if not isinstance(who, WhoamiResponse) and (starting := _not_ready(who)) is not None:
                raise starting
            if not isinstance(who, WhoamiResponse):
                code = getattr(who, "status_code", "?")
                raise LoginFailed(f"matrix.access_token: geweigerd door de homeserver ({code})")
            if who.user_id != s.user_id:
                raise LoginFailed(f"matrix.access_token: hoort bij {who.user_id}, niet bij matrix.user_id {s.user_id}")
            if who.device_id and who.device_id != s.device_id:
                raise LoginFailed(f"matrix.device_id: het access token hoort bij apparaat {who.device_id}; "
                                  f"zet device_id = \"{who.device_id}\"")
            self.client.restore_login(s.user_id, s.device_id, s.access_token)
            return
        if not s.password:
            raise LoginFailed("matrix: geen access_token en geen password")
        resp = await self.client.login(s.password, device_name=s.device_name)
        if not isinstance(resp, LoginResponse) and (starting := _not_ready(resp)) is not None:
            raise starting
        if not isinstance(resp, LoginResponse):
            raise LoginFailed(f"matrix: inloggen mislukt ({getattr(resp, 'status_code', '?')})")

    def saw_own(self, txn_id: str, event_id: str) -> None:
        """A message of the bot (this device or another) in the timeline, by the txn id it carries."""
        self._own_sent[txn_id] = event_id
        if len(self._own_sent) > OWN_SENT_MEMORY:
            del self._own_sent[next(iter(self._own_sent))]

    def sent_elsewhere(self, txn_id: str) -> str | None:
        return self._own_sent.get(txn_id)

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        # The txn id travels inside the content: an instance that takes over sees, in its own sync, which of its
        # predecessor's claimed messages did reach the room, and does not send those again.
        content = {**content, TXN_FIELD: txn_id}
        if room_id.startswith(DIRECT_PREFIX):
            room_id = await self._direct_room(room_id[len(DIRECT_PREFIX):])
        try:
            resp = await self._room_send(room_id, content, txn_id)
        except LocalProtocolError as exc:
            raise SendFailed(f"local: {type(exc).__name__}", permanent=room_id not in self.client.rooms) from None
        except (TimeoutError, OSError) as exc:
            raise SendFailed(f"network: {type(exc).__name__}") from None
        except Exception as exc:
            raise SendFailed(f"error: {type(exc).__name__}") from None
        if isinstance(resp, RoomSendResponse):
            return str(resp.event_id)
        if isinstance(resp, RoomSendError):
            if resp.status_code == "M_LIMIT_EXCEEDED":
                raise RateLimited((resp.retry_after_ms or 1000) / 1000)
            permanent = resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN")
            raise SendFailed(f"homeserver: {resp.status_code}", permanent=permanent)
        raise SendFailed(f"unexpected: {type(resp).__name__}")


    async def _room_send(self, room_id: str, content: dict[str, Any], txn_id: str) -> Any:
        """nio's room_send, bounded. nio marks a room as "sharing a group session" before it claims the one-time
        keys, outside the block that clears the mark: a claim that fails or is cancelled leaves the mark, and every
        later send to that room then waits on it for ever (a reply stuck for good in a burst). A send that ends
        badly clears a mark it may have left; the next attempt shares the session again."""
        others_sharing = room_id in self.client.sharing_session  # then the mark is theirs to clear
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                return await self.client.room_send(
                    room_id, "m.room.message", content, tx_id=txn_id, ignore_unverified_devices=True)
        except BaseException:
            stuck = None if others_sharing else self.client.sharing_session.pop(room_id, None)
            if stuck is not None:
                log.warning("room key sharing ended badly; cleared so the next send shares again")
                stuck.set()
            raise

    async def _direct_room(self, user_id: str) -> str:
        """The encrypted direct room with one user, created on first use and found again after a restart (the
        first sync is full-state): an encrypted room outside ``matrix.rooms`` with only the bot and that user.
        A message waits (SendFailed, retried with the same txn id) until the user has joined, so the room key is
        shared with a device that is really theirs."""
        found = self._find_direct(user_id)
        if found is not None:
            return await self._wait_joined(found, user_id)
        resp = await self.client.room_create(
            visibility=RoomVisibility.private, preset=RoomPreset.trusted_private_chat, is_direct=True,
            name="ZSM-bot", invite=[user_id], initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
        if not isinstance(resp, RoomCreateResponse):
            raise SendFailed(f"direct room: {getattr(resp, 'status_code', type(resp).__name__)}")
        log.info("direct room created", extra={"room": resp.room_id})
        return await self._wait_joined(str(resp.room_id), user_id)

    def _find_direct(self, user_id: str) -> str | None:
        me = self.client.user_id
        for rid, room in self.client.rooms.items():
            if rid not in self.settings.rooms and room.encrypted and \
                    set(room.users) | set(room.invited_users) == {me, user_id}:
                return str(rid)
        return None

    async def _wait_joined(self, room_id: str, user_id: str) -> str:
        deadline = asyncio.get_running_loop().time() + DIRECT_JOIN_WAIT_S
        while True:
            room = self.client.rooms.get(room_id)
            if room is not None and room.encrypted and user_id in room.users and user_id not in room.invited_users:
                return room_id
            if asyncio.get_running_loop().time() >= deadline:
                raise SendFailed("direct room: waiting for the user to join")
            await asyncio.sleep(0.1)

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        if room_id.startswith(DIRECT_PREFIX):
            found = self._find_direct(room_id[len(DIRECT_PREFIX):])
            if found is None:
                raise SendFailed("direct room: gone", permanent=True)
            room_id = found
        try:
            resp = await self.client.room_redact(room_id, event_id, reason=reason, tx_id=txn_id)
        except (TimeoutError, OSError) as exc:
            raise SendFailed(f"network: {type(exc).__name__}") from None
        except Exception as exc:
            raise SendFailed(f"error: {type(exc).__name__}") from None
        if isinstance(resp, RoomRedactResponse):
            return
        if isinstance(resp, RoomRedactError):
            if resp.status_code == "M_LIMIT_EXCEEDED":
                raise RateLimited((resp.retry_after_ms or 1000) / 1000)
            permanent = resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN")
            raise SendFailed(f"homeserver: {resp.status_code}", permanent=permanent)
        raise SendFailed(f"unexpected: {type(resp).__name__}")


class _Batch:
    __slots__ = ("pending", "token")

    def __init__(self, token: str) -> None:
        self.token = token
        self.pending = 0


class _Work:
    """One event to handle, kept until it is handled: by this instance, or (seen from a standby) by the active one.
    A standby knows a command handled by its inbox row; other events (reactions, messages it cannot read) it
    forgets after HELD_EVENT_MAX_S unless an inbox row turns up first."""

    __slots__ = ("batch", "command", "event_id", "run", "seen_at")

    def __init__(self, batch: _Batch, event_id: str, run: Callable[[], Awaitable[None]], *, command: bool) -> None:
        self.batch = batch
        self.event_id = event_id
        self.run = run
        self.command = command
        self.seen_at = time.monotonic()


class MatrixBot:
    """The sync supervisor. Survives exceptions, ``SyncError`` answers, homeserver restarts and network loss."""

    def __init__(
        self, transport: MatrixTransport, dispatcher: Dispatcher, sessions: SessionFactory, clock: Clock,
        metrics: Metrics, settings: MatrixSettings, *, wake_sender: Callable[[], None],
        on_reaction: ReactionHandler | None = None, max_concurrent: int = 16,
        cross_signing_secret: bytes | None = None, waiting: Waiting | None = None,
        on_members: MembersHandler | None = None, leader: Leadership = SOLO,
    ) -> None:
        self.waiting = waiting or Waiting()
        self.on_members = on_members
        self.cross_signing_secret = cross_signing_secret
        self.cross_signed = False
        self.transport = transport
        self.client = transport.client
        self.dispatcher = dispatcher
        self.sessions = sessions
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self.rooms = frozenset(settings.rooms)
        self.wake_sender = wake_sender
        self.on_reaction = on_reaction
        self._batches: deque[_Batch] = deque()
        self.leader = leader
        # Events not (yet) handled: seen while standby, or failed because the database was unreachable. They
        # run when this instance is (again) active; their batch keeps the sync token from moving past them.
        self._held: list[_Work] = []
        self._retry_timer: asyncio.TimerHandle | None = None
        self.token_key = f"{TOKEN_KEY}:{settings.device_id}"
        self._own_devices: frozenset[str] | None = None
        leader.add_listener(self._leadership_changed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(max_concurrent)
        self._trusted: str | None = None
        self._stored: str | None = None
        self._stored_at = 0.0
        self.synced_once = asyncio.Event()
        self.key_upload_failures = 0
        self.device_problem: str | None = None  # operator-facing, shown in /readyz; never personal data

    # --- sync token ----------------------------------------------------------------------------------
    async def _load_token(self) -> str | None:
        """This device's own place in the timeline: two instances (two devices) each keep theirs. The one global
        key of earlier versions is the fallback for the device that used it."""
        async with read_only(self.sessions) as s:
            return await bot_state.value_of(s, self.token_key) or await bot_state.value_of(s, TOKEN_KEY)

    async def _store_token(self, token: str, *, force: bool = False) -> None:
        # Written at most every TOKEN_STORE_INTERVAL_S: an older token only means re-reading a few events the
        # inbox already knows, and fewer writes keep the database free for the commands themselves.
        if token == self._stored:
            return
        now = time.monotonic()
        if not force and now - self._stored_at < TOKEN_STORE_INTERVAL_S:
            return
        self._stored_at = now
        async with self.sessions() as s, s.begin():
            await bot_state.put(s, self.token_key, token, self.clock.now())
        self._stored = token

    def _advance_trusted(self) -> None:
        while self._batches and self._batches[0].pending == 0:
            self._trusted = self._batches.popleft().token

    # --- main loop -----------------------------------------------------------------------------------
    async def run(self) -> None:
        # Cold start: the homeserver may come up after the bot (compose, reboot); wait for it, a refusal still stops.
        await until_reachable("homeserver", self.transport.login, self.waiting)
        since = await self._load_token()
        # The first sync of a process asks for full state so nio knows every room (members, encryption) before
        # anything is sent; with a trusted token its timeline still holds the commands that arrived meanwhile.
        fresh_install = since is None
        first = True
        backoff = BACKOFF_START_S
        while True:
            try:
                resp = await self.client.sync(
                    timeout=0 if first else self.settings.sync_timeout_ms, since=since, full_state=first,
                    sync_filter=SYNC_FILTER,
                )
                if isinstance(resp, SyncError) or not isinstance(resp, SyncResponse):
                    raise _SyncFailed(getattr(resp, "status_code", type(resp).__name__))
                self.metrics.synced()
                backoff = BACKOFF_START_S
                await self._housekeeping()
                await self._join_configured(resp)
                await self._members(resp, first)
                batch = _Batch(resp.next_batch)
                self._batches.append(batch)
                if not (first and fresh_install):
                    await self._dispatch(resp, batch)
                await self._forget_handled()
                if not self.cross_signed and self.cross_signing_secret and not self.client.should_upload_keys:
                    await self._cross_sign()
                since = resp.next_batch
                first = False
                self._advance_trusted()
                if self._trusted:
                    await self._store_token(self._trusted)
                self.synced_once.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.sync_errors.inc()
                wait = min(BACKOFF_CAP_S, backoff) * (0.8 + 0.4 * random.random())
                log.warning("sync failed; retrying", extra={"error": type(exc).__name__, "wait_s": round(wait, 2)})
                await asyncio.sleep(wait)
                backoff = min(BACKOFF_CAP_S, backoff * 2)

    async def _cross_sign(self) -> None:
        """Once per process, after our device keys are on the homeserver; a failure is retried next sync."""
        assert self.cross_signing_secret is not None
        path = self.settings.store_path / "cross_signing.json"
        try:
            shared = await self._shared_cross_signing_keys(path)
            if shared is None and not self.leader.active:
                return  # a standby signs with the account's keys once the active instance has stored them
            signer = CrossSigner(
                self.settings.homeserver, self.settings.user_id, self.settings.device_id,
                str(self.client.access_token), KeyFile(path, self.cross_signing_secret), self.settings.password,
            )
            did = await signer.ensure()
            created = _read_if_exists(path) if shared is None else None
            if created is not None:
                async with self.sessions() as s, s.begin():
                    if await bot_state.value_of(s, CROSS_SIGNING_KEYS) is None:
                        await bot_state.put(s, CROSS_SIGNING_KEYS, created, self.clock.now())
        except Exception as exc:
            self.metrics.cross_signed.set(0)
            log.warning("cross-signing not done", extra={"error": type(exc).__name__})
            return
        self.cross_signed = True
        self.metrics.cross_signed.set(1)
        log.info("cross-signing", extra={"result": did})

    async def _shared_cross_signing_keys(self, path: Path) -> str | None:
        """The cross-signing keys belong to the account, not to a device: every instance signs its own device with
        the one self-signing key, kept encrypted (with the cross-signing secret) in the shared database; the file
        in the store is a copy of it. Only the active instance creates them (a second set would replace the
        first on the homeserver and undo the first device's signature)."""
        async with read_only(self.sessions) as s:
            shared = await bot_state.value_of(s, CROSS_SIGNING_KEYS)
        if shared is not None and _read_if_exists(path) != shared:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(shared)
        return shared

    async def _housekeeping(self) -> None:
        """What nio's sync_forever does between syncs: to-device messages and key management."""
        c = self.client
        await c.send_to_device_messages()
        if c.should_upload_keys:
            self._key_upload_result(await c.keys_upload())
        if c.should_query_keys:
            await c.keys_query()
            self._share_with_new_own_devices()
        if c.should_claim_keys:
            await c.keys_claim(c.get_users_for_key_claiming())

    def _share_with_new_own_devices(self) -> None:
        """A new device of the bot account (a standby) must be able to read what this one sends, so it can tell
        after a takeover which messages already reached the room. nio shares a room key only with the devices
        known when the key was made, so a new own device starts a new room key."""
        own = frozenset(d.id for d in self.client.device_store.active_user_devices(str(self.client.user_id)))
        if self._own_devices is not None and own - self._own_devices:
            for room_id in self.rooms:
                self.client.invalidate_outbound_session(room_id)
        self._own_devices = own

    def _key_upload_result(self, resp: object) -> None:
        """A crypto store lost while ``matrix.device_id`` was kept: the new account's one-time keys collide with the
        old device's on the homeserver and every upload fails, so nobody can start an encrypted session with the
        bot. Retrying cannot help; the operator must choose a new device id or delete the old device."""
        if not isinstance(resp, KeysUploadError):
            self.key_upload_failures = 0
            return
        self.key_upload_failures += 1
        collided = "already exists" in str(resp.message or "")
        if self.device_problem is None and (collided or self.key_upload_failures >= KEY_UPLOAD_ATTEMPTS):
            self.device_problem = (
                f"matrix: apparaat {self.settings.device_id} weigert nieuwe sleutels (crypto-opslag kwijt, zelfde "
                "device_id); zet een nieuwe matrix.device_id of verwijder het oude apparaat van het bot-account")
            self.metrics.device_conflict.set(1)
            log.error("device keys refused by the homeserver: the crypto store was lost but matrix.device_id was "
                      "kept. Oplossing: zet een nieuwe matrix.device_id (bijvoorbeeld ZSMBOT2) of verwijder het oude "
                      "apparaat van het bot-account, en start de bot opnieuw.",
                      extra={"device_id": self.settings.device_id, "status": resp.status_code,
                             "attempts": self.key_upload_failures})

    async def _join_configured(self, resp: SyncResponse) -> None:
        """Join only configured rooms; invites to any other room are ignored."""
        wanted = [r for r in self.rooms if r not in self.client.rooms or r in resp.rooms.invite]
        for room_id in wanted:
            if room_id in resp.rooms.invite or room_id not in self.client.rooms:
                result = await self.client.join(room_id)
                log.info("join", extra={"room": room_id, "ok": not hasattr(result, "status_code")})

    async def _members(self, resp: SyncResponse, first: bool) -> None:
        """The joined members of each configured room, from nio's room state, after the first (full-state) sync and
        after every sync with a membership change; before the sync's commands are handled, so each is answered
        for the room as it is now. A failure raises: the sync is retried and the audience is never stale."""
        if self.on_members is None:
            return
        for room_id, info in resp.rooms.join.items():
            room = self.client.rooms.get(room_id)
            if room_id not in self.rooms or room is None:
                continue
            changed = any(isinstance(e, RoomMemberEvent) for e in [*info.state, *info.timeline.events])
            if first or changed:
                await self.on_members(room_id, frozenset(set(room.users) - set(room.invited_users)))

    # --- events --------------------------------------------------------------------------------------
    async def _dispatch(self, resp: SyncResponse, batch: _Batch) -> None:
        commands = batch.pending
        for room_id, info in resp.rooms.join.items():
            if room_id not in self.rooms:
                continue
            room = self.client.rooms.get(room_id)
            for event in info.timeline.events:
                sender = getattr(event, "sender", None)
                if sender == self.client.user_id:
                    txn = event.source.get("content", {}).get(TXN_FIELD)
                    if isinstance(txn, str):
                        self.transport.saw_own(txn, event.event_id)
                    continue
                if sender is None:
                    continue
                if isinstance(event, RoomMessageText):
                    if not event.body.lstrip().startswith("!") or _is_edit(event.source):
                        continue
                    encrypted = bool(getattr(event, "decrypted", False))
                    if self.settings.require_encryption and not (encrypted and room is not None and room.encrypted):
                        await self._refuse_unencrypted(room_id)
                        continue
                    received = self.clock.now()
                    self._spawn(_Work(batch, event.event_id, partial(self._handle_command, room_id, event, received),
                                      command=True))
                elif isinstance(event, MegolmEvent):
                    self._spawn(_Work(batch, event.event_id, partial(self._undecryptable, room_id, event,
                                                                     self.clock.now()), command=False))
                elif isinstance(event, ReactionEvent) and self.on_reaction is not None:
                    self._spawn(_Work(batch, event.event_id, partial(self.on_reaction, room_id, sender,
                                                                     event.reacts_to, event.key), command=False))
        if batch.pending > commands and self.leader.active:
            # The commands just started run before this loop asks for the next sync: handled up to their commit,
            # and their replies handed to the send lane, whose task starts at the second turn. Asking first cost
            # each reply the building and sending of that request (about a millisecond).
            for _ in range(YIELDS_TO_COMMANDS):
                await asyncio.sleep(0)

    def _spawn(self, work: _Work) -> None:
        work.batch.pending += 1
        if self.leader.active:
            self._start(work)
        else:
            self._held.append(work)

    def _start(self, work: _Work) -> None:
        async def runner() -> None:
            try:
                async with self._limit:
                    await work.run()
            except Exception as exc:
                # Its batch stays pending, so the sync token does not pass it. When the database was unreachable
                # nothing was committed: the event is held and runs again, in this process, once the database
                # answers and this instance is active; its age still counts from when it was received. Any other
                # failure is left for the next start, as before (a retry loop would only repeat it).
                retry = database_unreachable(exc)
                log.error("event handling failed", extra={"error": type(exc).__name__, "retry": retry})
                if retry:
                    self._held.append(work)
                    self._schedule_retry()
                return
            self._done(work)

        task = asyncio.create_task(runner())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done(self, work: _Work) -> None:
        work.batch.pending -= 1
        self._advance_trusted()

    def _schedule_retry(self) -> None:
        if self._retry_timer is None:
            self._retry_timer = asyncio.get_running_loop().call_later(RETRY_S, self._release_held)

    def _release_held(self) -> None:
        """Run what was held, when this instance may act; otherwise it waits for the leadership callback."""
        self._retry_timer = None
        if not self.leader.active:
            return
        held, self._held = self._held, []
        for work in held:
            self._start(work)

    def _leadership_changed(self, active: bool) -> None:
        if active:
            self._release_held()

    async def _forget_handled(self) -> None:
        """A standby drops held commands the active instance has handled (their inbox rows exist), so its own sync
        token can move on; what is left is what it handles itself if it takes over."""
        if not self._held or self.leader.active:
            return
        try:
            async with read_only(self.sessions) as s:
                # every held event: an unreadable message here may have been a command the active one could read
                handled = await inbox.handled_among(s, [w.event_id for w in self._held])
        except Exception as exc:  # the database is away: keep holding, ask again next sync
            log.info("held events not checked", extra={"error": type(exc).__name__})
            return
        cutoff = time.monotonic() - HELD_EVENT_MAX_S
        keep: list[_Work] = []
        for work in self._held:
            if work.event_id in handled or (not work.command and work.seen_at < cutoff):
                self._done(work)
            else:
                keep.append(work)
        self._held = keep

    async def _handle_command(self, room_id: str, event: RoomMessageText, received: datetime) -> None:
        relates = event.source.get("content", {}).get("m.relates_to") or {}
        thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        await self.dispatcher.handle(IncomingCommand(
            event_id=event.event_id, room_id=room_id, sender=event.sender, body=event.body,
            sent_at=datetime.fromtimestamp(event.server_timestamp / 1000, UTC), thread_root=thread_root,
        ), received_at=received)

    async def _refuse_unencrypted(self, room_id: str) -> None:
        """Say once, ever, why the bot does nothing here."""
        key = f"matrix.unencrypted_notice:{room_id}"
        async with self.sessions() as s, s.begin():
            now = self.clock.now()
            if not await bot_state.claim(s, key, now):
                return
            reply = text("Deze room is niet end-to-end versleuteld. De ZSM-afstemmingsbot voert hier geen commando's "
                         "uit. Zet versleuteling aan (room-instellingen, Beveiliging) en stuur het commando opnieuw.")
            await queue(s, NewMessage(room_id=room_id, content=message_content(reply), txn_id=txn_id_for(key)), now)
        self.wake_sender()

    async def _undecryptable(self, room_id: str, event: MegolmEvent, received: datetime) -> None:
        """A command we cannot read must not meet silence.

        Keys often arrive a moment after the message (a new device, a late to-device message): ask for them,
        wait a few seconds and handle the command if it can be read after all; otherwise tell the sender.
        """
        if self.dispatcher.settings.role_of(event.sender) is None:
            return
        try:
            await self.client.request_room_key(event)
        except Exception as exc:
            log.info("room key request not sent", extra={"error": type(exc).__name__})
        for _ in range(int(UTD_WAIT_S / 0.25)):
            await asyncio.sleep(0.25)
            try:
                late = self.client.decrypt_event(event)
            except Exception:  # noqa: S112 (no key yet: keep waiting)
                continue
            if isinstance(late, RoomMessageText):
                late.decrypted = True
                if late.body.lstrip().startswith("!") and not _is_edit(late.source):
                    await self._handle_command(room_id, late, received)
            return
        async with self.sessions() as s, s.begin():
            now = self.clock.now()
            if not await bot_state.claim(s, f"utd:{event.event_id}", now):
                return
            reply = text("Ik kon uw bericht niet ontsleutelen. Stuur het commando opnieuw; lukt dat niet, "
                         "verifieer dan het apparaat van de bot of meld het bij de beheerder.")
            await queue(s, NewMessage(room_id=room_id, txn_id=txn_id_for(event.event_id), in_reply_to=event.event_id,
                                      content=message_content(reply, in_reply_to=event.event_id)), now)
        self.wake_sender()

    async def drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class _SyncFailed(Exception):
    pass


def _read_if_exists(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _is_edit(source: dict[str, Any]) -> bool:
    relates = source.get("content", {}).get("m.relates_to") or {}
    return bool(relates.get("rel_type") == "m.replace")
