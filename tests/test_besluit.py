"""!besluit, !aanmelden and !outbox against a real SMTP server (aiosmtpd, STARTTLS, test certificate)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.mail import parse_mail_settings
from config.reference import load_afdoeningen
from domain.advies import Markering
from domain.afdoeningen import Kennis, feedback_for
from domain.clock import FixedClock
from domain.errors import ConfigError
from services import mail_outbox
from storage.besluit_models import BesluitRow, OutboxMail
from storage.models import AuditRecord
from storage.registry_queries import upsert
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.smtp_helpers import SmtpServer, free_port, mail_section, make_cert

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADULT = "123456782"
MINOR = "999999990"
UNKNOWN = "111222333"
UTRECHT = "terugkoppeling@vh-utrecht.example"


def marking(bsn: str, *, born: date, advised: str | None = None, advies_datum: date = date(2026, 10, 1),
            vh: str = "utrecht") -> Markering:
    return Markering(bsn=bsn, skn=None, geboortedatum=born, veiligheidshuis=vh, doelgroep="veelpleger",
                     status="actief", advies="plan van aanpak loopt", geadviseerde_afdoening=advised,
                     advies_datum=advies_datum, regisseur="R. Regisseur")


async def start_bot(tmp_path: Path, db_url: str, port: int, cert: Path, markings: list[Markering],
                    **mail: Any) -> ConsoleBot:
    clock = FixedClock(START)
    bot = await ConsoleBot.start(write_config(tmp_path, db_url, sections={"mail": mail_section(port, cert, **mail)}),
                                 clock=clock)
    async with bot.runtime.sessions() as s, s.begin():
        await upsert(s, markings, START)
    return bot


@pytest.fixture
async def bot(tmp_path: Path, database_url: str, smtp: SmtpServer,
              cert: tuple[Path, Path]) -> AsyncIterator[ConsoleBot]:
    b = await start_bot(tmp_path, database_url, smtp.port, cert[0], [
        marking(ADULT, born=date(1990, 1, 1), advised="osb"),
        marking(MINOR, born=date(2011, 5, 5), advised="vs"),
    ])
    yield b
    await b.close()


def clock_of(bot: ConsoleBot) -> FixedClock:
    clock = bot.runtime.clock
    assert isinstance(clock, FixedClock)
    return clock


async def deliver(bot: ConsoleBot, *, advance_s: float = 70) -> str:
    """Let the undo window pass, run the mail worker and the room queue; returns what the room saw."""
    clock_of(bot).advance(timedelta(seconds=advance_s))
    before = bot.out.tell()
    assert bot.runtime.mail_worker and bot.runtime.sender
    await bot.runtime.mail_worker.drain()
    await bot.runtime.sender.drain()
    bot.out.seek(before)
    seen = bot.out.read()
    return seen


async def outbox_rows(bot: ConsoleBot) -> list[OutboxMail]:
    async with bot.runtime.sessions() as s:
        return list((await s.execute(select(OutboxMail).order_by(OutboxMail.id))).scalars())


def plain(received: Any) -> str:
    part = next(p for p in received.message.walk() if p.get_content_type() == "text/plain")
    return str(part.get_payload(decode=True).decode())


def html_part(received: Any) -> str:
    part = next(p for p in received.message.walk() if p.get_content_type() == "text/html")
    return str(part.get_payload(decode=True).decode())


# ---------------------------------------------------------------------------------------------- pure rules

def test_rules_each_case() -> None:
    cat = load_afdoeningen()
    for code in ("sepot01", "sepot02", "vs", "osb", "tom", "pr", "rc", "halt", "reprimande", "raadsonderzoek",
                 "reclasseringsadvies", "backoffice"):
        assert cat.get(code) is not None, code
    adult = Kennis("utrecht", False, "osb", True)
    minor = Kennis("twente", True, "vs", True)
    one = feedback_for(cat.get("01"), [adult])  # type: ignore[arg-type]
    assert (one.ontvangers, one.inhoud, one.verwijderen) == ((), "geen", True)
    two = feedback_for(cat.get("02"), [adult], motivering="geen bewijs")  # type: ignore[arg-type]
    assert (two.ontvangers, two.inhoud) == (("utrecht",), "beperkt")
    halt = feedback_for(cat.get("halt"), [minor])  # type: ignore[arg-type]
    assert (halt.ontvangers, halt.inhoud, halt.weigering) == (("twente",), "volledig", None)
    unknown = feedback_for(cat.get("osb"), [])  # type: ignore[arg-type]
    assert (unknown.ontvangers, unknown.inhoud) == ((), "geen")
    referred = feedback_for(cat.get("osb"), [], aangemeld_bij=["eemland"])  # type: ignore[arg-type]
    assert referred.ontvangers == ("eemland",)
    deviate = feedback_for(cat.get("pr"), [adult])  # type: ignore[arg-type]
    assert deviate.weigering and "motivering:" in deviate.weigering
    old = feedback_for(cat.get("pr"), [Kennis("utrecht", False, "osb", False)])  # type: ignore[arg-type]
    assert old.weigering is None and old.inhoud == "volledig"
    assert cat.nearest("osbb")[0] == "osb"


def test_mail_config_refuses_plaintext_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        parse_mail_settings({"tls": "geen", "onversleuteld_toestaan": True, "host": "smtp.om.example"}, tmp_path)
    with pytest.raises(ConfigError, match="onversleuteld_toestaan"):
        parse_mail_settings({"tls": "geen", "host": "127.0.0.1"}, tmp_path)
    ok = parse_mail_settings({"tls": "geen", "onversleuteld_toestaan": True, "host": "127.0.0.1"}, tmp_path)
    assert ok.tls == "geen"
    assert parse_mail_settings({}, tmp_path).tls == "starttls"


# ---------------------------------------------------------------------------------------------- the room

async def test_known_adult_gets_feedback_over_starttls(tmp_path: Path, database_url: str, smtp: SmtpServer,
                                                       cert: tuple[Path, Path]) -> None:
    bot = await start_bot(tmp_path, database_url, smtp.port, cert[0], [marking(ADULT, born=date(1990, 1, 1),
                                                                               advised="osb")])
    try:
        reply = await bot.say(f"!besluit {ADULT} osb reclassering", as_role="kpc", event_id="$besluit1")
        assert "Besluit vastgelegd" in reply and "******782" in reply and ADULT not in reply
        assert "T-" in reply
        early = await deliver(bot, advance_s=0)
        assert smtp.collector.received == [] and "verzonden" not in early  # undo window still open
        seen = await deliver(bot)
        assert len(smtp.collector.received) == 1
        got = smtp.collector.received[0]
        assert got.rcpt == [UTRECHT]
        assert str(got.message["Subject"]).startswith("[ZSM-terugkoppeling] T-")
        assert str(got.message["Message-ID"]).startswith("<zsm-") and "@om.example>" in str(got.message["Message-ID"])
        text = plain(got)
        assert "OM-strafbeschikking" in text and "Reclassering om een rapport gevraagd: ja" in text
        assert "VERTROUWELIJK" in text and "VERTROUWELIJK" in html_part(got)
        assert "plan van aanpak" not in text  # no advice text in a mail
        assert all(p.get_content_maintype() in ("text", "multipart") for p in got.message.walk())
        assert not any(p.get_filename() for p in got.message.walk())
        assert f"terugkoppeling verzonden aan {UTRECHT}" in seen
        rows = await outbox_rows(bot)
        assert rows[0].status == "sent" and rows[0].body_text is None  # content not kept after sending
        await deliver(bot)
        assert len(smtp.collector.received) == 1
    finally:
        await bot.close()


async def test_the_last_acceptances_are_recorded_without_waiting_out_the_gather_window(
        bot: ConsoleBot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Acceptances are gathered for a moment before they are committed together; once the round's last mail is
    accepted nothing more can come, and waiting out the window only delays the record and the room's notice."""
    monkeypatch.setattr(mail_outbox, "RECORD_GATHER_S", 600.0)
    await bot.say(f"!besluit {ADULT} osb", as_role="kpc")
    async with asyncio.timeout(30):  # with the whole window waited out this would take ten minutes
        seen = await deliver(bot)
    assert len(smtp.collector.received) == 1 and "verzonden aan" in seen
    assert [m.status for m in await outbox_rows(bot)] == ["sent"]


