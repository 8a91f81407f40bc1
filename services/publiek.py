"""The room's audience: who reads what the bot shows in a room, and what that room has been shown.

A reply with case data goes to a shared room only as far as every joined member may see it (PRIVACY.md: every
reader counts); the lookups ask ``room_velden`` and send the rest to the asker's encrypted direct room. The
Matrix transport feeds every membership change in through ``members_changed``; when a member joins who may not
see what the room was shown before, the room is told once. The console is a room with one member, the asker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from domain.matrix_ids import direct_target
from domain.publiek import member_fields, room_fields, shown_beyond
from domain.roles import label, labels
from domain.zichtbaarheid import GEEN, RolVelden
from services import messages
from services.base import Tx
from services.messages import NewMessage, message_content, txn_id_for
from services.reply import Reply, text
from storage import bot_state
from storage.room_members import members_and_state, members_of, replace_members, stored_rooms

_SHOWN_KEY = "publiek.getoond:"


def join_notice(user_id: str, role: str | None) -> str:
    who = f"{user_id} ({label(role)})" if role else f"{user_id} (zonder rol in de bot)"
    return (f"Let op: {who} is lid van deze room en mag niet alle informatie van veiligheidshuizen zien die hier "
            "eerder is gedeeld. Antwoorden met zaakgegevens gaan vanaf nu alleen naar het versleutelde directe "
            "bericht van wie erom vraagt; is dat niet de bedoeling, haal het lid dan uit deze room.")


def direct_notice(what: str, masked: str, asker: str) -> str:
    """The room's share of an answer that went to the asker's direct room: what it was and the masked id."""
    return f"{what} over {masked} staat in het directe bericht van de bot aan {asker}."


@dataclass
class PubliekService:
    users: Mapping[str, str]  # Matrix id -> role ([users])
    velden: Mapping[str, RolVelden]  # [permissions.velden]
    bot_user: str
    solo_rooms: frozenset[str]  # rooms whose only reader is the asker (the console)

    async def room_roles(self, tx: Tx, room_id: str, asker: str | None) -> list[str | None] | None:
        """The roles of the readers of ``room_id`` (None for a member without one); None when the room's members
        were never stored (other than a solo room): an unknown audience."""
        return self._roles(room_id, await members_of(tx, room_id), asker)

    async def audience(self, tx: Tx, room_id: str, asker: str | None) -> tuple[list[str | None] | None, RolVelden]:
        """``room_roles`` and ``getoond`` in one statement, for a lookup that needs both."""
        members, raw = await members_and_state(tx, room_id, _SHOWN_KEY + room_id)
        return self._roles(room_id, members, asker), _shown_from(raw)

    def _roles(self, room_id: str, stored: frozenset[str], asker: str | None) -> list[str | None] | None:
        members = set(stored)
        if not members and room_id not in self.solo_rooms:
            return None
        if asker is not None:
            members.add(asker)
        members.discard(self.bot_user)
        return [self.users.get(m) for m in sorted(members)]

    async def room_velden(self, tx: Tx, room_id: str, asker: str | None) -> RolVelden:
        """What every reader of ``room_id`` may see; an unknown audience is shown nothing."""
        roles = await self.room_roles(tx, room_id, asker)
        return GEEN if roles is None else room_fields(roles, self.velden)

    async def getoond(self, tx: Tx, room_id: str) -> RolVelden:
        return _shown_from(await bot_state.value_of(tx, _SHOWN_KEY + room_id))

    async def shown(self, tx: Tx, room_id: str, minor: bool, fields: Iterable[str], now: datetime,
                    before: RolVelden | None = None) -> None:
        """Remember which fields (per group) the room has been shown: a later member who may not see them is
        announced (field names only, never values). ``before``: what the room had been shown, when the caller
        read it already in this transaction (``audience``)."""
        fields = frozenset(fields)
        if not fields:
            return
        if before is None:
            before = await self.getoond(tx, room_id)
        after = RolVelden(before.meerderjarig | (frozenset() if minor else fields),
                          before.minderjarig | (fields if minor else frozenset()))
        if after != before:
            await bot_state.put(tx, _SHOWN_KEY + room_id, json.dumps(
                {"meerderjarig": sorted(after.meerderjarig), "minderjarig": sorted(after.minderjarig)}), now)

    async def members_changed(self, tx: Tx, room_id: str, joined: Iterable[str], now: datetime) -> list[str]:
        """The room state's joined members after a sync; returns the newcomers the room was told about (once
        per member and room)."""
        new, _ = await replace_members(tx, room_id, (u for u in joined if u != self.bot_user), now)
        shown = await self.getoond(tx, room_id)
        told: list[str] = []
        for user in sorted(new):
            role = self.users.get(user)
            if not shown_beyond(shown, member_fields(role, self.velden)):
                continue
            key = f"publiek.melding:{room_id}:{user}"
            if not await bot_state.claim(tx, key, now):
                continue
            await messages.queue(tx, NewMessage(room_id=room_id, content=message_content(
                text(join_notice(user, role))), txn_id=txn_id_for(key)), now)
            told.append(user)
        return told

    async def room_sees(self, tx: Tx, room_id: str, asker: str | None, needed: Iterable[str],
                        minor: bool | None) -> bool:
        """Every reader of the room may see ``needed`` for the person's group (``minor`` None: not known, so for
        both groups)."""
        room = await self.room_velden(tx, room_id, asker)
        needed = frozenset(needed)
        return all(needed <= room.voor(g) for g in ((minor,) if minor is not None else (False, True)))

    async def direct_for(self, tx: Tx, room_id: str, asker: str, needed: Iterable[str],
                         minor: bool | None) -> str | None:
        """For a command's reply composed in full: None when every reader of the room may see ``needed``, else the
        asker's direct room, where the adapter sends the reply while the room reads a notice with the masked id."""
        return None if await self.room_sees(tx, room_id, asker, needed, minor) else direct_target(asker)

    async def deliver(self, tx: Tx, msg: NewMessage, reply: Reply, *, asker: str, masked: str, what: str,
                      needed: Iterable[str], minor: bool | None, now: datetime) -> bool:
        """Queue a message with case data for its room if every reader may see ``needed``; otherwise the room
        gets a short notice with the masked id (in the same thread) and ``reply`` goes to the asker's direct
        room. Both carry the person's subject, so a sepot 01 redacts them. True when it went direct."""
        routed = await self.route(tx, msg, reply, asker=asker, notice=direct_notice(what, masked, asker),
                                  needed=needed, minor=minor, now=now)
        await messages.queue_many(tx, routed, now)
        return len(routed) > 1

    async def route(self, tx: Tx, msg: NewMessage, reply: Reply, *, asker: str | None, notice: str,
                    needed: Iterable[str], minor: bool | None, now: datetime) -> list[NewMessage]:
        """``deliver`` without the queueing, for callers that write a batch of messages at once: ``[msg]`` when
        every reader may see ``needed``, else the room's ``notice`` and (with an asker) ``reply`` for the asker's
        direct room."""
        needed = frozenset(needed)
        if await self.room_sees(tx, msg.room_id, asker, needed, minor):
            for group in (minor,) if minor is not None else (False, True):
                await self.shown(tx, msg.room_id, group, needed, now)
            return [msg]
        routed = [replace(msg, case_data=True, content=message_content(
            text(notice), in_reply_to=msg.in_reply_to, mentions=(asker,) if asker else ()))]
        if asker is not None:
            routed.append(NewMessage(room_id=direct_target(asker), txn_id=txn_id_for(msg.txn_id, "direct"),
                                     content=message_content(reply), case_data=True, subject=msg.subject))
        return routed


