"""Advies op aanvraag end to end at the dispatcher level, with a FixedClock for every deadline.

The console transport prints messages to other rooms as ``[naar <room>] ...``; the database rows (steps,
outgoing messages, mails, audit) are checked directly where the room text is not enough.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.aanvraag.reactions import handle_reaction
from bot.transport.console import CONSOLE_ROOM
from domain.advies import Markering
from domain.clock import AMSTERDAM, FixedClock
from domain.errors import ConfigError
from domain.identifiers import parse_person_id
from integrations.rooster_ical import parse_roster
from services.aanvraag import AanvraagService
from services.messages import txn_id_for
from services.rooster import import_roster
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag
from storage.audit import GENESIS
from storage.besluit_models import OutboxMail
from storage.models import AuditRecord, OutgoingMessage
from storage.registry_queries import upsert
from tests.harness.config import user_for, write_config
from tests.harness.console import ConsoleBot
from tests.smtp_helpers import SmtpServer, mail_section

BSN = "123456782"
OTHER_BSN = "111222333"
ONCALL = "!dienst-utrecht:localhost"
DUTY = "@jan.dienst:localhost"
BACKUP = "@piet.achterwacht:localhost"
LEAD = "@teamleider:localhost"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMSTERDAM).astimezone(UTC)
SATURDAY_23 = datetime(2026, 11, 21, 23, 0, tzinfo=AMSTERDAM).astimezone(UTC)


def config(tmp_path: Path, db_url: str, mail: dict[str, Any] | None = None, **extra: Any) -> Path:
    users = {user_for(r): r for r in ("ovj", "kpc", "politie", "beheerder", "veiligheidshuis",
                                      "bereikbaarheidsdienst", "parketsecretaris", "reclassering")}
    users.update({DUTY: "bereikbaarheidsdienst", BACKUP: "bereikbaarheidsdienst", LEAD: "veiligheidshuis"})
    section: dict[str, Any] = {
        "tik_seconden": 0,
        "escalatie_kantoor": ["herinnering:60", "backup:120", "teamleider:240"],
        "escalatie_buiten": ["herinnering:15", "backup:30", "ruimte:60"],
        "link_sleutel": "test-link-sleutel", "basis_url": "http://127.0.0.1:1",
        "vh.utrecht.doelgroepen": ["huiselijk geweld"],
        "vh.utrecht.zaaktypen": ["hg"],
        "vh.utrecht.room": ONCALL,
        "vh.utrecht.teamleider": LEAD,
        "vh.utrecht.termijn": "24u",
    }
    section.update(extra)
    return write_config(tmp_path, db_url, sections={"aanvraag": section, **({"mail": mail} if mail else {})},
                        users=users)


async def seed(bot: ConsoleBot, bsn: str = BSN, doelgroep: str = "huiselijk geweld", vh: str = "utrecht") -> None:
    async with bot.runtime.sessions() as s, s.begin():
        await upsert(s, [Markering(
            bsn=bsn, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis=vh, doelgroep=doelgroep,
            status="actief", advies="Oud advies: sepot.", geadviseerde_afdoening="sepot",
            advies_datum=date(2025, 1, 1), regisseur="mw. De Groot",
        )], bot.runtime.clock.now())


async def start(tmp_path: Path, db_url: str, when: datetime = MONDAY_10, **extra: Any) -> tuple[ConsoleBot, FixedClock]:
    clock = FixedClock(when)
    bot = await ConsoleBot.start(config(tmp_path, db_url, **extra), clock=clock)
    return bot, clock


def svc(bot: ConsoleBot) -> AanvraagService:
    service = bot.runtime.aanvraag
    assert isinstance(service, AanvraagService)
    return service


async def tick(bot: ConsoleBot) -> str:
    """Run the due steps at the clock's time and return what was sent."""
    assert bot.runtime.sender
    before = bot.out.tell()
    await svc(bot).process_due(bot.runtime.clock.now())
    await bot.runtime.sender.drain()
    bot.out.seek(before)
    out = bot.out.read()
    bot.out.seek(0, 2)
    return out.strip()


async def roster(bot: ConsoleBot, start: datetime | None = None) -> None:
    t0 = (start or MONDAY_10 - timedelta(days=1)).astimezone(AMSTERDAM)
    t1 = t0 + timedelta(days=6)
    reply = await bot.say(f"!dienst utrecht {DUTY} {t0:%d-%m-%Y %H:%M} {t1:%d-%m-%Y %H:%M} backup: {BACKUP}",
                          as_role="kpc")
    assert "Dienst utrecht" in reply, reply