async def test_mail_notice_goes_direct_when_the_police_read_the_room(bot: ConsoleBot, smtp: SmtpServer) -> None:
    """"Terugkoppeling verzonden aan <mailbox> (<house>)" tells where the person is known: beside a politie member
    the room reads the mail's reference only, the officer who decided the full notice in the direct room."""
    from bot.transport.console import CONSOLE_ROOM
    from tests.harness.config import user_for

    ovj = user_for("ovj")
    await bot.runtime.members_changed(CONSOLE_ROOM, frozenset({ovj, user_for("politie")}))
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj", event_id="$besluit-politie")
    seen = await deliver(bot)
    assert len(smtp.collector.received) == 1
    [ref] = [r.ref for r in await outbox_rows(bot)]
    lines = seen.strip().split("\n")
    assert f"Melding over mail {ref} staat in het directe bericht van de bot aan {ovj}." in lines
    assert f"[naar direct:{ovj}] terugkoppeling verzonden aan {UTRECHT} (utrecht, {ref})" in lines
    assert not any("utrecht" in line for line in lines if not line.startswith("[naar direct"))


async def test_other_sepot_is_limited(bot: ConsoleBot, smtp: SmtpServer) -> None:
    await bot.say(f"!besluit {ADULT} 02 motivering: bewijs ontbreekt", as_role="ovj")
    await deliver(bot)
    text = plain(smtp.collector.received[0])
    assert "binnengekomen bij ZSM; de zaak is geseponeerd" in text
    assert "bewijs ontbreekt" not in text and "Beslissing:" not in text