def mixed_room_notes(rooms: Mapping[str, Iterable[str]], configured: Iterable[str], users: Mapping[str, str],
                     velden: Mapping[str, RolVelden]) -> list[str]:
    """``check-config``: configured rooms whose members (as the bot last saw them) do not all see the same fields;
    there the bot sends case data to the asker's direct room and not to the room."""
    notes = []
    for room_id in configured:
        members = sorted(rooms.get(room_id, ()))
        roles = {users.get(m) for m in members}
        if len({member_fields(r, velden) for r in roles}) <= 1:
            continue
        named = labels(frozenset(r for r in roles if r is not None)) + (", zonder rol" if None in roles else "")
        notes.append(f"matrix.rooms: in {room_id} zitten rollen met verschillend zicht ({named}); antwoorden met "
                     "zaakgegevens gaan daar naar het directe bericht van de vrager. Maak een room per rol als dat "
                     "niet de bedoeling is")
    return notes


async def stored_room_notes(database_url: str, configured: Iterable[str], users: Mapping[str, str],
                            velden: Mapping[str, RolVelden], bot_user: str) -> list[str]:
    """``mixed_room_notes`` on the members the bot stored; nothing when there is no database yet."""
    rooms = await stored_rooms(database_url)
    if rooms is None:
        return []
    return mixed_room_notes({r: m - {bot_user} for r, m in rooms.items()}, configured, users, velden)


def _shown_from(raw: str | None) -> RolVelden:
    if raw is None:
        return GEEN
    data = json.loads(raw)
    return RolVelden(frozenset(data.get("meerderjarig", [])), frozenset(data.get("minderjarig", [])))
