"""The shift-start digest (issue 14, point 6): at the start of a veiligheidshuis's office hours its on-call room gets
its known clients who came in while it was closed, with the identifier that house may receive. Off by default;
console bot with a FixedClock over a weekend.

By hand (Europe/Amsterdam; office hours Mon-Fri 08:30-17:00, the [aanvraag] defaults):
  Fri 27-11-2026 12:00  !check P1 (utrecht)          -> open hours: not in the digest
                 18:00  !check P2 (utrecht)          -> closed: in it
  Sat 28-11      03:00  !check P3 (twente only)      -> not utrecht's client
  Sun 29-11      20:00  !check P2 again, !check P4   -> P2 once (first at Fri 18:00), P4 in it
  Mon 30-11      08:29  still closed: nothing; 08:30 the digest (window Fri 17:00 -> Mon 08:30), once;
                 09:31  more than an hour after opening: nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.clock import AMSTERDAM, FixedClock
from domain.errors import ConfigError
from domain.identifiers import parse_person_id
from storage.models import AuditRecord, OutgoingMessage
from storage.registry_queries import upsert
from storage.werklijst_models import Binnenkomst
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn
from tests.test_aanvraag import rows
from tests.test_besluit import marking

P1, P2, P3, P4 = (bsn(400 + i) for i in range(4))
ONCALL = "!dienst-utrecht:localhost"


def at(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=AMSTERDAM).astimezone(UTC)


async def start(tmp_path: Path, db_url: str, werklijst: dict[str, Any]) -> tuple[ConsoleBot, FixedClock]:
    clock = FixedClock(at(27, 12, 0))
    config = write_config(tmp_path, db_url, sections={
        "aanvraag": {"tik_seconden": 0, "vh.utrecht.doelgroepen": ["huiselijk geweld"], "vh.utrecht.room": ONCALL},
        "werklijst": {"herinneringen": [], **werklijst}})
    bot = await ConsoleBot.start(config, clock=clock)
    async with bot.runtime.sessions() as s, s.begin():
        await upsert(s, [*(marking(p, born=date(1990, 1, 1), advised="osb") for p in (P1, P2, P4)),
                         marking(P3, born=date(1990, 1, 1), advised=None, vh="twente")], clock.now())
    return bot, clock


async def weekend(bot: ConsoleBot, clock: FixedClock) -> None:
    for when, person in ((at(27, 12, 0), P1), (at(27, 18, 0), P2), (at(28, 3, 0), P3), (at(29, 20, 0), P2),
                         (at(29, 20, 0), P4)):
        clock.set(when)
        assert "!check" not in await bot.say(f"!check {person}", as_role="ovj")


async def digest(bot: ConsoleBot, when: datetime) -> tuple[int, str]:
    clock = bot.runtime.clock
    assert isinstance(clock, FixedClock) and bot.runtime.sender is not None
    clock.set(when)
    before = bot.out.tell()
    count = await bot.runtime.werklijst.digest_due(when)
    await bot.runtime.sender.drain()
    bot.out.seek(before)
    out = bot.out.read()
    bot.out.seek(0, 2)
    return count, out.strip()


async def test_the_digest_at_the_start_of_office_hours(tmp_path: Path, database_url: str) -> None:
    bot, clock = await start(tmp_path, database_url, {"dienststart": ["utrecht"]})
    try:
        await weekend(bot, clock)
        assert await digest(bot, at(30, 8, 29)) == (0, "")
        count, posted = await digest(bot, at(30, 8, 30))
        assert count == 1
        assert posted == (
            f"[naar {ONCALL}] Dienststart: 2 bekende cliënt(en) van Veiligheidshuis regio Utrecht kwamen binnen bij "
            "ZSM terwijl het veiligheidshuis dicht was (27-11-2026 17:00 tot 30-11-2026 08:30).\n"
            f"• BSN {P2} · binnen 27-11-2026 18:00\n"
            f"• BSN {P4} · binnen 29-11-2026 20:00\n"
            "ZSM koppelt het besluit terug zodra het is vastgelegd.")
        assert await digest(bot, at(30, 8, 45)) == (0, "")  # once per house and day
        assert await digest(bot, at(30, 9, 31)) == (0, "")
        [audit] = await rows(bot, AuditRecord, AuditRecord.kind == "werklijst.dienststart")
        assert audit.details == {"veiligheidshuis": "utrecht", "aantal": 2, "ruimte": ONCALL}
        # the clear identifier is kept for the digest house only, never for another (twente: P3)
        kept = {(r.veiligheidshuis, r.identificatie) for r in await rows(bot, Binnenkomst)}
        assert ("twente", None) in kept and ("utrecht", f"BSN {P2}") in kept
        sent = await rows(bot, OutgoingMessage, OutgoingMessage.room_id == ONCALL)
        assert [m.carries_case_data for m in sent] == [True]
        assert sent[0].subject == bot.runtime.auditor.subject_of(P2)  # P4 via outgoing_subject: sepot 01 finds both
    finally:
        await bot.close()


async def test_off_by_default(tmp_path: Path, sqlite_url: str) -> None:
    bot, clock = await start(tmp_path, sqlite_url, {})
    try:
        await weekend(bot, clock)
        assert await digest(bot, at(30, 8, 30)) == (0, "")
        assert {r.identificatie for r in await rows(bot, Binnenkomst)} == {None}
        assert parse_person_id(P2).masked in {r.masked for r in await rows(bot, Binnenkomst)}
    finally:
        await bot.close()


@pytest.mark.parametrize(("value", "message"), [
    (["utrect"], "werklijst.dienststart: onbekend veiligheidshuis 'utrect'"),
    (["twente"], "werklijst.dienststart: twente heeft geen dienstruimte; zet [aanvraag] vh.twente.room"),
    ("utrecht", "werklijst.dienststart: verwacht een lijst veiligheidshuizen als [\"utrecht\"] (of [])"),
])
async def test_bad_settings_stop_the_start_with_one_line(tmp_path: Path, sqlite_url: str, value: Any,
                                                          message: str) -> None:
    with pytest.raises(ConfigError) as err:
        bot, _ = await start(tmp_path, sqlite_url, {"dienststart": value})
        await bot.close()
    assert str(err.value) == message