async def test_sepot_01_removes_everything_and_sends_nothing(bot: ConsoleBot, smtp: SmtpServer) -> None:
    await bot.say(f"!besluit {ADULT} osb zaak: 2026-77", as_role="ovj")
    assert len(await outbox_rows(bot)) == 1
    reply = await bot.say(f"!besluit {ADULT} 01 zaak: 2026-77", as_role="ovj")
    assert "geen terugkoppeling" in reply and "1 eerdere vastlegging(en) en 1 mail(s)" in reply
    await deliver(bot)
    assert smtp.collector.received == []
    assert await outbox_rows(bot) == []
    async with bot.runtime.sessions() as s:
        assert (await s.execute(select(BesluitRow))).first() is None
        removal = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "zaak.verwijderd"))).scalar_one()
    assert removal.subject is None and set(removal.details) == {"reden", "berichten", "verwijderd"}
    assert removal.details["berichten"] == 1, "the earlier decision's confirmation is queued for redaction"


async def test_known_minor_halt_is_fed_back_without_motivation(bot: ConsoleBot, smtp: SmtpServer) -> None:
    reply = await bot.say(f"!besluit {MINOR} halt", as_role="ovj")
    assert "minderjarige" in reply
    await deliver(bot)
    assert len(smtp.collector.received) == 1 and "Halt" in plain(smtp.collector.received[0])


async def test_unknown_person_no_feedback_unless_referred(bot: ConsoleBot, smtp: SmtpServer) -> None:
    reply = await bot.say(f"!besluit {UNKNOWN} osb", as_role="ovj")
    assert "geen terugkoppeling" in reply
    await deliver(bot)
    assert smtp.collector.received == []
    ref = await bot.say(f"!aanmelden {UNKNOWN} wijk bij duurstede vermoeden van schulden", as_role="kpc")
    assert "Aangemeld" in ref and "Veiligheidshuis regio Utrecht" in ref
    await bot.say(f"!besluit {UNKNOWN} tom", as_role="ovj")
    await deliver(bot)
    subjects = sorted(str(r.message["Subject"]).split("]")[0] for r in smtp.collector.received)
    assert subjects == ["[ZSM-aanmelding", "[ZSM-terugkoppeling"]
    assert all(r.rcpt == [UTRECHT] for r in smtp.collector.received)
    aanmelding = next(r for r in smtp.collector.received if "aanmelding" in str(r.message["Subject"]))
    assert "vermoeden van schulden" in plain(aanmelding) and "Wijk bij Duurstede" in plain(aanmelding)


