"""Advice requests people can answer (issue 14, point 4): the case sketch, the case type, the identifier the house
may receive, an empty roster and the warnings before the term ends. Console bot with a FixedClock; the answer form
over a real aiohttp server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.transport.console import CONSOLE_ROOM
from domain.clock import AMSTERDAM
from services.messages import txn_id_for
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag
from storage.besluit_models import OutboxMail
from storage.models import AuditRecord, OutgoingMessage
from tests.test_aanvraag import BSN, DUTY, ONCALL, SKETCH, roster, rows, seed, start, svc, tick
from tests.test_aanvraag_web import link_of, web_bot

UNMARKED = "111222333"  # no veiligheidshuis has marked this suspect
HG = f"type: hg vh: utrecht {SKETCH}"


EXAMPLE = "feit: mishandeling partner, eerste melding voornemen: voorwaardelijk sepot"


async def test_every_bad_input_says_what_to_type(tmp_path: Path, sqlite_url: str) -> None:
    bot, _clock = await start(tmp_path, sqlite_url)
    try:
        await seed(bot)
        await roster(bot)
        said = {line: await bot.say(line, as_role="kpc") for line in (
            f"!aanvraag {BSN}",
            f"!aanvraag {BSN} feit: kort",
            f"!aanvraag {BSN} feit: mishandeling partner",
            f"!aanvraag {BSN} {SKETCH} type: hgg",
            f"!aanvraag {UNMARKED} {SKETCH}",
            f"!aanvraag {UNMARKED} {SKETCH} vh: utrecht",
            f"!aanvraag {UNMARKED} {SKETCH} vh: utrect type: hg",
            f"!aanvraag {UNMARKED} {SKETCH} vh: eemland type: hg",
        )}
        assert list(said.values()) == [
            f"Er ontbreekt een schets van de zaak. Schrijf erbij: {EXAMPLE}.",
            f"'feit:' is te kort; beschrijf het feit in een paar woorden, bijvoorbeeld: {EXAMPLE}.",
            "Er ontbreekt het voorgenomen besluit. Schrijf erbij: 'voornemen: <afdoening>', bijvoorbeeld voornemen: "
            "voorwaardelijk sepot.",
            "Onbekend zaaktype 'hgg'. Bedoelde u hg of ehg of egg? Schrijf 'type: <code>' met een van: hg (huiselijk "
            "geweld), ehg (ernstig huiselijk geweld), km (kindermishandeling), egg (eergerelateerd geweld), zeden "
            "(zedenzaak), stalking (belaging).",
            "BSN ******333 is bij geen veiligheidshuis bekend. Geef het veiligheidshuis en het zaaktype: "
            "'vh: <sleutel> type: <code>', bijvoorbeeld vh: utrecht type: hg.",
            "BSN ******333 is niet gemarkeerd door utrecht; advies op aanvraag kan dan alleen in een zaaktype dat dit "
            "veiligheidshuis prioritair heeft gemaakt: geef 'type: <code>', bijvoorbeeld type: hg.",
            "Veiligheidshuis 'utrect' is onbekend. Bedoelde u utrecht of twente?",
            "Advies op aanvraag kan niet: zaaktype hg (huiselijk geweld) is met eemland niet als prioritair "
            "afgesproken. Met eemland is niets als prioritair afgesproken. Gebruik !check voor het bestaande advies.",
        ]
        assert await rows(bot, AdviesAanvraag) == []  # nothing opened by any of them
    finally:
        await bot.close()


async def test_a_type_is_checked_also_for_a_person_eligible_by_doelgroep(tmp_path: Path, sqlite_url: str) -> None:
    bot, _clock = await start(tmp_path, sqlite_url)
    try:
        await seed(bot)  # marked by utrecht in doelgroep "huiselijk geweld", which utrecht prioritised
        reply = await bot.say(f"!aanvraag {BSN} {SKETCH} type: ehg", as_role="kpc")
        assert reply == ("Advies op aanvraag kan niet: zaaktype ehg (ernstig huiselijk geweld) is met utrecht niet als "
                         "prioritair afgesproken. Prioritair afgesproken met utrecht: doelgroep huiselijk geweld, "
                         "type: hg (huiselijk geweld). Gebruik !check voor het bestaande advies.")
        assert await rows(bot, AdviesAanvraag) == []
        opened = await bot.say(f"!aanvraag {BSN} {SKETCH} type: hg", as_role="kpc")
        assert opened.startswith("Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht")
        assert [r.zaaktype for r in await rows(bot, AdviesAanvraag)] == ["hg"]
    finally:
        await bot.close()


async def test_empty_roster_is_said_at_once_mailed_and_told_to_the_room(tmp_path: Path, sqlite_url: str) -> None:
    bot, _clock = await start(tmp_path, sqlite_url)
    try:
        await seed(bot)  # no !dienst: nobody on the roster
        reply = await bot.say(f"!aanvraag {BSN} {SKETCH}", as_role="kpc")
        own, ping = reply.split(f"[naar {ONCALL}] ")
        assert own.strip() == (
            "Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht voor BSN ******782 (huiselijk geweld).\n"
            "Termijn: uiterlijk 24-11-2026 10:00 (nog 1 d 0 u).\n"
            "Er staat nu niemand in het rooster van de bereikbaarheidsdienst van Veiligheidshuis regio Utrecht: de "
            "dienstruimte is gemeld dat niemand dienst heeft; de mail aan de centrale mailbox wacht in de outbox: mail "
            "staat uit in deze installatie (zie !outbox). Bel het veiligheidshuis, of laat het rooster vullen met "
            "!dienst utrecht <@gebruiker> <van> <tot>.\n"
            "Intrekken: !aanvraag intrekken A1. Overzicht: !aanvragen.")
        assert "gewaarschuwd" not in own
        assert ping.endswith(
            "Er is nu niemand ingeroosterd voor de bereikbaarheidsdienst. Wie dit leest: bevestig met !ack A1, "
            "antwoord met !advies A1 <code of geen> <tekst>, en vul het rooster met !dienst utrecht <@gebruiker> "
            "<van> <tot>.")
        [mail] = await rows(bot, OutboxMail)
        assert "Let op: er staat nu niemand in het rooster van uw bereikbaarheidsdienst." in (mail.body_text or "")
        audit = await rows(bot, AuditRecord, AuditRecord.kind == "aanvraag.ping")
        assert audit[0].details["dienst"] is None
    finally:
        await bot.close()


async def test_unmarked_suspect_with_type_hg_answered_through_the_form(tmp_path: Path, sqlite_url: str) -> None:
    """The on-call person, who cannot !check, sees in the ping and the form the identifier their house may receive
    (utrecht: BSN) and the case sketch, and answers with a coded afdoening."""
    bot, _clock, base = await web_bot(tmp_path, sqlite_url)
    try:
        reply = await bot.say(f"!aanvraag {UNMARKED} {HG}", as_role="kpc")
        own, ping = reply.split(f"[naar {ONCALL}] ")
        assert own.startswith("Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht voor BSN ******333 "
                              "(niet gemarkeerd; zaaktype huiselijk geweld).")
        assert f"De bereikbaarheidsdienst ({DUTY}) is gewaarschuwd in de dienstruimte" in own
        assert UNMARKED not in own  # the ZSM room sees the masked id only
        assert ping.startswith(f"Advies op aanvraag A1 over BSN {UNMARKED} (niet gemarkeerd; zaaktype huiselijk "
                               "geweld)\nTermijn: uiterlijk 24-11-2026 10:00 (Europe/Amsterdam).\n"
                               "Zaaktype: hg (huiselijk geweld)\nFeit: mishandeling partner in de woning\n"
                               "Voorgenomen besluit: voorwaardelijk sepot\n")
        [req] = await rows(bot, AdviesAanvraag)
        assert (req.zaaktype, req.bsn, req.person_value) == ("hg", UNMARKED, UNMARKED)
        link = link_of((await rows(bot, OutboxMail))[0])
        token = link.split("?t=", 1)[1]
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as r:
                page = await r.text()
            assert r.status == 200
            assert f'<dd id="persoon">BSN {UNMARKED}</dd>' in page
            assert '<dd class="schets">hg (huiselijk geweld)</dd>' in page
            assert '<dd class="schets">mishandeling partner in de woning</dd>' in page
            assert '<dd class="schets">voorwaardelijk sepot</dd>' in page
            async with http.post(f"{base}/aanvraag/1/antwoord", data={
                    "t": token, "naam": "Mw. Jansen", "afdoening": "", "advies": "Iets met reden."}) as r:
                assert r.status == 400 and "de geadviseerde afdoening (of &#39;geen&#39;)" in await r.text()
            async with http.post(f"{base}/aanvraag/1/antwoord", data={
                    "t": token, "naam": "Mw. Jansen", "afdoening": "xyz", "advies": "Iets met reden."}) as r:
                assert r.status == 409 and "Begin het advies met de code" in await r.text()
            async with http.post(f"{base}/aanvraag/1/antwoord", data={
                    "t": token, "naam": "Mw. Jansen", "afdoening": "vs",
                    "advies": "Voorwaardelijk sepot met hulpverlening; gezin is bij ons in beeld."}) as r:
                assert r.status == 200 and "Uw advies is doorgegeven" in await r.text()
        assert bot.runtime.sender
        await bot.runtime.sender.drain()
        out = bot.out.getvalue()
        assert "Advies ontvangen (A1)" in out and "Geadviseerde afdoening: Voorwaardelijk sepot (vs)." in out
        [req] = await rows(bot, AdviesAanvraag)
        assert req.state == "beantwoord" and req.answered_by == "webformulier: Mw. Jansen"
    finally:
        await bot.close()


async def test_warnings_before_the_term_ends_over_a_weekend(tmp_path: Path, sqlite_url: str) -> None:
    """Opened on Friday 27-11-2026 15:00 (Amsterdam) with a term of one working day. Hand calculation: the next
    working day is Monday 30-11, closing time 17:00, so the deadline is Mon 17:00; the span is Fri 15:00 -> Mon 17:00
    = 74 h. Default warnings: 75 % of 74 h = 55 h 30 min after opening = Sunday 29-11 22:30, and 60 minutes before
    the deadline = Monday 16:00. Each fires once, in the ZSM room, to the requester; none after an answer."""
    friday_15 = datetime(2026, 11, 27, 15, 0, tzinfo=AMSTERDAM).astimezone(UTC)
    bot, clock = await start(tmp_path, sqlite_url, when=friday_15)
    try:
        await seed(bot)
        await roster(bot, friday_15 - timedelta(hours=1))
        await bot.say(f"!aanvraag {BSN} 1wd {SKETCH}", as_role="kpc")
        steps = await rows(bot, AanvraagStap, AanvraagStap.kind.in_(["waarschuwing", "verlopen"]))
        assert [(s.kind, s.due_at.astimezone(AMSTERDAM).strftime("%a %d-%m %H:%M")) for s in steps] == [
            ("waarschuwing", "Sun 29-11 22:30"), ("waarschuwing", "Mon 30-11 16:00"), ("verlopen", "Mon 30-11 17:00")]
        await bot.say("!ack A1", as_user=DUTY)
        clock.set(datetime(2026, 11, 29, 22, 29, tzinfo=AMSTERDAM).astimezone(UTC))
        assert await tick(bot) == ""
        clock.advance(timedelta(minutes=1))
        first = await tick(bot)
        assert first == (
            "Termijn loopt af (A1): nog geen advies van Veiligheidshuis regio Utrecht over BSN ******782; de termijn "
            "eindigt 30-11-2026 17:00 (nog 18 u 30 min). De aanvraag is bevestigd door @jan.dienst:localhost.\n"
            "KPC: bewaak de termijn; komt er geen advies, dan beslist ZSM op tijd zonder.")
        assert await tick(bot) == ""  # once
        to_zsm = await rows(bot, OutgoingMessage, OutgoingMessage.txn_id == txn_id_for("aanvraag:1",
                                                                                       f"stap{steps[0].seq}"))
        assert [m.room_id for m in to_zsm] == [CONSOLE_ROOM]  # the requester's room, where the KPC sits
        assert to_zsm[0].in_reply_to == (await rows(bot, AdviesAanvraag))[0].event_id
        await bot.say("!advies A1 vs Voorwaardelijk sepot; plan van aanpak loopt.", as_user=DUTY)
        clock.set(datetime(2026, 11, 30, 16, 0, tzinfo=AMSTERDAM).astimezone(UTC))
        assert await tick(bot) == ""  # answered: the second warning lapses
        last = await rows(bot, AanvraagStap, AanvraagStap.kind == "waarschuwing")
        assert [s.outcome for s in last] == ["gedaan", "vervallen"]
    finally:
        await bot.close()


@pytest.mark.parametrize("value", ["0%", "100%", "abc", "0m"])
def test_bad_warning_setting_is_refused(value: str) -> None:
    from config.aanvraag import parse_config
    from domain.errors import ConfigError

    with pytest.raises(ConfigError, match=r"aanvraag\.waarschuwingen: verwacht een deel van de termijn"):
        parse_config({"waarschuwingen": [value]})


async def test_weekday_afternoon_warns_about_an_uncovered_weekend(tmp_path: Path, sqlite_url: str) -> None:
    """Friday 27-11-2026, roostercontrole 14:00 (default). The coming closed hours run from Friday 17:00 (closing)
    to Monday 30-11 08:30 (opening). Only Friday 17:00 -> Saturday 17:00 is on the roster, so the gap is Saturday
    17:00 -> Monday 08:30. The on-call room hears it once that day; before 14:00 and on the Saturday nothing."""
    friday_13_59 = datetime(2026, 11, 27, 13, 59, tzinfo=AMSTERDAM).astimezone(UTC)
    bot, clock = await start(tmp_path, sqlite_url, when=friday_13_59)
    try:
        service = svc(bot)
        reply = await bot.say(f"!dienst utrecht {DUTY} 27-11-2026 17:00 28-11-2026 17:00", as_role="kpc")
        assert "Dienst utrecht" in reply
        assert await service.roster_check(clock.now()) == 0  # not yet 14:00
        clock.advance(timedelta(minutes=1))
        assert await service.roster_check(clock.now()) == 1
        assert await tick(bot) == (
            f"[naar {ONCALL}] Rooster bereikbaarheidsdienst utrecht: niemand ingeroosterd van 28-11-2026 17:00 tot "
            "30-11-2026 08:30.\nZSM kan dan om advies op aanvraag vragen. Vul het rooster met !dienst utrecht "
            "<@gebruiker> <van> <tot>.")
        clock.advance(timedelta(minutes=30))
        assert await service.roster_check(clock.now()) == 0  # once a day
        service.roster_checked_on = None  # a restarted process: the message's transaction id still stops it
        assert await service.roster_check(clock.now()) == 0
        assert len(await rows(bot, AuditRecord, AuditRecord.kind == "rooster.gat")) == 1
        clock.advance(timedelta(days=1))  # Saturday: no working day
        assert await service.roster_check(clock.now()) == 0
    finally:
        await bot.close()


async def test_a_covered_night_gives_no_warning(tmp_path: Path, sqlite_url: str) -> None:
    monday_15 = datetime(2026, 11, 23, 15, 0, tzinfo=AMSTERDAM).astimezone(UTC)
    bot, clock = await start(tmp_path, sqlite_url, when=monday_15)
    try:
        await bot.say(f"!dienst utrecht {DUTY} 23-11-2026 16:00 24-11-2026 02:00", as_role="kpc")
        await bot.say(f"!dienst utrecht {DUTY} 24-11-2026 01:00 24-11-2026 09:00", as_role="kpc")
        assert await svc(bot).roster_check(clock.now()) == 0  # 17:00 -> 08:30 covered by two overlapping shifts
    finally:
        await bot.close()


def test_roster_gaps_rule() -> None:
    from domain.aanvraag import roster_gaps

    t = [datetime(2026, 11, 27, h, tzinfo=UTC) for h in range(24)]
    assert roster_gaps((t[10], t[20]), []) == [(t[10], t[20])]
    assert roster_gaps((t[10], t[20]), [(t[8], t[12]), (t[14], t[16]), (t[15], t[18])]) == [
        (t[12], t[14]), (t[18], t[20])]
    assert roster_gaps((t[10], t[20]), [(t[9], t[21])]) == []
