"""Hostile and random input: no crash, no escape into HTML, no identifier echoed in full."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import default_table
from commands.parsing import parse_args, split_command
from domain.identifiers import InvalidIdentifier, parse_person_id
from services.reply import Bold, Code, Doc
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot

KEYWORDS = frozenset({"zaak", "motivering", "vraag", "vh"})


@given(st.text(max_size=300))
def test_command_splitting_never_fails(body: str) -> None:
    name, rest = split_command(body)
    assert name == name.lower() and " " not in name
    args = parse_args(rest, KEYWORDS)
    assert set(args.named) <= KEYWORDS
    assert all(w.strip() == w and w for w in args.words)


@given(st.text(max_size=40))
def test_identifier_parsing_fails_only_with_a_dutch_message(text: str) -> None:
    try:
        person = parse_person_id(text)
    except InvalidIdentifier as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 6:
            assert digits not in message, "an identifier typed wrong is not echoed in full"
        return
    assert person.kind in ("bsn", "skn") and person.value.isdigit()
    assert person.value not in person.masked or person.kind == "skn"


@given(st.text(max_size=200), st.text(max_size=50))
def test_reply_html_escapes_everything(plain: str, bold: str) -> None:
    reply = Doc().line(plain, Bold(bold), Code(plain)).bullets([(plain,)]).build()
    assert reply.html.startswith(f"<p>{html.escape(plain)}<strong>{html.escape(bold)}</strong>")
    stripped = reply.html
    for tag in ("<p>", "</p>", "<strong>", "</strong>", "<code>", "</code>", "<ul>", "</ul>", "<li>", "</li>"):
        stripped = stripped.replace(tag, "")
    assert "<" not in stripped and ">" not in stripped


@pytest.fixture(scope="module")
def looped_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, ConsoleBot]]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    loop = asyncio.new_event_loop()
    bot = loop.run_until_complete(ConsoleBot.start(write_config(
        tmp, f"sqlite+aiosqlite:///{tmp / 'bot.db'}", sections={"matrix": {"commands_per_minute": 0}})))
    yield loop, bot
    loop.run_until_complete(bot.close())
    loop.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=120), role=st.sampled_from(["ovj", "politie", "kpc", "beheerder"]))
def test_any_command_gets_an_answer_never_a_crash(looped_bot: tuple[asyncio.AbstractEventLoop, ConsoleBot],
                                                  body: str, role: str) -> None:
    loop, bot = looped_bot
    reply = loop.run_until_complete(bot.say("!" + body, as_role=role))
    outcome = bot.outcomes[-1]
    assert outcome.status != "failed", (body, reply)
    if outcome.status != "ignored":
        assert reply, "a command never meets silence"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(default_table().names()), args=st.text(max_size=100),
       role=st.sampled_from(["ovj", "kpc", "veiligheidshuis", "beheerder"]))
def test_every_command_with_hostile_arguments_answers(looped_bot: tuple[asyncio.AbstractEventLoop, ConsoleBot],
                                                      name: str, args: str, role: str) -> None:
    """Each command of the table, not just unknown words: arbitrary arguments get a Dutch answer, never a crash."""
    loop, bot = looped_bot
    reply = loop.run_until_complete(bot.say(f"!{name} {args}", as_role=role))
    outcome = bot.outcomes[-1]
    assert outcome.status != "failed", (name, args, reply)
    assert reply, "a command never meets silence"
