"""No feedback forgotten (issue 14, point 6): ``!werklijst``, its reminder and the feedback coverage, on a seeded
history worked out by hand.

Times are Amsterdam local time. The history (wacht_minuten 120, the default):
  15-10-2026 12:00  !check P3            -> known at utrecht
  20-11-2026 11:00  !check P1, !check U  -> P1 known at utrecht; U known nowhere (no arrival)
             11:30  !instroom P2 P4      -> P2 utrecht, P4 twente
             12:00  !check P5, !check P1 -> P5 known at utrecht AND twente; P1 a second time (still one person)
             12:30  !besluit P2 osb
             14:20  !besluit P1 osb, !besluit P3 osb
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.clock import AMSTERDAM, FixedClock
from domain.identifiers import parse_person_id
from services.messages import txn_id_for
from services.werklijst import WerklijstService
from storage.models import AuditRecord, OutgoingMessage
from storage.registry_queries import upsert
from tests.harness.config import user_for, write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn
from tests.smtp_helpers import SmtpServer, mail_section
from tests.test_aanvraag import rows
from tests.test_besluit import marking
from tests.test_rapport import clock

P1, P2, P3, P4, P5, U = (bsn(300 + i) for i in range(6))
ZSM_ROOM = "!zsm:localhost"
M = {p: parse_person_id(p).masked for p in (P1, P2, P3, P4, P5)}


def at(day: int, month: int, hh: int, mm: int) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=AMSTERDAM).astimezone(UTC)


@pytest.fixture
async def bot(tmp_path: Path, database_url: str, smtp: SmtpServer,
              cert: tuple[Path, Path]) -> AsyncIterator[ConsoleBot]:
    clock = FixedClock(at(15, 10, 12, 0))
    config = write_config(tmp_path, database_url, sections={"mail": mail_section(smtp.port, cert[0]),
                                                          "werklijst": {"ruimte": ZSM_ROOM}})
    b = await ConsoleBot.start(config, clock=clock)
    async with b.runtime.sessions() as s, s.begin():
        await upsert(s, [
            *(marking(p, born=date(1990, 1, 1), advised="osb") for p in (P1, P2, P3, P5)),
            marking(P4, born=date(1985, 3, 3), advised=None, vh="twente"),
            marking(P5, born=date(1990, 1, 1), advised=None, vh="twente"),
        ], clock.now())
    yield b
    await b.close()


async def history(bot: ConsoleBot, *, until: datetime) -> None:
    steps = [
        (at(15, 10, 12, 0), f"!check {P3}"), (at(20, 11, 11, 0), f"!check {P1}"), (at(20, 11, 11, 0), f"!check {U}"),
        (at(20, 11, 11, 30), f"!instroom {P2} {P4}"), (at(20, 11, 12, 0), f"!check {P5}"),
        (at(20, 11, 12, 0), f"!check {P1}"), (at(20, 11, 12, 30), f"!besluit {P2} osb"),
        (at(20, 11, 14, 20), f"!besluit {P1} osb"), (at(20, 11, 14, 20), f"!besluit {P3} osb"),
    ]
    for when, line in steps:
        if when > until:
            break
        clock(bot).set(when)
        reply = await bot.say(line, as_role="kpc")
        assert "Besluit vastgelegd" in reply or not line.startswith("!besluit"), reply


def werklijst(*lines: str, n: int) -> str:
    head = (f"Werklijst: {n} bekende perso{'on' if n == 1 else 'nen'} binnengekomen zonder besluit na 120 minuten, "
            "oudste eerst.")
    return "\n".join([head, *lines, "Leg het besluit vast met !besluit <id> <afdoening>; dan gaat de terugkoppeling."])


UT, TW = "Veiligheidshuis regio Utrecht", "Veiligheidshuis Twente"


async def test_werklijst_over_the_day(bot: ConsoleBot) -> None:
    await history(bot, until=at(20, 11, 12, 30))
    clock(bot).set(at(20, 11, 13, 15))
    # Waiting since before 11:15: P3 (15-10 12:00 CEST = 10:00 UTC; 20-11 13:15 CET = 12:15 UTC: 36 d 2 u 15 min,
    # shown as 36 d 2 u) and P1 (11:00, 2 u 15 min). P2 came in at 11:30 and has a decision anyway.
    assert await bot.say("!werklijst", as_role="kpc") == werklijst(
        f"• {M[P3]} · {UT} · binnen sinds 15-10-2026 12:00 (36 d 2 u)",
        f"• {M[P1]} · {UT} · binnen sinds 20-11-2026 11:00 (2 u 15 min)", n=2)
    clock(bot).set(at(20, 11, 14, 10))
    # Before 12:10: also P4 (11:30, twente) and P5 at both houses (12:00); one line per person and house; P1's
    # second check does not make it newer (its first arrival counts).
    assert await bot.say("!werklijst", as_role="kpc") == werklijst(
        f"• {M[P3]} · {UT} · binnen sinds 15-10-2026 12:00 (36 d 3 u)",
        f"• {M[P1]} · {UT} · binnen sinds 20-11-2026 11:00 (3 u 10 min)",
        f"• {M[P4]} · {TW} · binnen sinds 20-11-2026 11:30 (2 u 40 min)",
        f"• {M[P5]} · {TW} · binnen sinds 20-11-2026 12:00 (2 u 10 min)",
        f"• {M[P5]} · {UT} · binnen sinds 20-11-2026 12:00 (2 u 10 min)", n=5)
    await history(bot, until=at(20, 11, 14, 20))
    clock(bot).set(at(20, 11, 14, 30))
    # P1 and P3 decided at 14:20: off the list.
    assert await bot.say("!werklijst utrecht", as_role="kpc") == werklijst(
        f"• {M[P5]} · {UT} · binnen sinds 20-11-2026 12:00 (2 u 30 min)", n=1)
    everything = await bot.say("!werklijst", as_role="kpc")
    assert everything.startswith("Werklijst: 3 bekende personen") and M[P1] not in everything
    for p in (P1, P2, P3, P4, P5, U):
        assert p not in everything  # masked ids only
    audit = await rows(bot, AuditRecord, AuditRecord.kind == "werklijst.opgevraagd")
    assert [a.details["aantal"] for a in audit] == [2, 5, 1, 3] and all(a.subject is None for a in audit)


async def test_reminder_at_shift_change_once(bot: ConsoleBot) -> None:
    await history(bot, until=at(20, 11, 14, 20))
    svc: WerklijstService = bot.runtime.services.werklijst
    await bot.runtime.members_changed(ZSM_ROOM, frozenset({user_for("ovj"), user_for("kpc")}))  # the OM's room
    assert await svc.remind_due(at(20, 11, 15, 29)) is False  # last slot 07:30, more than an hour ago
    assert await svc.remind_due(at(20, 11, 15, 30)) is True
    assert await svc.remind_due(at(20, 11, 15, 45)) is False  # the same slot: once
    slot = at(20, 11, 15, 30)
    assert svc.last_slot(at(20, 11, 15, 45)) == slot
    sent = await rows(bot, OutgoingMessage, OutgoingMessage.txn_id == txn_id_for("werklijst", slot.isoformat()))
    assert len(sent) == 1 and sent[0].room_id == svc.room == ZSM_ROOM
    assert sent[0].content is not None and str(sent[0].content["body"]).startswith(
        "Herinnering werklijst: 3 bekende personen binnengekomen zonder besluit na 120 minuten, oudste eerst.")
    assert len(await rows(bot, AuditRecord, AuditRecord.kind == "werklijst.herinnering")) == 1


async def test_list_and_reminder_beside_the_police_name_no_house(bot: ConsoleBot) -> None:
    """The list names each person's house (dat-informatie): beside a politie member the reminder gives only the
    count and !werklijst goes to the asker's direct room."""
    from bot.transport.console import CONSOLE_ROOM

    await history(bot, until=at(20, 11, 14, 20))
    kpc, politie = user_for("kpc"), user_for("politie")
    await bot.runtime.members_changed(ZSM_ROOM, frozenset({kpc, politie}))
    svc: WerklijstService = bot.runtime.services.werklijst
    assert await svc.remind_due(at(20, 11, 15, 30)) is True
    [sent] = await rows(bot, OutgoingMessage, OutgoingMessage.room_id == ZSM_ROOM)
    assert sent.content is not None and sent.content["body"] == (
        "Herinnering werklijst: 3 bekende personen zonder besluit. Niet elk lid van deze room mag de lijst zien; "
        "een OvJ, parketsecretaris of KPC ziet hem met !werklijst.")
    await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({kpc, politie}))
    clock(bot).set(at(20, 11, 15, 30))
    out = await bot.say("!werklijst", as_role="kpc")
    room, direct = out.split("\n", 1)
    assert room == "Werklijst (3): de lijst staat in uw directe bericht van de bot."
    assert direct.startswith(f"[naar direct:{kpc}] Werklijst: 3 bekende personen") and UT in direct


