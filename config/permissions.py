"""``[users]``, ``[permissions]`` and ``[permissions.velden]``: who has which role, which roles may use a command,
and which fields of a veiligheidshuis's marking each role sees.

``[users]`` keys are Matrix ids and ``[permissions]`` keys command names: free-form maps, each key checked for
its shape here; whether a command name exists is said by ``zsm-bot check-config`` (the command table lives above
``config``).
"""

from __future__ import annotations

from collections.abc import Mapping

from config.reader import ConfigReader
from domain.errors import ConfigError
from domain.matrix_ids import USER_ID
from domain.roles import ROLES, VH_INFO_ROLES
from domain.zichtbaarheid import DEFAULT_ROLE_FIELDS, FIELDS, RolVelden


def parse_users(r: ConfigReader) -> dict[str, str]:
    users: dict[str, str] = {}
    for uid, role in r.data.items():
        if not USER_ID.match(uid):
            raise ConfigError(f"users: {uid!r} is geen Matrix-id; verwacht \"@naam:server\" = \"rol\"")
        if not isinstance(role, str) or role not in ROLES:
            raise ConfigError(f"users.\"{uid}\": onbekende rol {role!r}; kies uit {', '.join(sorted(ROLES))}")
        users[uid] = role
    return users


def parse_permissions(r: ConfigReader) -> dict[str, frozenset[str]]:
    """``<commando> = [rollen]``; the ``velden`` table is read by ``parse_role_fields``."""
    permissions: dict[str, frozenset[str]] = {}
    for command in r.data:
        if command == "velden":
            continue
        listed = r.texts(command, what="een rolnaam")
        unknown = [role for role in listed if role not in ROLES]
        if unknown:
            raise ConfigError(
                f"permissions.{command}: onbekende rol {unknown[0]!r}; kies uit {', '.join(sorted(ROLES))}"
            )
        permissions[command] = frozenset(listed)
    return permissions


def parse_role_fields(section: Mapping[str, object]) -> dict[str, RolVelden]:
    """``[permissions.velden]``: ``<rol> = [velden]`` replaces that role's default for adults and minors alike;
    ``<rol> = { meerderjarig = [velden], minderjarig = [velden] }`` sets each group (a group left out sees
    nothing). Other roles keep their default (reclassering: adults, RvdK: minors).

    A role outside VH_INFO_ROLES cannot be given a field: the police role does not unlock veiligheidshuis
    information (PROCESS.md), so such a line is a configuration error, not a silent no-op."""
    out = dict(DEFAULT_ROLE_FIELDS)
    for role, listed in section.items():
        where = f"permissions.velden.{role}"
        if role not in ROLES:
            raise ConfigError(f"{where}: onbekende rol; kies uit {', '.join(sorted(ROLES))}")
        if isinstance(listed, Mapping):
            unknown_group = [g for g in listed if g not in ("meerderjarig", "minderjarig")]
            if unknown_group:
                raise ConfigError(f"{where}.{unknown_group[0]}: onbekende groep; kies uit meerderjarig, minderjarig")
            out[role] = RolVelden(_field_list(f"{where}.meerderjarig", role, listed.get("meerderjarig", [])),
                                  _field_list(f"{where}.minderjarig", role, listed.get("minderjarig", [])))
        else:
            out[role] = RolVelden.beide(_field_list(where, role, listed))
    return out


def _field_list(where: str, role: str, listed: object) -> frozenset[str]:
    if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
        raise ConfigError(f"{where}: verwacht een lijst met velden, zoals [\"veiligheidshuis\", \"status\"]")
    unknown = [f for f in listed if f not in FIELDS]
    if unknown:
        raise ConfigError(f"{where}: onbekend veld {unknown[0]!r}; kies uit {', '.join(FIELDS)}")
    if listed and role not in VH_INFO_ROLES:
        raise ConfigError(f"{where}: de rol {role} mag geen informatie van veiligheidshuizen zien "
                          "(PRIVACY.md); laat de lijst leeg of verwijder de regel")
    return frozenset(listed)
