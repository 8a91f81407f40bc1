"""The main flows at DEBUG: no BSN, name or advice text may reach a log line, in any formatter."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from bot.logs import setup_logging
from tests.harness.markings import bsn, markering, seed, start_bot

NAMES = ("Jansen-Verbeek", "Pietersen-Aydin")
ADVICE = "Voorwaardelijk sepot met bijzondere voorwaarde Aydin-traject"


async def test_main_flows_at_debug_log_no_personal_data(tmp_path: Path, sqlite_url: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    handlers = []
    for fmt in ("json", "text"):
        setup_logging("DEBUG", fmt, stream)  # the bot's own set-up, as `zsm-bot run` does it
        handlers.extend(root.handlers)
    root.handlers[:] = handlers
    drivers = {name: logging.getLogger(name).level for name in ("aiosqlite", "sqlalchemy.engine", "nio")}
    for name in drivers:
        logging.getLogger(name).setLevel(logging.DEBUG)  # even when someone turns the drivers up
    known, minor, unknown = bsn(11), bsn(12), bsn(13)
    try:
        bot = await start_bot(tmp_path, sqlite_url)
        try:
            await seed(bot, markering(known, "utrecht", regisseur=f"{NAMES[0]}, 030-1234567", advies=ADVICE),
                       markering(minor, "twente", regisseur=f"{NAMES[1]}, 053-1234567", advies=ADVICE,
                                 geboortedatum=markering(minor).advies_datum.replace(year=2012)))
            replies = [
                await bot.say(f"!check {known} zaak: 10/123456-26", as_role="ovj"),
                await bot.say(f"!check {minor}", as_role="kpc"),
                await bot.say(f"!check {unknown}", as_role="kpc"),
                await bot.say(f"!check {known}", as_role="politie"),
                await bot.say(f"!instroom {known} {unknown} {minor}", as_role="kpc"),
                await bot.say(f"!check {known[:-1]}0", as_role="ovj"),
                await bot.say(f"!chek {known}", as_role="ovj"),
                await bot.say(f"!check {known}", as_user="@stranger:localhost"),
            ]
        finally:
            await bot.close()
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in drivers.items():
            logging.getLogger(name).setLevel(level)
    assert ADVICE in replies[0], "the flow really showed the data in the room"
    logged = stream.getvalue()
    assert logged.count("\n") > 10, "logging at DEBUG was really on"
    for secret in (known, minor, unknown, known[:-1] + "0", *NAMES, ADVICE, "10/123456-26"):
        assert secret not in logged, f"personal data in the log: {secret[:4]}..."
