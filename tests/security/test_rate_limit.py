"""A per-user command rate limit with a Dutch answer when it bites."""

from __future__ import annotations

from pathlib import Path

from bot.ratelimit import TokenBucket
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot


def test_bucket_refills_over_time() -> None:
    bucket = TokenBucket(per_minute=2)
    assert bucket.take("a", now=0) == 0 and bucket.take("a", now=0) == 0
    wait = bucket.take("a", now=0)
    assert 29 < wait <= 30
    assert bucket.take("b", now=0) == 0, "limits are per user"
    assert bucket.take("a", now=31) == 0


async def test_flood_is_refused_politely_per_user(tmp_path: Path, sqlite_url: str) -> None:
    bot = await ConsoleBot.start(write_config(tmp_path, sqlite_url, sections={"matrix": {"commands_per_minute": 3}}))
    try:
        replies = [await bot.say("!ping", as_role="kpc") for _ in range(4)]
        assert replies[:3] == ["pong"] * 3
        assert "te veel commando's" in replies[3] and "seconden" in replies[3]
        assert bot.outcomes[-1].status == "limited"
        assert await bot.say("!ping", as_role="ovj") == "pong"
    finally:
        await bot.close()

