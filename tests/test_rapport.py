"""The figures of issue 7 from a seeded history with answers worked out by hand, on SQLite and PostgreSQL.

Checks, decisions (with a replacement, an undo and a technisch sepot 01), a referral and the feedback mails are
produced by the real commands through the console bot and a real SMTP server; advice requests, escalations and
mail retries are inserted as facts (their engine is tested in test_aanvraag). The hand-made answers are in the
comments next to each action.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.main import main as cli_main
from domain.clock import FixedClock
from domain.rapport import Cijfers, buckets, export_row, median, p90, parse_period
from storage.models import AuditRecord
from storage.rapport_queries import compute_rapport
from storage.registry_queries import upsert
from storage.statistiek_models import Feit, StatistiekDag, StatistiekFeit, record_facts
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.markings import bsn
from tests.smtp_helpers import SmtpServer, mail_section
from tests.test_besluit import marking

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday in November, 11:00 in Amsterdam
NOV = parse_period("2026-11")
A = [bsn(100 + i) for i in range(6)]  # adults known at utrecht, advice osb (current)
MINOR = bsn(120)                      # minor known at utrecht, advice vs
T = bsn(130)                          # adult known at twente, no advice
U = bsn(140)                          # not known anywhere
U2 = bsn(141)


@pytest.fixture
async def bot(tmp_path: Path, database_url: str, smtp: SmtpServer,
              cert: tuple[Path, Path]) -> AsyncIterator[ConsoleBot]:
    config = write_config(tmp_path, database_url, sections={"mail": mail_section(smtp.port, cert[0])})
    b = await ConsoleBot.start(config, clock=FixedClock(START))
    async with b.runtime.sessions() as s, s.begin():
        await upsert(s, [
            *(marking(p, born=date(1990, 1, 1), advised="osb") for p in A),
            marking(MINOR, born=date(2011, 5, 5), advised="vs"),
            marking(T, born=date(1985, 3, 3), advised=None, vh="twente"),
        ], START)
    yield b
    await b.close()


def clock(bot: ConsoleBot) -> FixedClock:
    c = bot.runtime.clock
    assert isinstance(c, FixedClock)
    return c


async def seed_history(bot: ConsoleBot) -> None:
    say = bot.say
    for p in [*A, MINOR, T, U]:                      # 9 checks; hits utrecht 6 adult + 1 minor, twente 1
        assert "!check" not in await say(f"!check {p}", as_role="ovj")
    await say(f"!instroom {A[0]} {U2} {T}", as_role="kpc")  # 3 checks; hits utrecht 1 adult, twente 1
    for i, p in enumerate(A[:5]):                    # 5 x gevolgd at utrecht, 10 s apart
        clock(bot).set(START + timedelta(seconds=10 * i))
        assert "Besluit vastgelegd" in await say(f"!besluit {p} osb")
    clock(bot).set(START + timedelta(seconds=50))
    assert "Besluit vastgelegd" in await say(f"!besluit {A[5]} pr motivering: licht feit")  # afgeweken
    assert "Besluit vastgelegd" in await say(f"!besluit {MINOR} halt")  # minor + Halt (selection): vrijgesteld
    assert "Besluit vastgelegd" in await say(f"!besluit {T} osb")       # twente, no advice: geen_advies
    # A[0] replaced (gevolgd -> afgeweken), A[1] undone, A[2] technisch sepot 01: each takes its count back.
    assert "vervangt" in await say(f"!besluit {A[0]} vs motivering: eerder contact")
    assert "ongedaan" in await say(f"!besluit ongedaan {A[1]}")
    assert "Technisch sepot 01" in await say(f"!besluit {A[2]} 01")
    assert "Aangemeld" in await say(f"!aanmelden {U} Utrecht vermoeden van schulden")
    # All mails go at START+120 s: feedback for A0 (decided at +50), A3 (+30), A4 (+40), A5 (+50), MINOR (+50)
    # at utrecht, T (+50) at twente, and the referral (no decision).
    clock(bot).set(START + timedelta(seconds=120))
    assert bot.runtime.mail_worker is not None
    await bot.runtime.mail_worker.drain()
    # What the commands cannot produce here: advice requests, escalations, retried and dead mail, and facts on
    # both sides of the month's edges (Amsterdam midnight is 23:00 UTC in November).
    async with bot.runtime.sessions() as s, s.begin():
        await record_facts(s, [
            *(Feit("aanvraag_geopend", START, "utrecht") for _ in range(7)),
            *(Feit("aanvraag_bevestigd", START, "utrecht", duration_s=60.0) for _ in range(6)),
            *(Feit("aanvraag_beantwoord", START + timedelta(hours=h), "utrecht", outcome="op_tijd",
                   duration_s=3600.0 * h) for h in (1, 2, 3, 4, 5)),
            Feit("aanvraag_beantwoord", START + timedelta(days=2), "utrecht", outcome="te_laat", duration_s=172800.0),
            Feit("aanvraag_verlopen", START + timedelta(days=1), "utrecht"),
            *(Feit("escalatie", START, "utrecht", step=s) for s in ("herinnering",) * 3 + ("backup",) * 6),
            Feit("mail_herhaald", START, "twente", outcome="terugkoppeling"),
            Feit("mail_dood", START, "twente", outcome="terugkoppeling"),
            Feit("check", datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC)),   # 31 Oct 23:59:59 local: October
            Feit("check", datetime(2026, 10, 31, 23, 0, tzinfo=UTC)),        # 1 Nov 00:00 local: November
            Feit("check", datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC)),   # 30 Nov 23:59:59 local: November
            Feit("check", datetime(2026, 11, 30, 23, 0, tzinfo=UTC)),        # 1 Dec 00:00 local: December
        ])


# Persons, not lookups (issue 14), by hand. Known at utrecht and came in: A0 (checked twice: !check and !instroom,
# counted once), A1..A5 and MINOR; A2's technisch sepot 01 removes its arrival, so 6 persons. Of them a decision
# after coming in stands for A0 (the vs that replaced osb), A3, A4, A5 and MINOR; A1's decision was undone: 5 of 6.
# Twente: T (also checked twice) with its osb: 1 of 1. Total: 7 persons, 6 fed back (U and U2 are known nowhere).
UTRECHT = Cijfers(
    personen_bekend=6, personen_teruggekoppeld=5,
    hits_volwassen=7, hits_minderjarig=1,
    besluiten_bekend=5,                 # A0 (final: afgeweken), A3, A4, A5, MINOR
    advies_vrijgesteld=1,               # MINOR's Halt: a selection-stage decision, counted apart (not "no advice")
    terugkoppeling_afgeleverd=5,
    terugkoppeling_mediaan_s=70.0,      # sorted delays 70, 70, 70, 80, 90
    terugkoppeling_p90_s=90.0,          # nearest rank ceil(4.5) = 5th
    advies_gevolgd=2, advies_afgeweken=2, aanmeldingen=1,
    aanvragen_geopend=7, aanvragen_bevestigd=6, aanvragen_op_tijd=5, aanvragen_te_laat=1, aanvragen_verlopen=1,
    respons_mediaan_s=3.5 * 3600,       # 1, 2, 3, 4, 5 h and 48 h
    respons_p90_s=172800.0,
    escalaties=(("herinnering", 3), ("backup", 6)),
    mail_afgeleverd=6,                  # five feedback mails and the referral
)
TWENTE = Cijfers(personen_bekend=1, personen_teruggekoppeld=1,
                 hits_volwassen=2, besluiten_bekend=1, terugkoppeling_afgeleverd=1, mail_afgeleverd=1,
                 mail_herhaald=1, mail_dood=1)
TOTAL = Cijfers(
    checks=14,                          # 9 + 3 by command, 2 inserted inside November
    personen_bekend=7, personen_teruggekoppeld=6,
    hits_volwassen=9, hits_minderjarig=1, besluiten_bekend=6, terugkoppeling_afgeleverd=6, advies_vrijgesteld=1,
    terugkoppeling_mediaan_s=70.0, terugkoppeling_p90_s=90.0,  # 70, 70, 70, 70, 80, 90
    advies_gevolgd=2, advies_afgeweken=2, aanmeldingen=1, aanvragen_geopend=7, aanvragen_bevestigd=6,
    aanvragen_op_tijd=5, aanvragen_te_laat=1, aanvragen_verlopen=1, respons_mediaan_s=3.5 * 3600,
    respons_p90_s=172800.0, escalaties=(("herinnering", 3), ("backup", 6)), mail_afgeleverd=7, mail_herhaald=1,
    mail_dood=1,
)


async def rapport_of(bot: ConsoleBot, label: str, vh: str | None = None):  # type: ignore[no-untyped-def]
    async with bot.runtime.sessions() as s:
        return await compute_rapport(s, parse_period(label), vh, bot.runtime.services.veiligheidshuizen.keys())


async def test_figures_from_commands_and_facts(bot: ConsoleBot) -> None:
    await seed_history(bot)
    r = await rapport_of(bot, "2026-11")
    per_vh = dict(r.per_vh)
    assert per_vh["utrecht"] == UTRECHT
    assert per_vh["twente"] == TWENTE
    assert per_vh["eemland"] == Cijfers()
    assert [k for k, _ in r.per_vh] == bot.runtime.services.veiligheidshuizen.keys()
    assert r.totaal == TOTAL
    # Week buckets of November: 1 Nov (a Sunday) is W44 alone, the last bucket is W49 (30 Nov).
    assert [p.label for p, _ in r.reeks] == ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    by_label = {p.label: c for p, c in r.reeks}
    assert (by_label["2026-W44"].checks, by_label["2026-W49"].checks, by_label["2026-W47"].checks) == (1, 1, 12)
    assert by_label["2026-W47"].besluiten_bekend == 6
    # One veiligheidshuis: its own figures; lookups that found nobody belong to no house.
    only = await rapport_of(bot, "2026-11", "utrecht")
    assert only.totaal == UTRECHT and [k for k, _ in only.per_vh] == ["utrecht"]
    assert sum(c.checks for _, c in only.reeks) == 0
    # Month edges in Amsterdam time: one check in October, one in December.
    assert (await rapport_of(bot, "2026-10")).totaal.checks == 1
    assert (await rapport_of(bot, "2026-12")).totaal == Cijfers(checks=1)
    # A week: day buckets; the decisions fall on Friday 20 November.
    week = await rapport_of(bot, "2026-W47")
    assert [p.label for p, _ in week.reeks][4] == "2026-11-20"
    assert [c.besluiten_bekend for _, c in week.reeks] == [0, 0, 0, 0, 6, 0, 0]


async def test_fold_keeps_every_figure(bot: ConsoleBot) -> None:
    await seed_history(bot)
    before = [await rapport_of(bot, label, vh) for label in ("2026-11", "2026-W47", "2026-Q4", "2026-10")
              for vh in (None, "utrecht")]
    assert await bot.runtime.fold_now() > 0
    async with bot.runtime.sessions() as s:
        left = (await s.execute(select(func.count()).select_from(StatistiekFeit))).scalar_one()
        days = (await s.execute(select(func.count()).select_from(StatistiekDag))).scalar_one()
    assert (left, days > 0) == (0, True)
    after = [await rapport_of(bot, label, vh) for label in ("2026-11", "2026-W47", "2026-Q4", "2026-10")
             for vh in (None, "utrecht")]
    assert after == before
    # A fact arriving after the fold (a late correction) is added to the same day; a second fold folds only it.
    async with bot.runtime.sessions() as s, s.begin():
        await record_facts(s, [Feit("besluit_bekend", START, "utrecht", outcome="gevolgd", aantal=-1)])
    assert (await rapport_of(bot, "2026-11", "utrecht")).totaal.advies_gevolgd == 1
    assert await bot.runtime.fold_now() == 1
    assert (await rapport_of(bot, "2026-11", "utrecht")).totaal.advies_gevolgd == 1
    assert await bot.runtime.fold_now() == 0


async def test_chat_summary(bot: ConsoleBot) -> None:
    await seed_history(bot)
    clock(bot).set(START + timedelta(days=1))
    reply = await bot.say("!rapport", as_role="kpc")  # default: the current month
    assert "Rapport 2026-11" in reply and "alle veiligheidshuizen" in reply
    assert "Raadplegingen: 14;" in reply
    # persons, not lookups: 10 hits came from 7 persons, 6 of whom got a decision (see UTRECHT above)
    assert "Bekende personen binnengekomen: 7; van hen teruggekoppeld: 6 (86%)." in reply
    assert "treffers bij een veiligheidshuis: 10 (volwassen 9, minderjarig < 5)" in reply
    assert "Besluiten over bekende personen: 6; terugkoppeling afgeleverd: 6 (100%), na mediaan 1 min (p90 2 min)" \
        in reply
    assert ("Advies gevolgd: < 5; afgeweken (met motivering): < 5; vrijgesteld (technisch sepot, selectie "
            "minderjarige): < 5. Aanmeldingen: < 5.") in reply
    assert "7 geopend, 6 bevestigd, 5 op tijd en < 5 te laat beantwoord, < 5 verlopen" in reply
    assert "antwoord na mediaan 3 u 30 min (p90 2 d, 6 antwoorden)" in reply
    assert "Escalaties: herinnering < 5, backup 6." in reply
    assert "Mail: 7 afgeleverd, < 5 na herhaling, < 5 niet verzonden." in reply
    twente = await bot.say("!rapport 2026-11 twente", as_role="ovj")
    assert "Twente" in twente and "Raadplegingen" not in twente
    assert "terugkoppeling afgeleverd: < 5, na mediaan te weinig waarnemingen (p90 te weinig waarnemingen)" in twente
    assert "Besluiten over bekende personen: < 5" in twente
    either_order = await bot.say("!rapport twente 2026-11", as_role="beheerder")
    assert either_order == twente
    async with bot.runtime.sessions() as s:
        audits = (await s.execute(select(AuditRecord.details).where(AuditRecord.kind == "rapport.opgevraagd")
                                  .order_by(AuditRecord.id))).scalars().all()
    assert [(a["periode"], a["veiligheidshuis"]) for a in audits] == [
        ("2026-11", None), ("2026-11", "twente"), ("2026-11", "twente")]


async def test_chat_refusals(bot: ConsoleBot) -> None:
    assert "Typ een periode als" in await bot.say("!rapport 2026-13", as_role="kpc")
    assert "Bedoelde u: utrecht" in await bot.say("!rapport 2026-11 utrech", as_role="kpc")
    assert "één periode" in await bot.say("!rapport 2026-10 2026-11", as_role="kpc")
    assert "één veiligheidshuis" in await bot.say("!rapport utrecht twente", as_role="kpc")
    refused = await bot.say("!rapport", as_role="politie")
    assert "Rapport" not in refused
    async with bot.runtime.sessions() as s:
        n = (await s.execute(select(func.count()).where(AuditRecord.kind == "rapport.opgevraagd"))).scalar_one()
    assert n == 0


async def test_cli_csv_and_json(bot: ConsoleBot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await seed_history(bot)
    config = str(tmp_path / "zsm-bot.toml")
    capsys.readouterr()
    assert await asyncio.to_thread(cli_main, ["rapport", "--config", config, "--periode", "2026-11"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["veiligheidshuis"] for r in rows] == [*bot.runtime.services.veiligheidshuizen.keys(), "totaal"]
    by_vh = {r["veiligheidshuis"]: r for r in rows}
    assert (by_vh["utrecht"]["besluiten_bekend"], by_vh["utrecht"]["advies_gevolgd"]) == ("5", "< 5")
    assert (by_vh["utrecht"]["terugkoppeling_mediaan_s"], by_vh["twente"]["terugkoppeling_mediaan_s"]) == ("70", "")
    assert (by_vh["totaal"]["checks"], by_vh["totaal"]["escalatie_backup"], by_vh["eemland"]["checks"]) == \
        ("14", "6", "")  # a miss belongs to no house: only the total counts checks
    assert all(r["periode"] == "2026-11" for r in rows)
    assert await asyncio.to_thread(cli_main, ["rapport", "--config", config, "--periode", "2026-11", "--vh",
                                              "twente", "--formaat", "JSON"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["periode"] == "2026-11" and doc["veiligheidshuis"] == "twente"
    assert doc["totaal"] == export_row(TWENTE)
    assert doc["totaal"]["hits_volwassen"] == "< 5" and doc["totaal"]["terugkoppeling_p90_s"] is None
    assert doc["reeks"][0]["periode"] == "2026-W44" and list(doc["per_veiligheidshuis"]) == ["twente"]


@pytest.mark.parametrize(("args", "message"), [
    (["--periode", "2026-13"], "Typ een periode als"),
    (["--periode", "2026-11", "--formaat", "xml"], "kies csv of json"),
    (["--periode", "2026-11", "--vh", "utrech"], "Bedoelde u: utrecht"),
])
def test_cli_bad_input(tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str], args: list[str],
                       message: str) -> None:
    config = str(write_config(tmp_path, sqlite_url))
    assert cli_main(["rapport", "--config", config, *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


def test_buckets_and_percentiles() -> None:
    q = buckets(parse_period("2026-Q4"))
    assert [(b.label, b.start) for b in q] == [
        ("2026-10", datetime(2026, 9, 30, 22, tzinfo=UTC)), ("2026-11", datetime(2026, 10, 31, 23, tzinfo=UTC)),
        ("2026-12", datetime(2026, 11, 30, 23, tzinfo=UTC))]
    assert q[-1].end == parse_period("2026-Q4").end
    r = buckets(parse_period("2026-03-20..2026-04-02"))  # 14 days: weeks, clipped at both ends
    assert [b.label for b in r] == ["2026-W12", "2026-W13", "2026-W14"]
    assert (r[0].start, r[1].start) == (parse_period("2026-03-20..2026-03-20").start,
                                        parse_period("2026-W13").start)
    assert len(buckets(parse_period("2026-10-25..2026-10-25"))) == 1  # the 25-hour day of the clock change
    assert (median([1.0, 2.0, 3.0, 4.0]), median([5.0] * 5), p90([float(i) for i in range(1, 11)])) == \
        (None, 5.0, 9.0)
    assert (median([1.0, 2.0, 3.0, 4.0, 10.0, 11.0]), p90([1.0, 2.0, 3.0, 4.0, 5.0])) == (3.5, 5.0)


async def test_mail_worker_counts_retried_and_dead(bot: ConsoleBot, smtp: SmtpServer,
                                                   cert: tuple[Path, Path]) -> None:
    assert bot.runtime.mail_worker is not None
    worker = bot.runtime.mail_worker
    smtp.stop()
    await bot.say(f"!besluit {T} osb")                   # dies after max_pogingen (3) while the relay is down
    for _ in range(3):
        clock(bot).advance(timedelta(hours=1))
        await worker.drain()
    await bot.say(f"!besluit {A[0]} osb")                # fails once, then goes when the relay is back
    clock(bot).advance(timedelta(seconds=70))
    await worker.drain()
    back = SmtpServer(*cert, smtp.port).start()
    try:
        clock(bot).advance(timedelta(hours=1))
        await worker.drain()
        assert len(back.collector.received) == 1
    finally:
        back.stop()
        smtp.start()
    c = dict((await rapport_of(bot, "2026-11")).per_vh)
    assert (c["utrecht"].mail_afgeleverd, c["utrecht"].mail_herhaald, c["utrecht"].terugkoppeling_afgeleverd) == \
        (1, 1, 1)
    assert (c["twente"].mail_afgeleverd, c["twente"].mail_herhaald, c["twente"].mail_dood) == (0, 0, 1)


async def test_advice_requests_counted_by_the_engine(tmp_path: Path, database_url: str) -> None:
    from tests import test_aanvraag as av

    bot, at = await av.start(tmp_path, database_url)
    try:
        await av.seed(bot)
        await av.seed(bot, av.OTHER_BSN)
        await av.roster(bot)
        await av.open_request(bot)                          # A1 at Monday 10:00
        at.advance(timedelta(minutes=60))
        assert "Herinnering" in await av.tick(bot)           # escalation 1: herinnering
        at.advance(timedelta(minutes=60))
        assert "achterwacht" in await av.tick(bot)           # escalation 2: backup
        at.advance(timedelta(minutes=10))
        await bot.say("!ack A1", as_user=av.DUTY)           # acknowledged
        at.advance(timedelta(minutes=20))
        assert "Advies" in await bot.say("!advies A1 geen Geen bezwaar tegen sepot, plan loopt goed.", as_user=av.DUTY)
        await bot.say(f"!aanvraag {av.OTHER_BSN} {av.SKETCH}", as_role="kpc")  # A2 at 12:30, never answered
        at.advance(timedelta(hours=25))
        await av.tick(bot)                                   # A2: herinnering, backup, teamleider, then expired
        r = await rapport_of(bot, "2026-W48", "utrecht")
        async with bot.runtime.sessions() as s:
            answered = (await s.execute(select(StatistiekFeit.duration_s).where(
                StatistiekFeit.kind == "aanvraag_beantwoord"))).scalars().all()
    finally:
        await bot.close()
    c = r.totaal
    assert (c.aanvragen_geopend, c.aanvragen_bevestigd, c.aanvragen_op_tijd, c.aanvragen_te_laat,
            c.aanvragen_verlopen) == (2, 1, 1, 0, 1)
    assert c.escalaties == (("herinnering", 2), ("backup", 2), ("teamleider", 1))
    assert c.respons_mediaan_s is None  # one answer (150 minutes) is too few to show
    assert answered == [150 * 60.0]