SKETCH = "feit: mishandeling partner in de woning voornemen: voorwaardelijk sepot"


async def open_request(bot: ConsoleBot, extra: str = "") -> str:
    """``!aanvraag`` with a case sketch (required) unless ``extra`` brings its own."""
    sketch = "" if "feit:" in extra else SKETCH
    reply = await bot.say(f"!aanvraag {BSN} {extra} {sketch}".strip(), as_role="kpc")
    assert "Aanvraag A" in reply, reply
    return reply


async def rows(bot: ConsoleBot, model: Any, *where: Any) -> list[Any]:
    async with bot.runtime.sessions() as s:
        out = list((await s.execute(select(model).where(*where).order_by(model.id))).scalars().all())
        await s.commit()  # a rollback would expire the rows
    return out


@pytest.fixture
async def bot(tmp_path: Path, sqlite_url: str):
    b, _ = await start(tmp_path, sqlite_url)
    await seed(b)
    await roster(b)
    yield b
    await b.close()


# ---------------------------------------------------------------------------------------------- opening

async def test_open_pings_on_call_room_mails_mailbox_and_audits(tmp_path: Path, database_url: str) -> None:
    b, _ = await start(tmp_path, database_url)
    try:
        await seed(b)
        await roster(b)
        reply = await open_request(b, "vraag: loopt er een plan van aanpak?")
        assert "Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht" in reply
        own, ping_text = reply.split(f"[naar {ONCALL}]")
        assert "BSN ******782" in own and BSN not in own  # the ZSM room sees the masked id
        assert f"Advies op aanvraag A1 over BSN {BSN}" in ping_text  # the on-call person what the house may receive
        assert "Feit: mishandeling partner in de woning" in ping_text
        assert "24-11-2026 10:00" in reply and "nog 1 d 0 u" in reply
        assert f"[naar {ONCALL}] Advies op aanvraag A1" in reply
        assert f"Dienst: {DUTY}" in reply and "plan van aanpak" in reply
        ping = (await rows(b, OutgoingMessage, OutgoingMessage.room_id == ONCALL))[0]
        req = (await rows(b, AdviesAanvraag))[0]
        assert req.ping_txn == ping.txn_id and req.office_hours is True
        assert req.chain["steps"][0] == {"kind": "herinnering", "after_s": 3600}
        mail = (await rows(b, OutboxMail))[0]  # the one mail outbox, written in the request's transaction
        assert mail.kind == "aanvraag" and mail.recipient == "terugkoppeling@vh-utrecht.example"
        assert mail.mail_subject == "[ZSM] Advies op aanvraag A1 - antwoord uiterlijk 24-11-2026 10:00"
        body = mail.body_text or ""
        assert "/aanvraag/1/antwoord?t=" in body and "******" not in body
        # the identifier this house may receive (identificatie) and the case sketch, as in the ping and the form
        assert f"(advies op aanvraag A1) over BSN {BSN}," in body
        assert "Feit: mishandeling partner in de woning" in body
        assert mail.subject_hash == b.runtime.auditor.subject_of(BSN) and "VERTROUWELIJK" in (mail.body_text or "")
        kinds = [r.kind for r in await rows(b, AuditRecord, AuditRecord.kind.like("aanvraag.%"))]
        assert kinds == ["aanvraag.geopend", "aanvraag.ping"]
        steps = await rows(b, AanvraagStap)
        assert [s.kind for s in steps] == ["ping", "herinnering", "backup", "teamleider", "waarschuwing",
                                           "waarschuwing", "verlopen"]
        assert steps[0].done_at is not None and all(s.done_at is None for s in steps[1:])
    finally:
        await b.close()


