"""``[instroom]``: the ``POST /api/instroom`` endpoint of the http server (token, target room, batch size).

Without a token the endpoint is off: the parsed section is then ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.reader import ConfigReader
from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID

KEYS = ("token", "room", "max_batch")


@dataclass(frozen=True)
class InstroomSettings:
    token: str
    room: str
    max_batch: int = 50


def parse_instroom(r: ConfigReader) -> InstroomSettings | None:
    r.only(KEYS)
    token = r.text("token", "") or ""
    if not token:
        return None
    if len(token) < 16:
        raise ConfigError("instroom.token: te kort; gebruik minstens 16 willekeurige tekens")
    room = r.text("room", required=True)
    assert room is not None
    if not ROOM_ID.match(room):
        raise ConfigError(f"instroom.room: verwacht een room-id als !abc:example.nl, kreeg {room!r}")
    return InstroomSettings(token=token, room=room, max_batch=r.integer("max_batch", 50, minimum=1, maximum=1000))
