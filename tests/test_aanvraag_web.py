"""The answer by web form behind a signed, expiring link (real aiohttp server, real headless Chromium) and the
mail to the veiligheidshuis mailbox through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.runtime import Runtime
from bot.transport.console import ConsoleTransport
from config.settings import load_settings
from domain.clock import FixedClock
from domain.identifiers import parse_person_id
from services.aanvraag import AanvraagService
from storage.besluit_models import OutboxMail
from tests.harness.browser import browser_or_skip, chromium
from tests.harness.console import ConsoleBot
from tests.smtp_helpers import SmtpServer, free_port, mail_section
from tests.test_aanvraag import BSN, DUTY, MONDAY_10, config, open_request, roster, rows, seed


async def web_bot(tmp_path: Path, db_url: str, **extra: Any) -> tuple[ConsoleBot, FixedClock, str]:
    """A console bot whose runtime also serves HTTP on a free port (the answer form lives there)."""
    clock = FixedClock(MONDAY_10)
    path = config(tmp_path, db_url, **extra)
    text = path.read_text().replace("[http]\nenabled = false", "[http]\nenabled = true")
    path.write_text(text)
    runtime = Runtime(load_settings(path), clock=clock)
    bot = ConsoleBot(runtime)
    await runtime.start(ConsoleTransport(bot.out), http=True)
    base = f"http://127.0.0.1:{runtime.http_port}"
    service: AanvraagService = runtime.aanvraag
    object.__setattr__(service.config, "base_url", base)
    await seed(bot)
    await roster(bot)
    return bot, clock, base


def link_of(mail: OutboxMail) -> str:
    for line in (mail.body_text or "").splitlines():
        if "/aanvraag/" in line and "?t=" in line:
            return line.strip()
    raise AssertionError("no link in the mail")


async def test_form_with_a_good_link_answers_and_forged_or_expired_links_are_refused(
        tmp_path: Path, sqlite_url: str) -> None:
    bot, clock, base = await web_bot(tmp_path, sqlite_url)
    try:
        await open_request(bot, "vraag: loopt er een plan <b>van aanpak</b>?")
        link = link_of((await rows(bot, OutboxMail))[0])
        assert link.startswith(base + "/aanvraag/1/antwoord?t=")
        token = link.split("?t=", 1)[1]
        exp, mac = token.split(".")
        forged_mac = exp + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
        longer = str(int(exp) + 86400) + "." + mac
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as r:
                page = await r.text()
                # the on-call person sees the identifier their house may receive, and the case sketch
                assert r.status == 200 and f"BSN {BSN}" in page and "mishandeling partner in de woning" in page
                assert "&lt;b&gt;van aanpak&lt;/b&gt;" in page  # escaped, never markup
            for bad in (forged_mac, longer, "garbage"):
                async with http.get(f"{base}/aanvraag/1/antwoord", params={"t": bad}) as r:
                    assert r.status == 403 and "ongeldig" in await r.text()
            async with http.get(f"{base}/aanvraag/2/antwoord", params={"t": token}) as r:
                assert r.status == 403  # a token for request 1 does not open request 2
            async with http.post(f"{base}/aanvraag/1/antwoord", data={"t": forged_mac, "naam": "X",
                                                                        "advies": "Iets met reden."}) as r:
                assert r.status == 403
            async with http.post(f"{base}/aanvraag/1/antwoord", data={"t": token, "naam": "", "advies": ""}) as r:
                assert r.status == 400 and "Vul uw naam" in await r.text()
            clock.advance(timedelta(hours=25))
            async with http.get(link) as r:
                assert r.status == 403 and "verlopen" in await r.text()
            async with http.post(f"{base}/aanvraag/1/antwoord", data={"t": token, "naam": "Mw. Jansen",
                                                                        "advies": "Te laat advies."}) as r:
                assert r.status == 403
        markering = await bot.runtime.services.registry.lookup(parse_person_id(BSN))
        assert markering[0].advies == "Oud advies: sepot."
    finally:
        await bot.close()


async def test_answer_through_the_form_in_a_real_browser(tmp_path: Path, sqlite_url: str) -> None:
    browser_or_skip()
    bot, _clock, _base = await web_bot(tmp_path, sqlite_url)
    try:
        await open_request(bot, "vraag: loopt er een plan van aanpak?")
        link = link_of((await rows(bot, OutboxMail))[0])
        advice = "Voorwaardelijk sepot met hulpverlening; het plan van aanpak loopt sinds mei."
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(link)
            assert await page.text_content("#persoon") == f"BSN {BSN}"
            assert "plan van aanpak" in (await page.text_content("#vraag") or "")
            await page.fill("#naam", "Mw. Jansen")
            await page.select_option("#afdoening", "vs")
            await page.fill("#advies", advice)
            await page.click("#verstuur")
            await page.wait_for_selector("#melding")
            assert "Uw advies is doorgegeven" in (await page.text_content("#melding") or "")
            await page.goto(link)  # the link does not work twice
            assert "beantwoord" in (await page.text_content("#melding") or "").lower()
        assert bot.runtime.sender
        await bot.runtime.sender.drain()
        assert "Advies ontvangen (A1)" in bot.out.getvalue() and advice in bot.out.getvalue()
        markering = await bot.runtime.services.registry.lookup(parse_person_id(BSN))
        assert markering[0].advies == advice
        assert "beantwoord" in await bot.say(f"!advies A1 vs {advice}", as_user=DUTY)
    finally:
        await bot.close()


async def test_mail_reaches_the_mailbox_over_smtp(tmp_path: Path, sqlite_url: str, smtp: SmtpServer,
                                                  cert: tuple[Path, Path]) -> None:
    """The request's mail goes through the one mail outbox: STARTTLS with a verified certificate, a Message-ID,
    the body cleared once the relay accepted it, the room told."""
    bot, _clock, _base = await web_bot(tmp_path, sqlite_url, mail=mail_section(smtp.port, cert[0], enabled=True))
    try:
        await open_request(bot)
        assert bot.runtime.mail_worker and bot.runtime.sender
        await bot.runtime.mail_worker.drain()
        await bot.runtime.mail_worker.drain()  # nothing twice
        assert len(smtp.collector.received) == 1
        got = smtp.collector.received[0]
        msg = got.message
        assert got.rcpt == ["terugkoppeling@vh-utrecht.example"]
        assert msg["Subject"].startswith("[ZSM] Advies op aanvraag A1 - antwoord uiterlijk")
        assert msg["Message-ID"] and not msg.is_multipart()  # plain text only, no empty HTML part
        body = msg.get_payload(decode=True).decode()
        assert "/aanvraag/1/antwoord?t=" in body and "VERTROUWELIJK" in body
        # the identifier this house may receive (utrecht: the BSN), never the masked form, and the case sketch
        assert f"(advies op aanvraag A1) over BSN {BSN}," in body and "******" not in body
        assert "Feit: mishandeling partner in de woning" in body and "Voorgenomen besluit: voorwaardelijk sepot" in body
        row = (await rows(bot, OutboxMail))[0]
        assert row.status == "sent" and row.body_text is None
        await bot.runtime.sender.drain()
        assert "adviesaanvraag verzonden aan terugkoppeling@vh-utrecht.example" in bot.out.getvalue()
    finally:
        await bot.close()


async def test_mail_failure_is_retried_not_lost(tmp_path: Path, sqlite_url: str,
                                                cert: tuple[Path, Path]) -> None:
    bot, clock, _base = await web_bot(tmp_path, sqlite_url, mail=mail_section(free_port(), cert[0], enabled=True))
    try:
        await open_request(bot)
        assert bot.runtime.mail_worker
        await bot.runtime.mail_worker.drain()
        row = (await rows(bot, OutboxMail))[0]
        assert row.status == "pending" and row.attempts == 1 and row.last_error and row.body_text
        assert row.next_attempt_at > clock.now()
    finally:
        await bot.close()
