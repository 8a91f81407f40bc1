"""The per-user rate limit survives a takeover: the instance that takes over starts each user's bucket from that
user's last minute in the inbox (bot/ratelimit.py says why the bucket itself stays in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.ratelimit import TokenBucket
from domain.clock import FixedClock
from storage import inbox
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.harness.config import user_for, write_config
from tests.harness.console import ConsoleBot

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LIMITED = "U geeft te veel commando's kort na elkaar"


async def test_a_takeover_does_not_reset_the_window(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, sections={"matrix": {"commands_per_minute": 3}})
    active = await ConsoleBot.start(config, clock=FixedClock(START))
    try:
        for _ in range(3):
            assert "pong" in (await active.say("!ping", as_role="ovj")).lower()
        assert LIMITED in await active.say("!ping", as_role="ovj")
    finally:
        await active.close()  # the active instance is gone; another process takes over on the same database

    clock = FixedClock(START + timedelta(seconds=5))
    successor = await ConsoleBot.start(config, clock=clock)
    try:
        # A fresh bucket would allow three more; the successor knows the minute is used up.
        assert LIMITED in await successor.say("!ping", as_role="ovj")
        # Another user's minute is their own.
        assert "pong" in (await successor.say("!ping", as_role="kpc")).lower()
    finally:
        await successor.close()

    # A minute later the user may again, at a third instance too.
    later = await ConsoleBot.start(config, clock=FixedClock(START + timedelta(seconds=70)))
    try:
        assert "pong" in (await later.say("!ping", as_role="ovj")).lower()
    finally:
        await later.close()


async def test_counted_since_counts_one_users_recent_commands_but_not_the_limited(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        me, other = user_for("ovj"), user_for("kpc")
        rows = [("$1", me, "handled", START - timedelta(seconds=10)),
                ("$2", me, "refused", START - timedelta(seconds=30)),
                ("$3", me, "limited", START - timedelta(seconds=5)),      # not counted: the bucket did not pay
                ("$4", me, "handled", START - timedelta(seconds=61)),     # outside the window
                ("$5", other, "handled", START - timedelta(seconds=1))]   # someone else
        async with sessions() as s, s.begin():
            for event_id, sender, outcome, at in rows:
                inbox.claim(s, event_id=event_id, room_id="!r:localhost", sender=sender, command="ping",
                            outcome=outcome, received_at=at, handled_at=at)
        async with sessions() as s:
            assert await inbox.counted_since(s, me, START - timedelta(seconds=60)) == 2
            assert await inbox.counted_since(s, other, START - timedelta(seconds=60)) == 1
            assert await inbox.counted_since(s, user_for("griffie"), START - timedelta(seconds=60)) == 0
    finally:
        await engine.dispose()


def test_seeded_bucket_starts_from_the_recent_commands() -> None:
    bucket = TokenBucket(per_minute=3)
    assert not bucket.knows("u")
    bucket.seed("u", recent=2, now=0.0)
    assert bucket.knows("u")
    assert bucket.take("u", now=0.0) == 0.0
    assert bucket.take("u", now=0.0) == 20.0  # one token refills in 60 / 3 seconds
    bucket.seed("v", recent=9, now=0.0)  # more than the limit (a burst before): empty, not negative
    assert bucket.take("v", now=20.0) == 0.0
    assert TokenBucket(per_minute=0).knows("anyone")  # limit off: nothing to seed
