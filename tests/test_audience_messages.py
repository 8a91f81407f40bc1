"""The room's audience for the other messages with case data: ``!instroom``, the API's instroom signal, the
``!advies`` answer to an advice request and the release notices (vrijgave). Each is shown in the room only as far
as every reader may see it; otherwise the room reads a notice with the masked id and the requester the answer in
the bot's direct room (console: ``[naar direct:<user>]``)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import aiohttp

from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from config.settings import load_settings
from domain.clock import FixedClock
from storage.registry_queries import upsert
from tests.harness.config import VERANTWOORDELIJKE, user_for, write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import NOW, bsn, markering, seed, start_bot
from tests.security.test_covenant_profiles import start as start_strict
from tests.security.test_covenant_profiles import strict_config
from tests.test_aanvraag import BSN, DUTY, open_request, roster, tick
from tests.test_aanvraag import seed as seed_aanvraag
from tests.test_aanvraag import start as start_aanvraag

OVJ, KPC, POLITIE, RECLASSERING = (user_for(r) for r in ("ovj", "kpc", "politie", "reclassering"))
SIGNAL_ROOM = "!instroom:localhost"
TOKEN = "test-instroom-token-0123456789"


async def test_instroom_with_a_police_member_goes_direct(tmp_path: Path, database_url: str) -> None:
    bot = await start_bot(tmp_path, database_url)
    try:
        await seed(bot, markering(bsn(90)))
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, POLITIE}))
        out = await bot.say(f"!instroom {bsn(90)} {bsn(91)}", as_role="ovj")
        room, direct = out.split("\n", 1)
        assert room == "Antwoord op !instroom (2 nummers) staat in uw directe bericht van de bot."
        assert direct.startswith(f"[naar direct:{OVJ}] Instroom: 1 van 2 bekend") and "Utrecht" in direct
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, KPC}))
        shown = await bot.say(f"!instroom {bsn(90)}", as_role="ovj")
        assert shown.startswith("Instroom: 1 van 1 bekend") and "[naar direct" not in shown
    finally:
        await bot.close()


async def _signal(tmp_path: Path, database_url: str, members: frozenset[str]) -> str:
    config = write_config(tmp_path, database_url, sections={
        "http": {"enabled": True, "port": 0}, "instroom": {"token": TOKEN, "room": SIGNAL_ROOM}})
    runtime = Runtime(load_settings(config), clock=FixedClock(NOW))
    out = io.StringIO()
    await runtime.start(ConsoleTransport(out))
    try:
        await runtime.members_changed(SIGNAL_ROOM, members)
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [markering(bsn(92)), markering(bsn(93), geboortedatum=date(2011, 1, 1))], NOW)
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{runtime.http_port}/api/instroom", json={"ids": [bsn(92), bsn(93), bsn(94)],
                                                                        "bron": "BOSZ"},
                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
        assert runtime.sender is not None
        await runtime.sender.drain()
        return out.getvalue().strip()
    finally:
        await runtime.close()


async def test_the_signal_shows_only_a_count_where_someone_may_see_nothing(tmp_path: Path,
                                                                          database_url: str) -> None:
    posted = await _signal(tmp_path, database_url, frozenset({OVJ, POLITIE}))
    assert posted == (f"[naar {SIGNAL_ROOM}] Instroomsignaal van BOSZ: 3 nummer(s) gecontroleerd. Niet elk lid van "
                      "deze room mag de uitkomst zien; een OvJ, parketsecretaris of KPC ziet die met !instroom <id> "
                      "....")


async def test_the_signal_for_the_om_shows_who_is_known(tmp_path: Path, database_url: str) -> None:
    posted = await _signal(tmp_path, database_url, frozenset({OVJ, KPC}))
    assert posted.startswith(f"[naar {SIGNAL_ROOM}] Instroomsignaal van BOSZ: 2 van 3 bekend")


async def test_the_signal_with_reclassering_hides_a_known_minor(tmp_path: Path, database_url: str) -> None:
    posted = await _signal(tmp_path, database_url, frozenset({OVJ, RECLASSERING}))
    assert "3 nummer(s) gecontroleerd" in posted and "bekend" not in posted


async def test_an_advies_answer_goes_direct_when_the_police_read_the_room(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed_aanvraag(bot)
        await roster(bot)
        await open_request(bot)
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, POLITIE}))
        advice = "Voorwaardelijk sepot met verplichte hulpverlening; plan loopt."
        out = await bot.say(f"!advies A1 vs {advice}", as_user=DUTY)
        masked = "******" + BSN[-3:]
        lines = out.split("\n")
        assert f"Advies A1 over BSN {masked} staat in het directe bericht van de bot aan {KPC}." in lines
        direct = out.split(f"[naar direct:{KPC}] ", 1)[1]
        assert direct.startswith("Advies ontvangen (A1)") and advice in direct
        assert advice not in out.split(f"[naar direct:{KPC}] ", 1)[0]
    finally:
        await bot.close()


async def test_a_release_notice_goes_direct_when_a_member_may_not_see_advice(tmp_path: Path,
                                                                            database_url: str) -> None:
    bot, _ = await start_strict(strict_config(tmp_path, database_url))
    try:
        person = bsn(95)
        await seed(bot, markering(person, vh="strikt"))
        await bot.say(f"!vraag-vrijgave {person} reden: voorgeleiding", as_role="ovj")
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, "@bezoeker:localhost"}))
        out = await bot.say("!vrijgeven V1", as_user=VERANTWOORDELIJKE)
        masked = "******" + person[-3:]
        assert f"Vrijgave V1 over BSN {masked} staat in het directe bericht van de bot aan {OVJ}." in out
        assert f"[naar direct:{OVJ}] Vrijgave V1: het advies over BSN {masked} is vrijgegeven" in out
    finally:
        await bot.close()


async def test_a_release_notice_in_a_room_of_the_om(tmp_path: Path, database_url: str) -> None:
    bot: ConsoleBot
    bot, _ = await start_strict(strict_config(tmp_path, database_url))
    try:
        person = bsn(96)
        await seed(bot, markering(person, vh="strikt"))
        await bot.say(f"!vraag-vrijgave {person} reden: voorgeleiding", as_role="ovj")
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, KPC}))
        out = await bot.say("!weigeren V1 hulpverlening loopt", as_user=VERANTWOORDELIJKE)
        assert "Vrijgave V1: het veiligheidshuis geeft het advies" in out and "[naar direct" not in out
    finally:
        await bot.close()


async def test_a_released_advice_stays_out_of_a_room_with_reclassering(tmp_path: Path, database_url: str) -> None:
    """A release is for the OM: beside reclassering (which may read an adult's advice of a generiek house) the
    released advice of a hit-no-hit house goes to the OvJ's direct room only."""
    bot, _ = await start_strict(strict_config(tmp_path, database_url))
    try:
        person = bsn(97)
        await seed(bot, markering(person, vh="strikt"))
        await bot.say(f"!vraag-vrijgave {person} reden: voorgeleiding", as_role="ovj")
        await bot.say("!vrijgeven V1", as_user=VERANTWOORDELIJKE)
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, RECLASSERING}))
        out = await bot.say(f"!check {person}", as_role="ovj")
        room, direct = out.split("\n", 1)
        assert room == f"Antwoord op !check BSN ******{person[-3:]} staat in uw directe bericht van de bot."
        assert direct.startswith(f"[naar direct:{OVJ}]") and "Advies: Voorwaardelijk sepot" in direct
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, KPC}))
        om_room = await bot.say(f"!check {person}", as_role="ovj")
        assert "Advies: Voorwaardelijk sepot" in om_room and "[naar direct" not in om_room
    finally:
        await bot.close()