async def test_aanmelden_bad_input(bot: ConsoleBot) -> None:
    reply = await bot.say(f"!aanmelden {UNKNOWN} Utrech zorgen", as_role="kpc")
    assert "niet bekend" in reply and "Utrecht" in reply
    assert "reden" in await bot.say(f"!aanmelden {UNKNOWN} Utrecht", as_role="kpc")
    assert "elfproef" in await bot.say("!aanmelden 123456789 Utrecht zorgen", as_role="kpc")


async def test_deviation_needs_motivation(bot: ConsoleBot, smtp: SmtpServer) -> None:
    refused = await bot.say(f"!besluit {ADULT} pr", as_role="ovj")
    assert "motivering:" in refused and "osb" in refused
    assert await outbox_rows(bot) == []
    ok = await bot.say(f"!besluit {ADULT} pr motivering: ernstig feit, eerder geweld", as_role="ovj")
    assert "Besluit vastgelegd" in ok
    await deliver(bot)
    assert "ernstig feit, eerder geweld" in plain(smtp.collector.received[0])
    assert "motivering" in await bot.say(f"!besluit {ADULT} pr motivering:", as_role="ovj")


async def test_old_advice_needs_no_motivation(tmp_path: Path, sqlite_url: str, smtp: SmtpServer,
                                              cert: tuple[Path, Path]) -> None:
    bot = await start_bot(tmp_path, sqlite_url, smtp.port, cert[0],
                          [marking(ADULT, born=date(1990, 1, 1), advised="osb", advies_datum=date(2025, 6, 1))])
    try:
        assert "Besluit vastgelegd" in await bot.say(f"!besluit {ADULT} pr", as_role="ovj")
    finally:
        await bot.close()


async def test_correction_after_sending_is_marked(bot: ConsoleBot, smtp: SmtpServer) -> None:
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    await deliver(bot)
    reply = await bot.say(f"!besluit {ADULT} vs motivering: toch voorwaardelijk", as_role="ovj")
    assert "vervangt het eerdere besluit" in reply and "CORRECTIE" in reply
    await deliver(bot)
    assert len(smtp.collector.received) == 2
    second = smtp.collector.received[1]
    assert "CORRECTIE" in str(second.message["Subject"]) and plain(second).startswith("CORRECTIE")
    assert len(set(smtp.collector.message_ids())) == 2


async def test_second_decision_before_sending_replaces_queued_mail(bot: ConsoleBot, smtp: SmtpServer) -> None:
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    reply = await bot.say(f"!besluit {ADULT} osb reclassering", as_role="ovj")
    assert "1 nog niet verzonden mail(s) vervallen" in reply
    await deliver(bot)
    assert len(smtp.collector.received) == 1
    assert "CORRECTIE" not in str(smtp.collector.received[0].message["Subject"])
    assert "gevraagd: ja" in plain(smtp.collector.received[0])


async def test_undo_only_before_mail_went(bot: ConsoleBot, smtp: SmtpServer) -> None:
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    assert "ongedaan gemaakt" in await bot.say(f"!besluit ongedaan {ADULT}", as_role="ovj")
    await deliver(bot)
    assert smtp.collector.received == []
    assert "geen besluit" in await bot.say(f"!besluit ongedaan {ADULT}", as_role="ovj")
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    await deliver(bot)
    refused = await bot.say(f"!besluit ongedaan {ADULT}", as_role="ovj")
    assert "al verzonden" in refused and "correctie" in refused


