"""Shapes of Matrix identifiers, checked wherever configuration names a room or a user (one definition)."""

from __future__ import annotations

import re

USER_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:\d+)?$")
# Room version 12 ids have no server part (the id is a hash of the create event).
ROOM_ID = re.compile(r"^![A-Za-z0-9._=\-/+~]+(:[A-Za-z0-9.\-]+(:\d+)?)?$")

# A message target meaning "the encrypted direct room with this user" (need to know: details for the requester
# only). Commands address it without knowing Matrix; the Matrix transport finds or creates the room.
DIRECT_PREFIX = "direct:"


def direct_target(user_id: str) -> str:
    return DIRECT_PREFIX + user_id
