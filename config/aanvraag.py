"""``[aanvraag]`` and ``[aanvraag.vh.<sleutel>]``: working days, office hours, terms and escalation chains of
advies op aanvraag, parsed into ``domain.aanvraag.AanvraagConfig``.

Per veiligheidshuis the same settings may also come from ``aanvraag_*`` keys in veiligheidshuizen.toml (reference
data, loaded after the settings): ``with_veiligheidshuizen`` adds those, and ``[aanvraag.vh.<sleutel>]`` in the
bot configuration wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

from config.reader import ConfigReader, unknown
from domain.aanvraag import (
    DAY_NAMES,
    DEFAULT_AFTER_HOURS,
    DEFAULT_OFFICE,
    DEFAULT_WAARSCHUWINGEN,
    ZAAKTYPEN,
    AanvraagConfig,
    Chain,
    Term,
    TermError,
    VhAanvraag,
    WorkCalendar,
    parse_chain,
    parse_term,
    parse_waarschuwing,
)
from domain.errors import ConfigError
from domain.matrix_ids import ROOM_ID, USER_ID

VH_KEYS = ("doelgroepen", "zaaktypen", "termijn", "room", "teamleider", "escalatie_kantoor", "escalatie_buiten",
           "herhaal_minuten", "herhaal_aantal")
KEYS = ("werkdagen", "kantoortijden", "vrije_dagen", "termijn", "escalatie_kantoor", "escalatie_buiten",
        "herhaal_minuten", "herhaal_aantal", "te_laat_na_seconden", "tik_seconden", "link_sleutel", "basis_url",
        "waarschuwingen", "roostercontrole", "vh")
TABLES = ("vh",)
# Keys of an older version, when an advice request had its own relay; refused with an explanation.
OLD_MAIL_KEYS = ("mail_host", "mail_port", "mail_tls", "mail_van")
VH_PREFIX = "aanvraag_"  # the same per-VH keys in veiligheidshuizen.toml

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _chain(data: Mapping[str, Any], where: str, key: str, repeat_s: int, repeat_n: int) -> Chain | None:
    if key not in data:
        return None
    return Chain(parse_chain(data[key], f"{where}.{key}"), timedelta(minutes=repeat_s), repeat_n)


def _get_int(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = data.get(key, default)
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: verwacht een geheel getal, kreeg {value!r}") from None
    if out < 0:
        raise ConfigError(f"{where}.{key}: verwacht 0 of meer, kreeg {out}")
    return out


def _get_number(data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = data.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: verwacht een getal, kreeg {value!r}") from None


def _term(value: Any, where: str) -> Term:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: verwacht een termijn als \"24u\", kreeg {value!r}")
    try:
        return parse_term(value)
    except TermError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _vh_entry(key: str, data: Mapping[str, Any], where: str, prefix: str) -> VhAanvraag:
    def get(name: str) -> Any:
        return data.get(prefix + name)

    doel = get("doelgroepen") or []
    if not isinstance(doel, list) or not all(isinstance(d, str) and d.strip() for d in doel):
        raise ConfigError(f"{where}.{prefix}doelgroepen: verwacht een lijst met doelgroepen")
    types = get("zaaktypen") or []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ConfigError(f"{where}.{prefix}zaaktypen: verwacht een lijst zaaktypen als [\"hg\"]")
    for t in types:
        if t not in ZAAKTYPEN:
            raise ConfigError(f"{where}.{prefix}zaaktypen: onbekend zaaktype {t!r}; bekend: "
                              f"{', '.join(ZAAKTYPEN)}")
    room = get("room")
    if room is not None and (not isinstance(room, str) or not ROOM_ID.match(room)):
        raise ConfigError(f"{where}.{prefix}room: verwacht een room-id als !abc:example.nl, kreeg {room!r}")
    lead = get("teamleider")
    if lead is not None and (not isinstance(lead, str) or not USER_ID.match(lead)):
        raise ConfigError(f"{where}.{prefix}teamleider: verwacht een Matrix-id als @naam:example.nl, kreeg {lead!r}")
    rep_m = _get_int(data, prefix + "herhaal_minuten", where, 0)
    rep_n = _get_int(data, prefix + "herhaal_aantal", where, 0)
    return VhAanvraag(
        key=key, doelgroepen=tuple(d.strip() for d in doel), zaaktypen=tuple(types),
        term=_term(get("termijn"), f"{where}.{prefix}termijn") if get("termijn") is not None else None,
        room_id=room, teamleider=lead,
        office_chain=_chain(data, where, prefix + "escalatie_kantoor", rep_m, rep_n),
        after_hours_chain=_chain(data, where, prefix + "escalatie_buiten", rep_m, rep_n),
    )


def parse_aanvraag(r: ConfigReader) -> AanvraagConfig:
    """The ``[aanvraag]`` section with its ``[aanvraag.vh.<sleutel>]`` tables; every key is checked."""
    section = r.data
    where = "aanvraag"
    for old in OLD_MAIL_KEYS:
        if old in section:
            raise ConfigError(f"{where}.{old}: de mail van een adviesaanvraag gaat via de gewone mailinstellingen; "
                              "verwijder deze regel en zet de relay onder [mail]")
    r.only(KEYS)
    days_raw = section.get("werkdagen", ["ma", "di", "wo", "do", "vr"])
    if not isinstance(days_raw, list) or not all(isinstance(d, str) and d.lower()[:2] in DAY_NAMES for d in days_raw):
        raise ConfigError(f"{where}.werkdagen: verwacht een lijst als [\"ma\", \"di\", \"wo\", \"do\", \"vr\"]")
    hours = str(section.get("kantoortijden", "08:30-17:00"))
    m = _HHMM.match(hours)
    if not m or not (int(m.group(1)) < 24 and int(m.group(3)) < 24 and int(m.group(2)) < 60 and int(m.group(4)) < 60):
        raise ConfigError(f"{where}.kantoortijden: verwacht 'uu:mm-uu:mm' als \"08:30-17:00\", kreeg {hours!r}")
    opens, closes = time(int(m.group(1)), int(m.group(2))), time(int(m.group(3)), int(m.group(4)))
    if closes <= opens:
        raise ConfigError(f"{where}.kantoortijden: het einde moet na het begin liggen")
    closed_raw = section.get("vrije_dagen", [])
    try:
        closed = frozenset(date.fromisoformat(str(d)) for d in closed_raw)
    except ValueError:
        raise ConfigError(f"{where}.vrije_dagen: verwacht datums als \"2026-05-15\"") from None
    cal = WorkCalendar(frozenset(DAY_NAMES.index(d.lower()[:2]) for d in days_raw), opens, closes, closed)
    rep_m = _get_int(section, "herhaal_minuten", where, 0)
    rep_n = _get_int(section, "herhaal_aantal", where, 0)
    office = _chain(section, where, "escalatie_kantoor", rep_m, rep_n) or DEFAULT_OFFICE
    after = _chain(section, where, "escalatie_buiten", rep_m, rep_n) or DEFAULT_AFTER_HOURS
    warn_raw = section.get("waarschuwingen", None)
    if warn_raw is None:
        warnings = DEFAULT_WAARSCHUWINGEN
    elif isinstance(warn_raw, list):
        warnings = tuple(parse_waarschuwing(w, f"{where}.waarschuwingen") for w in warn_raw)
    else:
        raise ConfigError(f"{where}.waarschuwingen: verwacht een lijst als [\"75%\", \"60m\"] (of [] voor geen)")
    check_raw = str(section.get("roostercontrole", "14:00")).strip()
    if check_raw in ("", "uit"):
        roster_check: time | None = None
    else:
        hm = re.match(r"^(\d{1,2}):(\d{2})$", check_raw)
        if not hm or int(hm.group(1)) > 23 or int(hm.group(2)) > 59:
            raise ConfigError(f"{where}.roostercontrole: verwacht een tijd als \"14:00\" of \"uit\", kreeg "
                              f"{check_raw!r}")
        roster_check = time(int(hm.group(1)), int(hm.group(2)))
    vh_section = section.get("vh", {})
    if not isinstance(vh_section, dict):
        raise ConfigError(f"{where}.vh: verwacht secties [aanvraag.vh.<sleutel>]")
    per_vh: dict[str, VhAanvraag] = {}
    for key, data in vh_section.items():
        if not isinstance(data, dict):
            raise ConfigError(f"{where}.vh.{key}: verwacht een sectie")
        ConfigReader(data, f"{where}.vh.{key}").only(VH_KEYS)
        per_vh[key] = _vh_entry(key, data, f"{where}.vh.{key}", "")
    return AanvraagConfig(
        calendar=cal,
        default_term=_term(section.get("termijn", "24u"), f"{where}.termijn"),
        office_chain=office, after_hours_chain=after, per_vh=per_vh,
        link_key=str(section.get("link_sleutel", "")), base_url=str(section.get("basis_url", "")).rstrip("/"),
        tick_seconds=_get_number(section, "tik_seconden", where, AanvraagConfig.tick_seconds),
        late_after=timedelta(seconds=_get_int(section, "te_laat_na_seconden", where, 5)),
        waarschuwingen=warnings, roostercontrole=roster_check,
    )


def with_veiligheidshuizen(config: AanvraagConfig,
                           vh_extras: Iterable[tuple[str, Mapping[str, Any]]]) -> AanvraagConfig:
    """Adds the ``aanvraag_*`` keys of each veiligheidshuis in the reference data; ``[aanvraag.vh.<sleutel>]`` of
    the bot configuration wins for the same key."""
    from_reference: dict[str, VhAanvraag] = {}
    known = tuple(VH_PREFIX + k for k in VH_KEYS)
    for key, extra in vh_extras:
        ours = [k for k in extra if k.startswith(VH_PREFIX)]
        if not ours:
            continue
        for k in ours:
            if k not in known:
                raise unknown("sleutel", k, known, prefix=f"veiligheidshuizen.{key}.")
        from_reference[key] = _vh_entry(key, extra, f"veiligheidshuizen.{key}", VH_PREFIX)
    if not from_reference:
        return config
    return replace(config, per_vh={**from_reference, **config.per_vh})


def parse_config(section: Mapping[str, Any],
                 vh_extras: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> AanvraagConfig:
    """``[aanvraag]`` as a plain table plus the per-VH keys of the reference data, in one call."""
    return with_veiligheidshuizen(parse_aanvraag(ConfigReader(section, "aanvraag")), vh_extras)