async def test_mondeling_records_without_mail(bot: ConsoleBot, smtp: SmtpServer) -> None:
    reply = await bot.say(f"!besluit {ADULT} osb mondeling", as_role="ovj")
    assert "Mondeling teruggekoppeld" in reply
    await deliver(bot)
    assert smtp.collector.received == []
    async with bot.runtime.sessions() as s:
        row = (await s.execute(select(BesluitRow))).scalar_one()
    assert row.mondeling


async def test_refusals(bot: ConsoleBot) -> None:
    unknown = await bot.say(f"!besluit {ADULT} osbb", as_role="ovj")
    assert "Onbekende afdoening" in unknown and "osb" in unknown
    assert "Bedoelde u 'reclassering'" in await bot.say(f"!besluit {ADULT} osb reclasering", as_role="ovj")
    assert "elfproef" in await bot.say("!besluit 123456789 osb", as_role="ovj")
    assert "afdoening" in await bot.say(f"!besluit {ADULT}", as_role="ovj")
    police = await bot.say(f"!besluit {ADULT} osb", as_role="politie")
    assert "Besluit vastgelegd" not in police
    assert await outbox_rows(bot) == []
    help_text = await bot.say("!help besluit", as_role="ovj")
    assert "!besluit 123456782 osb" in help_text


async def test_zaak_too_long_is_refused_not_cut(bot: ConsoleBot) -> None:
    """One zaak rule (domain.zaak): a 65-character case reference is refused in Dutch and nothing is recorded;
    before, !besluit cut it to 64 characters silently, so two cases could share a decision."""
    long_zaak = "Z" * 65
    reply = await bot.say(f"!besluit {ADULT} osb zaak: {long_zaak}", as_role="ovj")
    assert "Het zaaknummer is te lang (maximaal 64 tekens)." in reply and "Besluit vastgelegd" not in reply
    undo = await bot.say(f"!besluit ongedaan {ADULT} zaak: {long_zaak}", as_role="ovj")
    assert "Het zaaknummer is te lang (maximaal 64 tekens)." in undo
    assert await outbox_rows(bot) == []
    async with bot.runtime.sessions() as s:
        assert (await s.execute(select(BesluitRow))).first() is None
        assert (await s.execute(select(AuditRecord).where(AuditRecord.kind == "besluit.vastgelegd"))).first() is None
    ok = await bot.say(f"!besluit {ADULT} osb zaak: {long_zaak[:64]}", as_role="ovj")
    assert f"(zaak {long_zaak[:64]})" in ok


# ---------------------------------------------------------------------------------------------- SMTP faults

async def test_smtp_down_then_back_each_mail_once(bot: ConsoleBot, smtp: SmtpServer,
                                                  cert: tuple[Path, Path]) -> None:
    smtp.stop()
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    await bot.say(f"!besluit {MINOR} halt", as_role="ovj")
    await deliver(bot)
    rows = await outbox_rows(bot)
    assert [r.attempts for r in rows] == [1, 1] and all(r.status == "pending" for r in rows)
    listing = await bot.say("!outbox", as_role="kpc")
    assert "2 mail(s) niet verzonden" in listing and "relay niet bereikbaar" in listing
    back = SmtpServer(*cert, smtp.port).start()
    try:
        await deliver(bot, advance_s=0.5)  # backoff not over: nothing yet
        assert back.collector.received == []
        await deliver(bot, advance_s=2)
        await deliver(bot, advance_s=60)
        assert len(back.collector.received) == 2 and len(set(back.collector.message_ids())) == 2
        assert "leeg" in await bot.say("!outbox", as_role="kpc")
        # Each mail sent has an audit record of its own, naming the Message-ID the relay received.
        async with bot.runtime.sessions() as s:
            audited = (await s.execute(select(AuditRecord.details).where(AuditRecord.kind == "mail.verzonden")
                                       .order_by(AuditRecord.id))).scalars().all()
        assert sorted(d["message_id"].strip("<>") for d in audited) == \
            sorted(m.strip("<>") for m in back.collector.message_ids())
    finally:
        back.stop()
        smtp.start()