async def test_bad_input_and_roles(bot: ConsoleBot) -> None:
    assert await bot.say("!werklijst utrech", as_role="kpc") == (
        "Veiligheidshuis 'utrech' is onbekend. Gebruik: !werklijst [veiligheidshuis], bijvoorbeeld !werklijst utrecht.")
    assert await bot.say("!werklijst utrecht twente", as_role="kpc") == (
        "Te veel woorden: 'twente' hoort niet bij dit commando. Gebruik: !werklijst [<veiligheidshuis>] — zie "
        "!help werklijst.")
    assert "niet gebruiken" in await bot.say("!werklijst", as_role="politie")
    assert await bot.say("!werklijst", as_role="kpc") == (
        "Werklijst: geen bekende personen zonder besluit (binnengekomen langer dan 120 minuten geleden).")


async def test_coverage_per_house_and_month_by_hand(bot: ConsoleBot) -> None:
    """2026-Q4 in month buckets. utrecht: P3 (Oct) fed back; P1, P2 fed back, P5 not (Nov): period 4 persons,
    3 fed back; October 1 of 1; November 3, of whom 2. twente: P4 and P5, neither fed back (no decision): 2, 0.
    All houses: P1..P5 = 5 persons (P5, known at two houses, once), 3 fed back; November 4 (P1, P2, P4, P5), 2."""
    from domain.rapport import parse_period
    from storage.rapport_queries import compute_rapport

    await history(bot, until=at(20, 11, 14, 20))
    keys = bot.runtime.services.veiligheidshuizen.keys()
    async with bot.runtime.sessions() as s:
        alle = await compute_rapport(s, parse_period("2026-Q4"), None, keys)
        utrecht = await compute_rapport(s, parse_period("2026-Q4"), "utrecht", keys)
    per = {k: (c.personen_bekend, c.personen_teruggekoppeld) for k, c in alle.per_vh}
    assert (per["utrecht"], per["twente"], per["eemland"]) == ((4, 3), (2, 0), (0, 0))
    assert (alle.totaal.personen_bekend, alle.totaal.personen_teruggekoppeld) == (5, 3)
    assert [(p.label, c.personen_bekend, c.personen_teruggekoppeld) for p, c in alle.reeks] == [
        ("2026-10", 1, 1), ("2026-11", 4, 2), ("2026-12", 0, 0)]
    assert [(p.label, c.personen_bekend, c.personen_teruggekoppeld) for p, c in utrecht.reeks] == [
        ("2026-10", 1, 1), ("2026-11", 3, 2), ("2026-12", 0, 0)]
    # and the chat: persons, not lookups (7 hits came from 5 persons), small counts masked
    clock(bot).set(at(20, 11, 15, 0))
    reply = await bot.say("!rapport 2026-Q4", as_role="kpc")
    assert "Bekende personen binnengekomen: 5; van hen teruggekoppeld: < 5." in reply


async def test_arrivals_are_purged_with_their_retention_and_removed_by_sepot_01(bot: ConsoleBot) -> None:
    from sqlalchemy import func, select

    from storage.purge import purge
    from storage.werklijst_models import Binnenkomst

    await history(bot, until=at(20, 11, 12, 0))
    async with bot.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Binnenkomst)) == 7  # P3, P1 x2, P2, P4, P5 x2
    reply = await bot.say(f"!besluit {P1} 01", as_role="ovj")
    assert "Technisch sepot 01" in reply
    async with bot.runtime.sessions() as s, s.begin():
        assert await s.scalar(select(func.count()).select_from(Binnenkomst)) == 5  # P1's two arrivals are gone
        # 400 days after 15-10-2026 12:00 only P3's arrival is older than the retention
        counts = await purge(s, bot.runtime.auditor, bot.runtime.settings.privacy.bewaren,
                             at(15, 10, 12, 0) + timedelta(days=400, minutes=1))
        assert counts["binnenkomsten"] == 1