async def test_a_decision_confirmation_goes_direct_when_the_police_read_the_room(tmp_path: Path,
                                                                                 database_url: str) -> None:
    """The ``!besluit`` confirmation says where the person is known and whether the advice was followed: beside a
    politie member the room reads only that it went direct, the officer the full confirmation."""
    bot = await start_bot(tmp_path, database_url)
    try:
        person = bsn(98)
        masked = "******" + person[-3:]
        await seed(bot, markering(person, geadviseerde_afdoening="vs"))
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, POLITIE}))
        refused = await bot.say(f"!besluit {person} osb", as_role="ovj")  # deviates: the refusal names no house
        assert refused == ("Dit wijkt af van een actueel advies van een veiligheidshuis; niet elk lid van deze room "
                           "mag zien welk (!check toont het u in een direct bericht). Voeg een motivering toe: "
                           "'motivering: <reden van afwijken>'.")
        out = await bot.say(f"!besluit {person} vs", as_role="ovj")
        room, direct = out.split("\n", 1)
        assert room == (f"Besluit voor BSN {masked} vastgelegd; de bevestiging staat in uw directe bericht van de "
                        "bot.")
        assert direct.startswith(f"[naar direct:{OVJ}] Besluit vastgelegd voor BSN {masked}")
        assert "Advies van het veiligheidshuis: gevolgd." in direct and "Utrecht" in direct
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, KPC}))
        again = await bot.say(f"!besluit {person} vs zaak: 2", as_role="ovj")
        assert again.startswith(f"Besluit vastgelegd voor BSN {masked}") and "[naar direct" not in again
    finally:
        await bot.close()


async def test_a_decision_on_an_unknown_person_beside_the_police_says_nothing_of_the_houses(
        tmp_path: Path, database_url: str) -> None:
    """"Not known to any house" is dat-informatie too: the police do not read it in the room."""
    bot = await start_bot(tmp_path, database_url)
    try:
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({OVJ, POLITIE}))
        out = await bot.say(f"!besluit {bsn(99)} osb", as_role="ovj")
        room, direct = out.split("\n", 1)
        assert room == (f"Besluit voor BSN ******{bsn(99)[-3:]} vastgelegd; de bevestiging staat in uw directe "
                        "bericht van de bot.")
        assert direct.startswith(f"[naar direct:{OVJ}] Besluit vastgelegd")
    finally:
        await bot.close()