async def test_dead_after_max_failures_room_told_and_retry(bot: ConsoleBot, smtp: SmtpServer) -> None:
    smtp.stop()
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    seen = ""
    for _ in range(3):
        seen += await deliver(bot, advance_s=3600)
    rows = await outbox_rows(bot)
    assert rows[0].status == "dead" and rows[0].attempts == 3
    assert "NIET verzonden na 3 poging(en)" in seen and f"!outbox opnieuw {rows[0].ref}" in seen
    assert "dood" in await bot.say("!outbox", as_role="kpc")
    assert "Geen mail" in await bot.say("!outbox opnieuw T-0000", as_role="kpc")
    smtp.start()
    assert "weer in de wachtrij" in await bot.say(f"!outbox opnieuw {rows[0].ref.lower()}", as_role="kpc")
    await deliver(bot, advance_s=0)
    assert len(smtp.collector.received) == 1
    assert "niet dood" in await bot.say(f"!outbox opnieuw {rows[0].ref}", as_role="kpc")


async def test_server_without_starttls_is_refused_and_reported(tmp_path: Path, sqlite_url: str,
                                                               cert: tuple[Path, Path]) -> None:
    plain_server = SmtpServer(*cert, free_port(), starttls=False).start()
    bot = await start_bot(tmp_path, sqlite_url, plain_server.port, cert[0], [marking(ADULT, born=date(1990, 1, 1))])
    try:
        await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
        seen = await deliver(bot)
        assert plain_server.collector.received == []
        assert "STARTTLS" in seen and "NIET verzonden" in seen
        assert (await outbox_rows(bot))[0].status == "dead"
    finally:
        await bot.close()
        plain_server.stop()


async def test_header_injection_in_every_free_text_field(bot: ConsoleBot, smtp: SmtpServer) -> None:
    evil = "x\r\nBcc: evil@attacker.example\r\nSubject: gekaapt"
    await bot.say(f"!besluit {ADULT} pr zaak: {evil} motivering: {evil}", as_role="ovj")
    await bot.say(f"!aanmelden {UNKNOWN} Utrecht {evil}", as_role="kpc")
    await bot.say(f"!besluit {MINOR} halt motivering: <script>alert(1)</script>\nTo: evil@attacker.example",
                  as_role="ovj")
    await deliver(bot)
    assert len(smtp.collector.received) == 3
    for r in smtp.collector.received:
        assert r.rcpt == [UTRECHT]
        assert r.message.get_all("Bcc") is None and len(r.message.get_all("To") or []) == 1
        assert len(r.message.get_all("Subject") or []) == 1 and "gekaapt" not in str(r.message["Subject"])
        assert "<script>" not in html_part(r)


async def test_untrusted_certificate_is_refused(tmp_path: Path, sqlite_url: str, smtp: SmtpServer) -> None:
    other_ca, _ = make_cert(tmp_path)  # the bot trusts a different certificate than the server presents
    bot = await start_bot(tmp_path, sqlite_url, smtp.port, other_ca, [marking(ADULT, born=date(1990, 1, 1))])
    try:
        await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
        seen = await deliver(bot)
        assert smtp.collector.received == [] and "STARTTLS mislukt" in seen
    finally:
        await bot.close()


async def test_implicit_tls(tmp_path: Path, sqlite_url: str, cert: tuple[Path, Path]) -> None:
    server = SmtpServer(*cert, free_port(), starttls=False, implicit=True).start()
    bot = await start_bot(tmp_path, sqlite_url, server.port, cert[0], [marking(ADULT, born=date(1990, 1, 1))],
                          tls="implicit")
    try:
        await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
        await deliver(bot)
        assert len(server.collector.received) == 1
    finally:
        await bot.close()
        server.stop()


