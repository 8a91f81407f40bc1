"""``!aanvraag`` says where the mail to the central mailbox is: never "gemaild" while it waits in the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.smtp_helpers import mail_section
from tests.test_aanvraag import BSN, SKETCH, seed, start


@pytest.mark.parametrize(("enabled", "expected"), [
    (False, "de mail aan de centrale mailbox wacht in de outbox: mail staat uit in deze installatie (zie !outbox)."),
    (True, "de mail aan de centrale mailbox staat in de outbox en gaat zo uit (zie !outbox)."),
])
async def test_aanvraag_reply_says_honestly_where_the_mail_is(tmp_path: Path, sqlite_url: str,
                                                             cert: tuple[Path, Path], enabled: bool,
                                                             expected: str) -> None:
    # A closed loopback port: with mail enabled the outbox will try later; the reply is about the queue, not delivery.
    bot, _ = await start(tmp_path, sqlite_url, mail=mail_section(9, cert[0], enabled=enabled))
    try:
        await seed(bot)
        reply = await bot.say(f"!aanvraag {BSN} {SKETCH}", as_role="kpc")
        assert "Aanvraag A" in reply, reply
        assert expected in reply and "gemaild" not in reply, reply
        outbox = await bot.say("!outbox", as_role="kpc")
        assert "1 mail(s) niet verzonden" in outbox and "aanvraag aan utrecht" in outbox, outbox
        if not enabled:  # what the reply says is what !outbox shows (with mail on, the relay may be tried already)
            assert "aanvraag aan utrecht: wacht" in outbox, outbox
            # and it promises no attempt that will not come
            assert "volgende poging" not in outbox, outbox
            assert outbox.rstrip().endswith("Mail staat uit in deze installatie ([mail] enabled = false): niets gaat "
                                            "uit tot de beheerder mail aanzet."), outbox
    finally:
        await bot.close()
