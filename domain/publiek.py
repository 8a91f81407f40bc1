"""The room's audience: a message in a shared room is read by every member, so it may hold only what each of them
may see (PRIVACY.md, need to know). Pure rules: the members' roles come in, the fields the room may be shown go
out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import reduce

from domain.zichtbaarheid import GEEN, RolVelden


def member_fields(role: str | None, velden: Mapping[str, RolVelden]) -> RolVelden:
    """One member's fields; a member without a role sees nothing."""
    return velden.get(role, GEEN) if role is not None else GEEN


def room_fields(roles: Iterable[str | None], velden: Mapping[str, RolVelden]) -> RolVelden:
    """What every member may see: the intersection of the members' fields, per group (an empty room sees
    nothing)."""
    each = [member_fields(r, velden) for r in roles]
    return reduce(lambda a, b: a & b, each) if each else GEEN


def room_may_show(own: Sequence[str], room: Sequence[str], *, room_sees_person: bool,
                  room_sees_all_asker_sees: bool = False) -> bool:
    """A reply composed for the asker may go to the room when every member may see everything the asker may (a
    room of one, or of one role), or when every member may see the person at all and the reply for the room would
    disclose no fewer fields than the asker's."""
    return room_sees_all_asker_sees or (room_sees_person and set(own) <= set(room))


def shown_beyond(shown: RolVelden, member: RolVelden) -> bool:
    """The room was shown fields (per group) this member may not see: the room is told once when they join."""
    return not shown <= member
