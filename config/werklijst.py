"""``[werklijst]``: when a known person who came in counts as forgotten, and when the room is reminded.

The pilots fed back on 5.5% to 55% of the known suspects (pilot report L1125-1134); the KPC watched the suspect
monitor at each shift start (L1386-1400). ``wacht_minuten``: how long after coming in a person without a decision
appears on ``!werklijst``. ``herinneringen``: local times (Europe/Amsterdam) at which the bot posts the list in the
ZSM room (``ruimte``, default the first room of ``[matrix] rooms``), for instance at each shift change; [] for none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from config.reader import ConfigReader
from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID

KEYS = ("wacht_minuten", "herinneringen", "ruimte", "dienststart")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class WerklijstSettings:
    wacht_minuten: int = 120
    herinneringen: tuple[time, ...] = (time(7, 30), time(15, 30), time(23, 0))
    ruimte: str | None = None  # the ZSM room for the reminder; None: the first room in [matrix] rooms
    # veiligheidshuizen (keys) whose on-call room ([aanvraag] vh.<key>.room) gets, at the start of office hours, the
    # known clients who came in while it was closed; off (empty) by default
    dienststart: tuple[str, ...] = ()


def parse_werklijst(r: ConfigReader) -> WerklijstSettings:
    r.only(KEYS)
    wait = r.integer("wacht_minuten", 120, minimum=0, maximum=7 * 24 * 60)
    raw = r.data.get("herinneringen", ["07:30", "15:30", "23:00"])
    if not isinstance(raw, list):
        raise ConfigError("werklijst.herinneringen: verwacht een lijst tijden als [\"07:30\", \"15:30\"] (of [])")
    times: list[time] = []
    for value in raw:
        m = _HHMM.match(str(value).strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ConfigError(f"werklijst.herinneringen: verwacht tijden als \"07:30\", kreeg {value!r}")
        times.append(time(int(m.group(1)), int(m.group(2))))
    room = r.text("ruimte", None)
    if room is not None and not ROOM_ID.match(room):
        raise ConfigError(f"werklijst.ruimte: verwacht een room-id als !abc:example.nl, kreeg {room!r}")
    digest = r.data.get("dienststart", [])
    if not isinstance(digest, list) or not all(isinstance(k, str) and k.strip() for k in digest):
        raise ConfigError("werklijst.dienststart: verwacht een lijst veiligheidshuizen als [\"utrecht\"] (of [])")
    return WerklijstSettings(wacht_minuten=wait, herinneringen=tuple(sorted(set(times))), ruimte=room,
                             dienststart=tuple(dict.fromkeys(k.strip() for k in digest)))