async def test_refusals_say_why_and_what_to_type(bot: ConsoleBot) -> None:
    await seed(bot, OTHER_BSN, doelgroep="veelpleger")
    reply = await bot.say(f"!aanvraag {OTHER_BSN} {SKETCH}", as_role="kpc")
    assert "valt bij utrecht onder doelgroep 'veelpleger'" in reply and "huiselijk geweld" in reply
    assert "bij geen veiligheidshuis bekend" in await bot.say(f"!aanvraag 100000009 {SKETCH}", as_role="kpc")
    assert "elfproef" in await bot.say("!aanvraag 123456789", as_role="kpc")
    assert "hoogstens 7 dagen" in await bot.say(f"!aanvraag {BSN} 9d {SKETCH}", as_role="kpc")
    assert "niet herkend" in await bot.say(f"!aanvraag {BSN} straks {SKETCH}", as_role="kpc")
    assert "Bedoelde u utrecht" in await bot.say(f"!aanvraag {BSN} vh: utrech", as_role="kpc")
    assert "niet gemarkeerd door eemland" in await bot.say(f"!aanvraag {BSN} vh: eemland {SKETCH}",
                                                                   as_role="kpc")
    assert "niet gebruiken" in await bot.say(f"!aanvraag {BSN}", as_role="politie")
    assert "Er ontbreekt <bsn of skn>" in await bot.say("!aanvraag", as_role="kpc")
    await open_request(bot)
    assert "Er loopt al een aanvraag" in await bot.say(f"!aanvraag {BSN} {SKETCH}", as_role="kpc")
    assert len(await rows(bot, AdviesAanvraag)) == 1


async def test_term_given_per_request_next_working_day(bot: ConsoleBot) -> None:
    reply = await open_request(bot, "volgende werkdag 13:00")
    assert "24-11-2026 13:00" in reply
    req = (await rows(bot, AdviesAanvraag))[0]
    assert req.deadline == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_list_is_most_urgent_first_and_cancel(bot: ConsoleBot) -> None:
    await seed(bot, OTHER_BSN)
    await open_request(bot, "5d")
    await bot.say(f"!aanvraag {OTHER_BSN} 2u {SKETCH}", as_role="ovj")
    listing = await bot.say("!aanvragen", as_role="kpc")
    assert listing.index("A2") < listing.index("A1")
    assert "nog 2 u 0 min" in listing and "nog 5 d 0 u" in listing
    assert "mag alleen" in await bot.say("!aanvraag intrekken A2", as_role="reclassering")
    reply = await bot.say("!aanvraag intrekken A2", as_role="kpc")
    assert "A2 is ingetrokken" in reply and f"[naar {ONCALL}] Aanvraag A2 is ingetrokken" in reply
    assert "al ingetrokken" in await bot.say("!aanvraag intrekken A2", as_role="kpc")
    assert "bestaat niet" in await bot.say("!aanvraag intrekken A99", as_role="kpc")
    assert "geen aanvraagnummer" in await bot.say("!aanvraag intrekken xyz", as_role="kpc")
    assert "A2" not in await bot.say("!aanvragen", as_role="kpc")
    bot.runtime.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    assert "A2" not in await tick(bot)  # the cancelled request's steps do nothing


async def test_sepot_01_redacts_the_advice_request_messages_about_that_person(bot: ConsoleBot) -> None:
    """Every advice-request message carries the person's keyed hash, so a technisch sepot 01 finds them all: the
    reply to !aanvraag, the ping and the reminder in the on-call room, the answer in the ZSM room. A request about
    someone else stays. (Before, the engine wrote its messages without the hash and the sepot missed them.)"""
    await seed(bot, OTHER_BSN)
    await open_request(bot)
    await bot.say(f"!aanvraag {OTHER_BSN} {SKETCH}", as_role="kpc", event_id="$other")
    bot.runtime.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    assert "Herinnering: aanvraag A1" in await tick(bot)
    await bot.say("!advies A1 vs Voorwaardelijk sepot; het plan van aanpak loopt.", as_user=DUTY)
    subject = bot.runtime.auditor.subject_of(BSN)
    about = await rows(bot, OutgoingMessage, OutgoingMessage.subject == subject)
    txns = {r.txn_id for r in about}
    for purpose in ("ping", "stap1", "antwoord"):
        assert txn_id_for("aanvraag:1", purpose) in txns, purpose
    assert len(about) == 4 and all(r.status == "sent" and r.event_id for r in about)  # and the !aanvraag reply
    assert {r.room_id for r in about} == {ONCALL, CONSOLE_ROOM}

    reply = await bot.say(f"!besluit {BSN} 01 zaak: 2026-5", as_role="ovj")
    assert "Technisch sepot 01" in reply and "4 eerder bericht(en)" in reply
    marked = await rows(bot, OutgoingMessage, OutgoingMessage.redaction == "pending")
    assert {r.id for r in marked} == {r.id for r in about}
    assert all(r.redaction_reason == "technisch sepot 01" for r in marked)
    other = await rows(bot, OutgoingMessage, OutgoingMessage.txn_id.in_(
        [txn_id_for("aanvraag:2", "ping"), txn_id_for("$other")]))
    assert len(other) == 2 and all(r.redaction is None for r in other)
    assert bot.runtime.redactor is not None
    await bot.runtime.redactor.drain()
    done = await rows(bot, OutgoingMessage, OutgoingMessage.id.in_([r.id for r in about]))
    assert all(r.redaction == "done" and r.subject is None for r in done)