async def test_term_warnings_and_expiry_go_direct_when_the_police_read_the_room(tmp_path: Path,
                                                                                 sqlite_url: str) -> None:
    """The warning before the term ends and the expiry name the house and the masked person: beside a politie
    member the room reads a notice, the requester (KPC) the text in the direct room."""
    bot, clock = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed_aanvraag(bot)
        await roster(bot)
        await open_request(bot)  # Monday 10:00, term 24 h: warnings 18 h (75 %) and 23 h after, expiry at 24 h
        await bot.say("!ack A1", as_user=DUTY)  # no escalations in the on-call room
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, POLITIE}))
        masked = "******" + BSN[-3:]
        clock.advance(timedelta(hours=18))
        warned = await tick(bot)
        room, direct = warned.split("\n", 1)
        assert room == (f"Waarschuwing over aanvraag A1 over BSN {masked} staat in het directe bericht van de bot aan "
                        f"{KPC}.")
        assert direct.startswith(f"[naar direct:{KPC}] Termijn loopt af (A1): nog geen advies van Veiligheidshuis "
                                 f"regio Utrecht over BSN {masked}")
        clock.advance(timedelta(hours=6))
        expired = await tick(bot)
        assert (f"Verlopen aanvraag A1 over BSN {masked} staat in het directe bericht van de bot aan {KPC}."
                in expired.split("\n"))
        assert (f"[naar direct:{KPC}] Termijn verstreken (A1): Veiligheidshuis regio Utrecht heeft geen advies"
                in expired)
        assert not any("Utrecht" in line for line in expired.split("\n") if not line.startswith("[naar direct"))
    finally:
        await bot.close()


async def test_an_advice_request_confirmation_goes_direct_when_the_police_read_the_room(tmp_path: Path,
                                                                                        sqlite_url: str) -> None:
    """"Aanvraag A1 verstuurd naar <house> voor <masked> (<doelgroep>)" tells where the person is known and in which
    target group: beside a politie member the room reads only that it went, the KPC the rest in the direct room."""
    bot, _ = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed_aanvraag(bot)
        await roster(bot)
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, POLITIE}))
        out = await open_request(bot)
        masked = "******" + BSN[-3:]
        lines = out.split("\n")
        assert lines[0] == (f"Aanvraag A1 voor BSN {masked} is verstuurd; de details staan in uw directe bericht van "
                            "de bot.")
        assert f"[naar direct:{KPC}] Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht voor BSN {masked} " \
               "(huiselijk geweld)." in lines
        assert not any("huiselijk geweld" in line for line in lines if line.startswith("Aanvraag A1 voor"))
    finally:
        await bot.close()


async def test_an_advice_request_refusal_beside_the_police_names_no_house(tmp_path: Path, sqlite_url: str) -> None:
    """"valt bij utrecht onder doelgroep 'veelpleger'" and "bij geen veiligheidshuis bekend" are dat-informatie:
    beside a politie member the refusal says where to look instead."""
    bot, _ = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed_aanvraag(bot, doelgroep="veelpleger")
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, POLITIE}))
        sketch = "feit: mishandeling partner in de woning voornemen: voorwaardelijk sepot"
        said = [await bot.say(f"!aanvraag {p} {sketch}", as_role="kpc") for p in (BSN, "111222333")]
        assert said == [f"Advies op aanvraag voor BSN ******{p[-3:]} kan zo niet; niet elk lid van deze room mag zien "
                        "waarom. !check toont u in een direct bericht waar de persoon bekend is; geef dan 'vh: "
                        "<sleutel> type: <code>'." for p in (BSN, "111222333")]
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, OVJ}))
        assert "valt bij utrecht onder doelgroep 'veelpleger'" in await bot.say(f"!aanvraag {BSN} {sketch}",
                                                                                as_role="kpc")
    finally:
        await bot.close()


async def test_the_list_of_advice_requests_goes_direct_beside_the_police(tmp_path: Path, sqlite_url: str) -> None:
    bot, _ = await start_aanvraag(tmp_path, sqlite_url)
    try:
        await seed_aanvraag(bot)
        await roster(bot)
        await open_request(bot)
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, POLITIE}))
        out = await bot.say("!aanvragen", as_role="kpc")
        room, direct = out.split("\n", 1)
        assert room == "Open aanvragen (1): de lijst staat in uw directe bericht van de bot."
        assert direct.startswith(f"[naar direct:{KPC}] Open aanvragen (1), meest dringend eerst")
        assert "utrecht" in direct and "utrecht" not in room
        await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({KPC, OVJ}))
        assert (await bot.say("!aanvragen", as_role="kpc")).startswith("Open aanvragen (1), meest dringend eerst")
    finally:
        await bot.close()
