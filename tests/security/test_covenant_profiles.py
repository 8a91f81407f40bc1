"""Guarantees of the field matrix and the covenant profiles (PRIVACY.md):

- each role sees exactly the fields of its row in the matrix, checked against the reply text itself;
- a ``hit-no-hit`` veiligheidshuis shows known / which veiligheidshuis / contact, never the advice, unless its
  responsible person released it for this case; outside the bot's region only "known elsewhere" and the contact;
- a release is asked, given or refused only by the right people, holds for the asking room and a limited time,
  and every step is in the audit trail under the person's keyed hash.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import ConfigError, load_settings
from domain.clock import FixedClock
from domain.roles import ROLES
from domain.zichtbaarheid import DEFAULT_ROLE_FIELDS, FIELDS
from storage.models import AuditRecord
from tests.harness.config import (
    VEILIGHEIDSHUIZEN,
    VERANTWOORDELIJKE,
    VRIJGAVE_RUIMTE,
    strict_vh_block,
    user_for,
    write_config,
)
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW, bsn, markering, seed

ADVIES = "Voorwaardelijk sepot met meldplicht bij de regisseur."
# What each field puts in the reply, for the marking below (huishouden set, so that field shows too).
MARKERS: dict[str, str] = {
    "doelgroep": "Doelgroep: veelpleger",
    "status": "plan van aanpak actief",
    "advies": ADVIES,
    "geadviseerde_afdoening": "VWSEP",
    "advies_datum": "Adviesdatum: 01-04-2026",
    "regisseur": "J. de Regisseur",
    "huishouden": "huishouden/gezin",
}
ALL_USERS = {user_for(r): r for r in sorted(ROLES)} | {VERANTWOORDELIJKE: "veiligheidshuis"}


def strict_config(tmp_path: Path, database_url: str, *, regio_block: str = "Test",
                  sections: dict[str, dict[str, Any]] | None = None) -> Path:
    vh_file = tmp_path / "vh.toml"
    vh_file.write_text(VEILIGHEIDSHUIZEN.read_text(encoding="utf-8") + strict_vh_block(regio=regio_block),
                       encoding="utf-8")
    return write_config(tmp_path, database_url, users=ALL_USERS, sections={
        "referentie": {"veiligheidshuizen": str(vh_file)}, **(sections or {})})


async def start(path: Path) -> tuple[ConsoleBot, FixedClock]:
    clock = FixedClock(NOW)
    return await ConsoleBot.start(path, clock=clock), clock


# --------------------------------------------------------------------------------------------- the field matrix

@pytest.mark.parametrize("role", sorted(r for r, v in DEFAULT_ROLE_FIELDS.items() if v.meerderjarig))
async def test_each_role_sees_exactly_its_fields(tmp_path: Path, sqlite_url: str, role: str) -> None:
    bot, _ = await start(write_config(tmp_path, sqlite_url))
    try:
        person = bsn(40)
        await seed(bot, markering(person, huishouden=True))
        reply = await bot.say(f"!check {person}", as_role=role)
        expected = DEFAULT_ROLE_FIELDS[role].meerderjarig  # an adult; both groups: tests/test_roles_transcripts.py
        for name, marker in MARKERS.items():
            assert (marker in reply) == (name in expected), (role, name)
        assert "Veiligheidshuis regio Utrecht" in reply  # every VH role learns where to call
        async with bot.runtime.sessions() as s:
            rec = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.raadpleging"))).scalar_one()
        assert set(rec.details["velden"]) == {f for f in expected if f in MARKERS} | {"veiligheidshuis"}
    finally:
        await bot.close()


async def test_roles_without_vh_rights_see_nothing(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(write_config(tmp_path, sqlite_url))
    try:
        person = bsn(41)
        await seed(bot, markering(person))
        for role in sorted(ROLES - set(DEFAULT_ROLE_FIELDS)):
            reply = await bot.say(f"!check {person}", as_role=role)
            assert "Utrecht" not in reply and ADVIES not in reply, role
            assert "check" in reply.lower()  # a refusal that names what is missing, not silence
    finally:
        await bot.close()


async def test_configured_fields_narrow_a_role(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(write_config(tmp_path, sqlite_url, sections={
        "permissions.velden": {"kpc": ["veiligheidshuis", "regisseur"]}}))
    try:
        person = bsn(42)
        await seed(bot, markering(person))
        kpc = await bot.say(f"!check {person}", as_role="kpc")
        assert "J. de Regisseur" in kpc and ADVIES not in kpc and "veelpleger" not in kpc
        assert ADVIES in await bot.say(f"!check {person}", as_role="ovj")  # other roles keep their default
    finally:
        await bot.close()


@pytest.mark.parametrize(("velden", "message"), [
    ({"politie": ["veiligheidshuis"]}, "permissions.velden.politie: de rol politie mag geen informatie"),
    ({"kpc": ["diagnose"]}, "permissions.velden.kpc: onbekend veld 'diagnose'"),
    ({"agent": ["status"]}, "permissions.velden.agent: onbekende rol"),
    ({"kpc": "status"}, "permissions.velden.kpc: verwacht een lijst"),
])
def test_bad_field_matrix_is_refused(tmp_path: Path, velden: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={"permissions.velden": velden}))


def test_check_config_reports_an_unreachable_release_room_and_a_blind_role(tmp_path: Path) -> None:
    from cli.config_check import check

    problems, notes = check(load_settings(strict_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={
        "permissions.velden": {"rvdk": []}})))
    assert any(p.startswith("veiligheidshuizen.strikt.vrijgave_ruimte: staat niet in matrix.rooms") for p in problems)
    assert any(n.startswith("permissions.velden.rvdk: rol RvdK mag !check maar ziet geen") for n in notes)


def test_there_is_no_field_for_care_content() -> None:
    assert not {f for f in FIELDS if any(w in f for w in ("diagnose", "behandeling", "zorg"))}


# ------------------------------------------------------------------------------------------ covenant profiles

async def test_hit_no_hit_shows_known_and_contact_only(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(strict_config(tmp_path, sqlite_url))
    try:
        person = bsn(43)
        await seed(bot, markering(person, vh="strikt"), markering(person, vh="utrecht", advies="Utrechts advies."))
        reply = await bot.say(f"!check {person}", as_role="ovj")
        assert "Veiligheidshuis Strikt" in reply and "T. de Contact, 010-7654321" in reply
        assert ADVIES not in reply and "VWSEP" not in reply.split("Strikt")[1].split("Utrecht")[0]
        assert "Utrechts advies." in reply  # the generiek veiligheidshuis still shows its advice
        assert "!vraag-vrijgave" in reply
        signal = await bot.say(f"!instroom {person}", as_role="kpc")
        assert "Veiligheidshuis regio Utrecht (plan van aanpak actief; advies van 01-04-2026" in signal
        assert "Veiligheidshuis Strikt;" in signal or signal.rstrip().endswith("Veiligheidshuis Strikt")
        assert "Strikt (" not in signal  # no status or advice date for the strict one
    finally:
        await bot.close()


async def test_hit_no_hit_elsewhere_is_only_known_elsewhere(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(strict_config(tmp_path, sqlite_url, sections={"zsm": {"regio": "Oost-Nederland"}}))
    try:
        person = bsn(44)
        await seed(bot, markering(person, vh="strikt"), markering(person, vh="utrecht"))
        reply = await bot.say(f"!check {person}", as_role="ovj")
        assert "Veiligheidshuis in een andere regio" in reply and "bekend elders" in reply
        assert "Strikt" not in reply and "T. de Contact" in reply
        assert ADVIES in reply  # generiek elsewhere (Utrecht is in Midden-Nederland): shown in full (PRIVACY.md)
    finally:
        await bot.close()


async def test_unknown_region_and_incomplete_strict_profile_are_config_errors(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError, match=r"zsm\.regio: onbekende regio 'Atlantis'"):
        await ConsoleBot.start(strict_config(tmp_path, url, sections={"zsm": {"regio": "Atlantis"}}))
    with pytest.raises(ConfigError, match=r"privacy\.vrijgave_dagen: verwacht een aantal dagen van 1 tot en met 90"):
        await ConsoleBot.start(strict_config(tmp_path, url, sections={"privacy": {"vrijgave_dagen": 0}}))
    vh_file = tmp_path / "bad.toml"
    vh_file.write_text(VEILIGHEIDSHUIZEN.read_text(encoding="utf-8") + strict_vh_block().replace(
        f'verantwoordelijken = ["{VERANTWOORDELIJKE}"]', "verantwoordelijken = []"), encoding="utf-8")
    with pytest.raises(ConfigError, match="profiel hit-no-hit vraagt contact, verantwoordelijken"):
        await ConsoleBot.start(write_config(tmp_path, url, sections={
            "referentie": {"veiligheidshuizen": str(vh_file)}}))


# ----------------------------------------------------------------------------------------------- release per case

async def test_release_flow(tmp_path: Path, database_url: str) -> None:
    bot, clock = await start(strict_config(tmp_path, database_url))
    try:
        person = bsn(45)
        await seed(bot, markering(person, vh="strikt", geboortedatum=date(1990, 1, 1)))
        asked = await bot.say(f"!vraag-vrijgave {person} zaak: 10/1-26 reden: voorgeleiding", as_role="ovj")
        assert "verzoek V1 gestuurd" in asked and "T. de Contact" in asked
        assert f"[naar {VRIJGAVE_RUIMTE}] " in asked  # the ping went to the veiligheidshuis's room
        ping = asked.split(f"[naar {VRIJGAVE_RUIMTE}] ")[1]
        assert "Vrijgaveverzoek V1" in ping and person not in ping and ADVIES not in ping and "voorgeleiding" in ping
        assert "er loopt al een verzoek (V1)" in await bot.say(f"!vraag-vrijgave {person}", as_role="kpc")

        refused = await bot.say("!vrijgeven V1", as_role="veiligheidshuis")  # a VH user, but not the responsible one
        assert "Alleen de verantwoordelijke van Veiligheidshuis Strikt" in refused
        assert "geen vrijgavenummer" in await bot.say("!vrijgeven twaalf", as_user=VERANTWOORDELIJKE)
        assert "V99 bestaat niet" in await bot.say("!vrijgeven V99", as_user=VERANTWOORDELIJKE)
        assert ADVIES not in await bot.say(f"!check {person}", as_role="ovj")

        released = await bot.say("!vrijgeven V1 alleen voor deze zaak", as_user=VERANTWOORDELIJKE)
        assert "Advies vrijgegeven voor verzoek V1" in released and "ZSM is ingelicht" in released
        assert "al beantwoord (vrijgegeven)" in await bot.say("!weigeren V1 toch niet", as_user=VERANTWOORDELIJKE)

        seen = await bot.say(f"!check {person}", as_role="ovj")
        assert ADVIES in seen and f"vrijgegeven door {VERANTWOORDELIJKE}" in seen and "(V1)" in seen
        assert ADVIES not in await bot.say(f"!check {person}", as_role="reclassering")  # released to the OM only
        clock.advance(timedelta(days=8))
        assert ADVIES not in await bot.say(f"!check {person}", as_role="ovj")  # the release has expired

        await bot.say(f"!vraag-vrijgave {person}", as_role="ovj")
        assert "Er ontbreekt <reden>" in await bot.say("!weigeren V2", as_user=VERANTWOORDELIJKE)
        no = await bot.say("!weigeren V2 hulpverlening loopt; bel de regisseur", as_user=VERANTWOORDELIJKE)
        assert "Verzoek V2 geweigerd" in no
        assert ADVIES not in await bot.say(f"!check {person}", as_role="ovj")

        auditor = bot.runtime.auditor
        async with bot.runtime.sessions() as s:
            recs = (await s.execute(select(AuditRecord).where(AuditRecord.kind.like("vrijgave.%"))
                                    .order_by(AuditRecord.id))).scalars().all()
            await s.commit()
        assert [r.kind for r in recs] == ["vrijgave.gevraagd", "vrijgave.geweigerd_recht", "vrijgave.vrijgegeven",
                                          "vrijgave.gevraagd", "vrijgave.geweigerd"]
        subject = auditor.subject_of(person)
        assert all(r.subject == subject for r in recs if r.kind != "vrijgave.geweigerd_recht")
        assert all(person not in str(r.details) for r in recs)
    finally:
        await bot.close()


async def test_release_refusals(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(strict_config(tmp_path, sqlite_url))
    try:
        known_generiek, unknown = bsn(46), bsn(47)
        await seed(bot, markering(known_generiek, vh="utrecht"))
        assert "niet bekend" in await bot.say(f"!vraag-vrijgave {unknown}", as_role="ovj")
        assert "Geen vrijgave nodig" in await bot.say(f"!vraag-vrijgave {known_generiek}", as_role="ovj")
        assert "!vraag-vrijgave" in await bot.say(f"!vraag-vrijgave {known_generiek}", as_role="politie")
        assert "Er ontbreekt <id>" in await bot.say("!vraag-vrijgave", as_role="ovj")
        assert "elfproef" in (await bot.say("!vraag-vrijgave 123456789", as_role="ovj")).lower() or \
            "geen geldig" in (await bot.say("!vraag-vrijgave 123456789", as_role="ovj")).lower()
    finally:
        await bot.close()


# ------------------------------------------------------------------------------------------ need to know: direct

async def test_details_in_a_direct_room_leave_the_shared_room_only_a_notice(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start(write_config(tmp_path, sqlite_url, sections={"check": {"details_direct": True}}))
    try:
        person = bsn(48)
        await seed(bot, markering(person))
        out = await bot.say(f"!check {person}", as_role="ovj")
        shared, direct = out.split(f"[naar direct:{user_for('ovj')}] ")
        assert "staat in uw directe bericht" in shared and ADVIES not in shared and "Utrecht" not in shared
        assert ADVIES in direct and person not in out
        async with bot.runtime.sessions() as s:
            kinds = (await s.execute(select(AuditRecord.kind).order_by(AuditRecord.id))).scalars().all()
        commands = [k for k in kinds if k != "bericht.verzonden"]  # every sent message is audited too
        assert commands[-2:] == ["register.raadpleging", "bericht.direct"] and kinds.count("bericht.verzonden") == 2
    finally:
        await bot.close()