# ---------------------------------------------------------------------------------------------- escalation

async def test_each_escalation_step_fires_once_at_its_time(bot: ConsoleBot) -> None:
    clock: FixedClock = bot.runtime.clock  # type: ignore[assignment]
    await open_request(bot)
    clock.advance(timedelta(minutes=59))
    assert await tick(bot) == ""
    clock.advance(timedelta(minutes=1))
    out = await tick(bot)
    assert out.startswith(f"[naar {ONCALL}] Herinnering: aanvraag A1 is nog niet bevestigd")
    assert await tick(bot) == ""  # never twice
    clock.advance(timedelta(minutes=60))
    assert "Escalatie naar de achterwacht" in await tick(bot)
    clock.advance(timedelta(minutes=120))
    assert "Escalatie naar de teamleider" in await tick(bot)
    sent = await rows(bot, OutgoingMessage, OutgoingMessage.room_id == ONCALL)
    assert len(sent) == 4
    steps = await rows(bot, AanvraagStap)
    assert [(s.kind, s.outcome, s.late) for s in steps[:4]] == [
        ("ping", "gedaan", False), ("herinnering", "gedaan", False), ("backup", "gedaan", False),
        ("teamleider", "gedaan", False)]
    audits = await rows(bot, AuditRecord, AuditRecord.kind == "aanvraag.escalatie")
    assert [a.details["aan"] for a in audits] == [[DUTY], [BACKUP], [LEAD]]


async def test_outside_office_hours_a_different_chain_reaches_the_whole_room(tmp_path: Path, sqlite_url: str) -> None:
    b, clock = await start(tmp_path, sqlite_url, when=SATURDAY_23)
    try:
        await seed(b)
        await roster(b, SATURDAY_23 - timedelta(hours=1))
        await open_request(b)
        req = (await rows(b, AdviesAanvraag))[0]
        assert req.office_hours is False
        clock.advance(timedelta(minutes=60))
        out = await tick(b)
        assert out.count(f"[naar {ONCALL}]") == 3 and "Escalatie naar iedereen in deze ruimte" in out
        room = [m for m in await rows(b, OutgoingMessage, OutgoingMessage.room_id == ONCALL)]
        assert len(room) == 4
        audits = await rows(b, AuditRecord, AuditRecord.kind == "aanvraag.escalatie")
        assert set(audits[-1].details["aan"]) == {DUTY, BACKUP, LEAD}
    finally:
        await b.close()


async def test_ack_only_by_on_call_members_and_it_stops_escalation(bot: ConsoleBot) -> None:
    clock: FixedClock = bot.runtime.clock  # type: ignore[assignment]
    await open_request(bot)
    refused = await bot.say("!ack A1", as_role="bereikbaarheidsdienst")
    assert "niet in het rooster" in refused
    assert "niet gebruiken" in await bot.say("!ack A1", as_role="kpc")
    reply = await bot.say("!ack A1", as_user=DUTY)
    assert "A1 bevestigd; de escalatie is gestopt" in reply
    assert "al bevestigd" in await bot.say("!ack A1", as_user=BACKUP)
    clock.advance(timedelta(hours=5))
    assert await tick(bot) == ""
    steps = await rows(bot, AanvraagStap, AanvraagStap.kind.in_(["herinnering", "backup", "teamleider"]))
    assert [s.outcome for s in steps] == ["vervallen"] * 3
    assert "bevestigd door " + DUTY in await bot.say("!aanvragen", as_role="kpc")