async def test_advice_written_as_label_counts_as_followed(tmp_path: Path, sqlite_url: str, smtp: SmtpServer,
                                                          cert: tuple[Path, Path]) -> None:
    bot = await start_bot(tmp_path, sqlite_url, smtp.port, cert[0],
                          [marking(ADULT, born=date(1990, 1, 1), advised="Voorwaardelijk sepot")])
    try:
        assert "Besluit vastgelegd" in await bot.say(f"!besluit {ADULT} vs", as_role="ovj")
        assert "motivering:" in await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    finally:
        await bot.close()


async def test_strict_profile_drafts_until_confirmed_with_weighing(tmp_path: Path, sqlite_url: str, smtp: SmtpServer,
                                                                   cert: tuple[Path, Path]) -> None:
    from tests.harness.config import VEILIGHEIDSHUIZEN, strict_vh_block
    vh_file = tmp_path / "vh.toml"
    vh_file.write_text(VEILIGHEIDSHUIZEN.read_text(encoding="utf-8") + strict_vh_block(identificatie='["skn"]'),
                       encoding="utf-8")
    clock = FixedClock(START)
    bot = await ConsoleBot.start(write_config(tmp_path, sqlite_url, sections={
        "mail": mail_section(smtp.port, cert[0]), "referentie": {"veiligheidshuizen": str(vh_file)}}), clock=clock)
    try:
        async with bot.runtime.sessions() as s, s.begin():
            m = marking(ADULT, born=date(1990, 1, 1), vh="strikt")
            await upsert(s, [Markering(**{**m.__dict__, "skn": "87654321"})], START)
        refused = await bot.say(f"!aanmelden {UNKNOWN} Striktstad zorgen", as_role="kpc")
        assert "mag geen BSN ontvangen" in refused and "SKN" in refused
        reply = await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
        assert "concept" in reply
        await deliver(bot)
        assert smtp.collector.received == []
        ref = (await outbox_rows(bot))[0].ref
        assert "concept" in await bot.say("!outbox", as_role="kpc")
        assert "afweging" in await bot.say(f"!outbox bevestig {ref}", as_role="ovj")
        assert "bevestigd" in await bot.say(f"!outbox bevestig {ref} weging: plan loopt, VH moet dit weten",
                                            as_role="ovj")
        await deliver(bot, advance_s=0)
        assert [r.rcpt for r in smtp.collector.received] == [["vh@strikt.example"]]
        text = plain(smtp.collector.received[0])
        assert "SKN 87654321" in text and ADULT not in text  # this VH may not receive the BSN
        assert "geen concept" in await bot.say(f"!outbox bevestig {ref} weging: nogmaals", as_role="ovj")
    finally:
        await bot.close()


def test_check_config_reports_broken_template(tmp_path: Path, sqlite_url: str) -> None:
    from cli.config_check import check
    from config.settings import load_settings
    templates = tmp_path / "tpl"
    templates.mkdir()
    for name in ("terugkoppeling", "aanmelding"):
        (templates / f"{name}.html.j2").write_text("{{ ref }}", encoding="utf-8")
        (templates / f"{name}.txt.j2").write_text("{{ onbekend_veld }}", encoding="utf-8")
    settings = load_settings(write_config(tmp_path, sqlite_url, sections={"mail": {"templates": str(templates)}}))
    problems, notes = check(settings)
    assert any("mail.templates: terugkoppeling" in p and "onbekend_veld" in p for p in problems)
    assert any("mail.enabled = false" in n for n in notes)


@pytest.fixture
async def patient_bot(tmp_path: Path, database_url: str, smtp: SmtpServer,
                      cert: tuple[Path, Path]) -> AsyncIterator[ConsoleBot]:
    """A bot that waits a minute for the relay's answer: the tests below hold that answer back while commands run,
    and a busy machine must not turn the hold into a timeout."""
    b = await start_bot(tmp_path, database_url, smtp.port, cert[0], [marking(ADULT, born=date(1990, 1, 1),
                                                                             advised="osb")], timeout_seconden=60.0)
    yield b
    await b.close()


