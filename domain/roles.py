"""The functions that may use the bot, named as the ZSM partners name them.

Roles belong to a function, never to a person's history (PRIVACY.md: an authorisation is not carried over
from a previous post), so the configuration maps each Matrix user to exactly one role.
"""

from __future__ import annotations

from typing import Final

ROLE_LABELS: Final[dict[str, str]] = {
    "ovj": "OvJ",
    "parketsecretaris": "parketsecretaris",
    "kpc": "KPC",
    "politie": "politie",
    "reclassering": "reclassering",
    "rvdk": "RvdK",
    "shn": "SHN",
    "halt": "Halt",
    "veiligheidshuis": "veiligheidshuis",
    "bereikbaarheidsdienst": "bereikbaarheidsdienst",
    "beheerder": "beheerder",
}

ROLES: Final[frozenset[str]] = frozenset(ROLE_LABELS)

# Roles that take or record the decision (PROCESS.md step 3/4): the OvJ decides, parketsecretaris and KPC process.
DECIDING_ROLES: Final[frozenset[str]] = frozenset({"ovj", "parketsecretaris", "kpc"})

# Roles at the afstemmingsoverleg that may see veiligheidshuis information. The police role does not unlock
# it (PROCESS.md step 1: the OM, not the police, looks up the dat-informatie).
VH_INFO_ROLES: Final[frozenset[str]] = frozenset({"ovj", "parketsecretaris", "kpc", "reclassering", "rvdk"})

EVERYONE: Final[frozenset[str]] = ROLES


def label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def labels(roles: frozenset[str] | set[str]) -> str:
    return ", ".join(label(r) for r in sorted(roles, key=list(ROLE_LABELS).index))