async def test_reaction_on_the_ping_acknowledges(bot: ConsoleBot) -> None:
    clock: FixedClock = bot.runtime.clock  # type: ignore[assignment]
    await open_request(bot)
    ping = (await rows(bot, OutgoingMessage, OutgoingMessage.room_id == ONCALL))[0]
    assert ping.event_id
    assert await handle_reaction(bot.runtime, sender=DUTY, room_id=ONCALL, reacts_to=ping.event_id, key="👍") is None
    assert await handle_reaction(bot.runtime, sender=DUTY, room_id=ONCALL, reacts_to="$other", key="✅") is None
    stranger = await handle_reaction(bot.runtime, sender=user_for("bereikbaarheidsdienst"), room_id=ONCALL,
                                     reacts_to=ping.event_id, key="✅")
    assert stranger and "niet in het rooster" in stranger
    ok = await handle_reaction(bot.runtime, sender=BACKUP, room_id=ONCALL, reacts_to=ping.event_id, key="✅")
    assert ok == f"Aanvraag A1 bevestigd door {BACKUP}."
    clock.advance(timedelta(hours=2))
    assert await tick(bot) == ""
    audit = await rows(bot, AuditRecord, AuditRecord.kind == "aanvraag.bevestigd")
    assert audit[0].details["via"] == "reactie"


# ---------------------------------------------------------------------------------------------- answer, expiry

async def test_answer_by_command_goes_to_zsm_thread_and_into_check(bot: ConsoleBot) -> None:
    await open_request(bot)
    assert "te kort" in await bot.say("!advies A1 vs ok", as_user=DUTY)
    assert "ontbreekt" in await bot.say("!advies A1", as_user=DUTY)
    text = "Voorwaardelijk sepot met verplichte hulpverlening; plan van aanpak loopt sinds mei."
    reply = await bot.say(f"!advies A1 vs {text}", as_user=DUTY)
    assert "doorgegeven aan ZSM" in reply
    req = (await rows(bot, AdviesAanvraag))[0]
    posted = await rows(bot, OutgoingMessage, OutgoingMessage.txn_id == txn_id_for("aanvraag:1", "antwoord"))
    assert len(posted) == 1 and posted[0].room_id == CONSOLE_ROOM and posted[0].in_reply_to == req.event_id
    assert "Advies ontvangen (A1)" in reply or "Advies ontvangen (A1)" in bot.out.getvalue()
    assert text in bot.out.getvalue()
    markering = await bot.runtime.services.registry.lookup(parse_person_id(BSN))
    assert markering[0].advies == text and markering[0].advies_datum == date(2026, 11, 23)
    assert markering[0].bron == "advies op aanvraag"
    assert req.state == "beantwoord" and req.answered_by == DUTY
    assert markering[0].geadviseerde_afdoening == "vs"
    assert "beantwoord" in await bot.say(f"!advies A1 vs {text}", as_user=DUTY)
    bot.runtime.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    assert await tick(bot) == ""  # no reminders, no expiry after an answer


async def test_answer_message_is_threaded_and_mentions_requester(bot: ConsoleBot) -> None:
    sent: list[dict[str, Any]] = []

    class Capture:
        async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
            sent.append({"room": room_id, **content})
            return f"$cap-{txn_id}"

    assert bot.runtime.sender
    bot.runtime.sender.transport = Capture()
    await bot.say(f"!aanvraag {BSN} {SKETCH}", as_role="kpc", event_id="$request-event")
    await bot.say("!advies A1 geen Geen bezwaar tegen een voorwaardelijk sepot, hulpverlening loopt.", as_user=DUTY)
    answer = next(m for m in sent if m["body"].startswith("Advies ontvangen"))
    assert answer["room"] == CONSOLE_ROOM
    assert answer["m.relates_to"]["m.in_reply_to"]["event_id"] == "$request-event"
    assert answer["m.mentions"] == {"user_ids": [user_for("kpc")]}
    ping = next(m for m in sent if m["room"] == ONCALL)
    assert ping["m.mentions"] == {"user_ids": [DUTY]}


async def test_expiry_tells_zsm_to_decide_without_advice(bot: ConsoleBot) -> None:
    clock: FixedClock = bot.runtime.clock  # type: ignore[assignment]
    await open_request(bot, "6u")
    await bot.say("!ack A1", as_user=DUTY)
    clock.advance(timedelta(hours=6))
    out = await tick(bot)
    assert "Termijn verstreken (A1)" in out and "Beslis deze zaak zonder het advies" in out
    assert f"[naar {ONCALL}] Aanvraag A1 is verlopen" in out
    req = (await rows(bot, AdviesAanvraag))[0]
    assert req.state == "verlopen"
    assert "verlopen" in await bot.say("!advies A1 vs Alsnog een advies met reden erbij.", as_user=DUTY)
    assert "geen open aanvragen" in await bot.say("!aanvragen", as_role="kpc")
    assert len(await rows(bot, AuditRecord, AuditRecord.kind == "aanvraag.verlopen")) == 1