async def test_a_decision_replaced_while_its_mail_is_with_the_relay(patient_bot: ConsoleBot, smtp: SmtpServer) -> None:
    """The relay has the first decision's mail and has not yet answered when a new decision on the case commits.
    The veiligheidshuis will have that mail, so the bot records it as sent (an audit record, the room notice, the
    figures), however the new decision cancelled it, and the new mail goes as a correction: the receiver reads
    which of the two counts. (The test SMTP server holds its 250 back: the relay is real, only slow here.)"""
    bot = patient_bot
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    clock_of(bot).advance(timedelta(seconds=70))
    assert bot.runtime.mail_worker and bot.runtime.sender
    smtp.collector.hold = True
    sending = asyncio.create_task(bot.runtime.mail_worker.drain())
    try:
        assert await asyncio.to_thread(smtp.collector.holding.wait, 60)
        assert "al verzonden of gaat nu uit" in await bot.say(f"!besluit ongedaan {ADULT}", as_role="ovj")
        reply = await bot.say(f"!besluit {ADULT} vs motivering: toch voorwaardelijk", as_role="ovj")
        assert "vervangt het eerdere besluit" in reply and "CORRECTIE" in reply
        assert "nog niet verzonden" not in reply  # it may be in the mailbox already
    finally:
        smtp.collector.released.set()
    await asyncio.wait_for(sending, 60)
    async with bot.runtime.sessions() as s:
        mails = list((await s.execute(select(OutboxMail).order_by(OutboxMail.id))).scalars())
        sent = list((await s.execute(select(AuditRecord).where(AuditRecord.kind == "mail.verzonden"))).scalars())
    assert [m.status for m in mails] == ["sent", "pending"]
    assert [r.details["ref"] for r in sent] == [mails[0].ref]
    assert f"verzonden aan {UTRECHT}" in await deliver(bot, advance_s=0)  # the first one's notice, now
    await deliver(bot)
    assert len(smtp.collector.received) == 2
    second = smtp.collector.received[1]
    assert "CORRECTIE" in str(second.message["Subject"]) and plain(second).startswith("CORRECTIE")


async def test_a_sepot_while_the_relay_has_the_mail_leaves_the_send_on_record(patient_bot: ConsoleBot,
                                                                             smtp: SmtpServer) -> None:
    """A technisch sepot 01 removes every mail about the person, also the one the relay has at that moment: the mail
    went all the same, and every send leaves an audit record, so the worker writes it from what its round knew
    (the reference, the Message-ID, the house, no person), and marks that the row was gone."""
    bot = patient_bot
    await bot.say(f"!besluit {ADULT} osb", as_role="ovj")
    clock_of(bot).advance(timedelta(seconds=70))
    assert bot.runtime.mail_worker
    async with bot.runtime.sessions() as s:
        (mail,) = list((await s.execute(select(OutboxMail))).scalars())
    smtp.collector.hold = True
    sending = asyncio.create_task(bot.runtime.mail_worker.drain())
    try:
        assert await asyncio.to_thread(smtp.collector.holding.wait, 60)
        reply = await bot.say(f"!besluit {ADULT} 01", as_role="ovj")
        # the house may have it: the officer is told to ask for its deletion, as after a mail that went
        assert ("Let op: er ging al mail over de persoon naar utrecht (terugkoppeling). Vraag dat veiligheidshuis "
                "de gegevens te verwijderen.") in reply
        async with bot.runtime.sessions() as s:
            assert list((await s.execute(select(OutboxMail))).scalars()) == []  # removed with the case
    finally:
        smtp.collector.released.set()
    await asyncio.wait_for(sending, 60)
    async with bot.runtime.sessions() as s:
        sent = list((await s.execute(select(AuditRecord).where(AuditRecord.kind == "mail.verzonden"))).scalars())
        assert list((await s.execute(select(OutboxMail))).scalars()) == []  # and not written back
    assert [r.details for r in sent] == [{"ref": mail.ref, "message_id": mail.message_id, "veiligheidshuis": "utrecht",
                                          "soort": mail.kind, "rij": "verwijderd"}]
    assert len(smtp.collector.received) == 1