async def test_cancel_stops_an_unsent_request_mail_and_tells_a_house_that_had_it(
        tmp_path: Path, database_url: str, smtp: SmtpServer, cert: tuple[Path, Path]) -> None:
    """The house's mailbox hears what the on-call room hears. A request cancelled while its mail waits (the relay
    was down) never reaches the mailbox; one whose mail went is followed by a mail that it no longer stands (naming
    the request, not the person). A request answered in the on-call room before its mail could go takes its mail
    back too: the house must not get a settled request with a link that takes no answer."""
    b, clock = await start(tmp_path, database_url, mail=mail_section(smtp.port, cert[0], enabled=True))
    worker = b.runtime.mail_worker
    assert worker
    third = "100000009"
    relay = None
    try:
        for bsn in (BSN, OTHER_BSN, third):
            await seed(b, bsn)
        await roster(b)
        smtp.stop()  # the relay is down: each request mail fails its first attempt and waits for a retry
        await open_request(b)
        await b.say(f"!aanvraag {third} {SKETCH}", as_role="kpc", event_id="$derde")
        await worker.drain()
        assert {m.status for m in await rows(b, OutboxMail)} == {"pending"}
        reply = await b.say("!aanvraag intrekken A1", as_role="kpc")
        assert ("Aanvraag A1 is ingetrokken; de bereikbaarheidsdienst is ingelicht; de aanvraagmail was nog niet "
                "verzonden en gaat niet meer uit.") in reply
        await b.say("!advies A2 vs Voorwaardelijk sepot; het plan van aanpak loopt.", as_user=DUTY)
        assert [(m.status, m.body_text) for m in await rows(b, OutboxMail)] == [("vervallen", None)] * 2

        relay = SmtpServer(*cert, smtp.port).start()
        clock.advance(timedelta(minutes=5))  # past every retry time
        await worker.drain()
        assert relay.collector.received == []  # neither the cancelled nor the answered request's mail went

        await b.say(f"!aanvraag {OTHER_BSN} {SKETCH}", as_role="kpc", event_id="$tweede")
        await worker.drain()
        assert [r.message["Subject"] for r in relay.collector.received] == [
            "[ZSM] Advies op aanvraag A3 - antwoord uiterlijk 24-11-2026 10:05"]
        reply = await b.say("!aanvraag intrekken A3", as_role="ovj")
        assert ("Aanvraag A3 is ingetrokken; de bereikbaarheidsdienst is ingelicht; het veiligheidshuis krijgt een "
                "mail dat er geen advies meer nodig is.") in reply
        await worker.drain()
        assert len(relay.collector.received) == 2
        told = relay.collector.received[1]
        assert told.rcpt == ["terugkoppeling@vh-utrecht.example"]
        assert told.message["Subject"] == "[ZSM] Advies op aanvraag A3 ingetrokken - geen advies meer nodig"
        body = told.message.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert "adviesaanvraag A3 van 23-11-2026 10:05 (Nederlandse tijd) ingetrokken" in body
        assert OTHER_BSN not in body and "VERTROUWELIJK" in body
        details = [r.details for r in await rows(b, AuditRecord, AuditRecord.kind == "aanvraag.ingetrokken")]
        assert [d["mail"] for d in details] == ["tegengehouden", "bericht"]
    finally:
        await b.close()
        if relay is not None:
            relay.stop()


async def test_sepot_01_names_the_house_that_got_the_request_mail(
        tmp_path: Path, database_url: str, smtp: SmtpServer, cert: tuple[Path, Path]) -> None:
    """The request mail carried the identifier and the case sketch: after a technisch sepot 01 the officer is told
    to ask that house to delete it, as after a terugkoppeling that went. A request mail that never went (relay
    down) is removed with the rest and names nobody."""
    b, _ = await start(tmp_path, database_url, mail=mail_section(smtp.port, cert[0], enabled=True))
    worker = b.runtime.mail_worker
    assert worker
    try:
        for bsn in (BSN, OTHER_BSN):
            await seed(b, bsn)
        await roster(b)
        await open_request(b)
        await worker.drain()
        assert len(smtp.collector.received) == 1
        reply = await b.say(f"!besluit {BSN} 01", as_role="ovj")
        assert ("Let op: er ging al mail over de persoon naar utrecht (adviesaanvraag). Vraag dat veiligheidshuis "
                "de gegevens te verwijderen.") in reply
        assert BSN[-3:] not in reply  # no identifier at all after a sepot 01, not even masked

        smtp.stop()
        await b.say(f"!aanvraag {OTHER_BSN} {SKETCH}", as_role="kpc", event_id="$tweede")
        await worker.drain()  # fails: the relay is down, the mail waits for a retry
        reply = await b.say(f"!besluit {OTHER_BSN} 01", as_role="ovj")
        assert "Technisch sepot 01" in reply and "Let op" not in reply
        assert await rows(b, OutboxMail) == [] and await rows(b, AdviesAanvraag) == []
    finally:
        await b.close()


# ---------------------------------------------------------------------------------------------- restart

async def test_restart_in_the_middle_of_a_chain(tmp_path: Path, database_url: str) -> None:
    b, clock = await start(tmp_path, database_url)
    await seed(b)
    await roster(b)
    await open_request(b)
    clock.advance(timedelta(minutes=60))
    assert "Herinnering" in await tick(b)
    await b.close()
    # Down for three hours: backup (T2) and team lead (T3) fell due meanwhile.
    later = FixedClock(clock.now() + timedelta(hours=3, minutes=30))
    b2 = await ConsoleBot.start(config(tmp_path, database_url), clock=later)
    try:
        assert b2.runtime.sender
        await b2.runtime.sender.drain()
        out = b2.out.getvalue()
        assert "Escalatie naar de achterwacht" in out and "Escalatie naar de teamleider" in out
        assert out.count("later dan gepland") == 2
        steps = await rows(b2, AanvraagStap)
        assert [(s.kind, s.late) for s in steps[:4]] == [
            ("ping", False), ("herinnering", False), ("backup", True), ("teamleider", True)]
        assert await tick(b2) == ""
    finally:
        await b2.close()
    b3 = await ConsoleBot.start(config(tmp_path, database_url), clock=FixedClock(later.now()))
    try:
        assert b3.runtime.sender
        await b3.runtime.sender.drain()
        assert b3.out.getvalue().strip() == ""  # never twice, also not after a second restart
        async with b3.runtime.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(OutgoingMessage)
                               .where(OutgoingMessage.room_id == ONCALL))
        assert n == 4
        prev, auditor = GENESIS, b3.runtime.auditor
        for r in await rows(b3, AuditRecord):  # batched audit records keep the keyed chain intact
            assert r.prev_hash == prev
            assert r.hash == auditor.mac(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, r.prev_hash)
            prev = r.hash
    finally:
        await b3.close()


async def test_two_processors_racing_claim_each_step_once(bot: ConsoleBot) -> None:
    import asyncio

    await seed(bot, OTHER_BSN)
    await open_request(bot)
    await bot.say(f"!aanvraag {OTHER_BSN} {SKETCH}", as_role="kpc")
    bot.runtime.clock.advance(timedelta(hours=5))  # type: ignore[attr-defined]
    service = svc(bot)
    now = bot.runtime.clock.now()
    counts = await asyncio.gather(*(service.process_due(now) for _ in range(4)))
    assert sum(counts) == 6
    assert len(await rows(bot, AuditRecord, AuditRecord.kind == "aanvraag.escalatie")) == 6


# ---------------------------------------------------------------------------------------------- roster

async def test_roster_show_change_and_refusals(bot: ConsoleBot) -> None:
    shown = await bot.say("!dienst", as_role="ovj")
    assert f"utrecht: {DUTY} (nu)" in shown and f"achterwacht {BACKUP}" in shown
    assert "mag alleen de rol" in await bot.say(f"!dienst utrecht {DUTY} 23-11-2026 08:00 24-11-2026 08:00",
                                                as_role="ovj")
    assert "geen Matrix-id" in await bot.say("!dienst utrecht jan 23-11-2026 08:00 24-11-2026 08:00", as_role="kpc")
    assert "geen tijdstip" in await bot.say(f"!dienst utrecht {DUTY} morgen overmorgen", as_role="kpc")
    assert "na het begin" in await bot.say(f"!dienst utrecht {DUTY} 24-11-2026 08:00 23-11-2026 08:00",
                                           as_role="kpc")
    assert "Gebruik: !dienst" in await bot.say("!dienst utrecht @a:localhost", as_role="kpc")
    assert "Bedoelde u" in await bot.say("!dienst utrect", as_role="kpc")
    assert "Geen diensten" in await bot.say("!dienst eemland", as_role="kpc")
    assert "niet gebruiken" in await bot.say("!dienst", as_role="politie")
    assert len(await rows(bot, AuditRecord, AuditRecord.kind == "dienst.gewijzigd")) == 1


ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//roster//NL
BEGIN:VEVENT
UID:shift-1@test
DTSTART;TZID=Europe/Amsterdam:20261123T080000
DTEND;TZID=Europe/Amsterdam:20261124T080000
SUMMARY:Dienst @ical.jan:localhost backup @ical.piet:localhost
END:VEVENT
BEGIN:VEVENT
UID:shift-2@test
DTSTART:20261124T070000Z
DTEND:20261125T070000Z
SUMMARY:Bereikbaarheidsdienst
DESCRIPTION:Op dienst: @ical.kees:localhost
END:VEVENT
END:VCALENDAR
"""


async def test_roster_import_from_icalendar_replaces_by_uid(bot: ConsoleBot) -> None:
    shifts = parse_roster(ICS)
    assert [(s.user_id, s.backup_id) for s in shifts] == [
        ("@ical.jan:localhost", "@ical.piet:localhost"), ("@ical.kees:localhost", None)]
    assert shifts[0].starts_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    for _ in range(2):
        await import_roster(bot.runtime.sessions, bot.runtime.auditor, "eemland", shifts, bot.runtime.clock.now(),
                            "test")
    shown = await bot.say("!dienst eemland", as_role="kpc")
    assert shown.count("@ical.jan:localhost") == 1 and "@ical.kees:localhost" in shown
    with pytest.raises(ConfigError, match="geen Matrix-id"):
        parse_roster(ICS.replace(b"@ical.jan:localhost", b"Jan").replace(b" backup @ical.piet:localhost", b""))
    with pytest.raises(ConfigError, match="geen geldig iCalendar"):
        parse_roster(b"dit is geen agenda")


def test_roster_import_cli(tmp_path: Path) -> None:
    from cli.main import main

    db = tmp_path / "cli.db"
    cfg = config(tmp_path, f"sqlite+aiosqlite:///{db}")
    ics = tmp_path / "rooster.ics"
    ics.write_bytes(ICS)
    assert main(["dienst-import", "--config", str(cfg), "--vh", "utrecht", str(ics)]) == 0
    assert main(["dienst-import", "--config", str(cfg), "--vh", "nergens", str(ics)]) == 2
    assert main(["dienst-import", "--config", str(cfg), "--vh", "utrecht", str(tmp_path / "weg.ics")]) == 2


async def test_the_scheduler_only_ticks_the_database_does_the_rest(tmp_path: Path, sqlite_url: str) -> None:
    import asyncio

    b, clock = await start(tmp_path, sqlite_url, tik_seconden=0.05)
    try:
        await seed(b)
        await roster(b)
        await open_request(b)
        clock.advance(timedelta(minutes=60))
        for _ in range(100):
            await asyncio.sleep(0.02)
            steps = await rows(b, AanvraagStap, AanvraagStap.kind == "herinnering")
            if steps[0].done_at is not None:
                break
        assert steps[0].done_at == clock.now() and steps[0].late is False
        assert b.runtime.sender
        await b.runtime.sender.drain()
        assert b.out.getvalue().count("Herinnering: aanvraag A1") == 1
    finally:
        await b.close()


def test_check_config_reports_aanvraag_problems(tmp_path: Path) -> None:
    from cli.config_check import check
    from config.settings import load_settings

    problems, _ = check(load_settings(config(tmp_path, "sqlite+aiosqlite:///x.db")))
    assert any("aanvraag.link_sleutel is te kort" in p for p in problems)
    # Advice-request mail goes through [mail] now: the old keys are refused, by the loader itself (check-config and
    # the runtime alike).
    with pytest.raises(ConfigError, match=r"^aanvraag\.mail_tls: de mail van een adviesaanvraag gaat via de gewone"):
        load_settings(config(tmp_path, "sqlite+aiosqlite:///x.db", mail_tls="geen"))
    with pytest.raises(ConfigError, match=r"aanvraag\.kantoortijden"):
        load_settings(config(tmp_path, "sqlite+aiosqlite:///x.db", kantoortijden="laat"))
