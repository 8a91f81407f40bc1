"""Pure rules of advies op aanvraag: terms over weekends and Dutch public holidays, states, chain, config."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from config.aanvraag import parse_config
from domain import aanvraag as rules
from domain.clock import AMSTERDAM, DayError, format_local, parse_day
from domain.errors import ConfigError

CAL = rules.WorkCalendar()


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=AMSTERDAM).astimezone(UTC)


def test_duration_terms_are_plain_durations_and_stored_in_utc() -> None:
    start = local(2026, 11, 20, 22, 0)  # Friday night
    deadline = rules.parse_term("24u").deadline(start, CAL)
    assert deadline.tzinfo == UTC
    assert deadline - start == timedelta(hours=24)
    assert rules.parse_term("5d").deadline(start, CAL) - start == timedelta(days=5)
    assert format_local(deadline) == "21-11-2026 22:00"


def test_working_days_skip_weekend_and_dutch_public_holidays() -> None:
    # Thursday 24 December 2026: Christmas (Fri 25, Sat 26) and the weekend follow.
    start = local(2026, 12, 24, 11, 0)
    assert CAL.is_holiday(local(2026, 12, 25, 12).astimezone(AMSTERDAM).date())
    one = rules.parse_term("1wd").deadline(start, CAL)
    assert one.astimezone(AMSTERDAM) == datetime(2026, 12, 28, 17, 0, tzinfo=AMSTERDAM)
    two = rules.parse_term("2 werkdagen").deadline(start, CAL)
    assert two.astimezone(AMSTERDAM) == datetime(2026, 12, 29, 17, 0, tzinfo=AMSTERDAM)


def test_next_working_day_13_00_over_kings_day_and_configured_closed_day() -> None:
    # Friday 24 April 2026; Monday 27 April is Koningsdag.
    start = local(2026, 4, 24, 16, 0)
    term = rules.parse_term("volgende werkdag 13:00")
    assert term.deadline(start, CAL).astimezone(AMSTERDAM) == datetime(2026, 4, 28, 13, 0, tzinfo=AMSTERDAM)
    closed = rules.WorkCalendar(closed_days=frozenset({datetime(2026, 4, 28).date()}))
    assert term.deadline(start, closed).astimezone(AMSTERDAM) == datetime(2026, 4, 29, 13, 0, tzinfo=AMSTERDAM)


def test_deadline_across_dst_change_keeps_local_clock_time() -> None:
    # Saturday 24 October 2026; clocks go back on Sunday 25 October.
    start = local(2026, 10, 24, 10, 0)
    nwd = rules.parse_term("vwd 13:00").deadline(start, CAL)
    assert nwd.astimezone(AMSTERDAM).time() == time(13, 0)
    assert nwd.astimezone(AMSTERDAM).date().isoformat() == "2026-10-26"


def test_office_hours_follow_configured_days_and_hours() -> None:
    assert CAL.in_office_hours(local(2026, 11, 23, 9, 0))  # Monday
    assert not CAL.in_office_hours(local(2026, 11, 23, 17, 0))
    assert not CAL.in_office_hours(local(2026, 11, 21, 11, 0))  # Saturday
    assert not CAL.in_office_hours(local(2026, 12, 25, 11, 0))  # Christmas
    weekend_too = rules.WorkCalendar(workdays=frozenset(range(7)))
    assert weekend_too.in_office_hours(local(2026, 11, 21, 11, 0))


@pytest.mark.parametrize("text,expected", [
    ("8d", "hoogstens 7 dagen"), ("0u", "langer zijn dan nul"), ("6wd", "1 tot 5 werkdagen"),
    ("morgen", "niet herkend"), ("volgende werkdag 25:00", "geen geldige tijd"),
])
def test_bad_terms_are_refused_in_dutch(text: str, expected: str) -> None:
    with pytest.raises(rules.TermError, match=expected):
        rules.parse_term(text)


def test_time_left_text() -> None:
    now = local(2026, 11, 23, 10, 0)
    assert rules.describe_left(now + timedelta(hours=3, minutes=20), now) == "nog 3 u 20 min"
    assert rules.describe_left(now + timedelta(days=2, hours=4), now) == "nog 2 d 4 u"
    assert rules.describe_left(now + timedelta(minutes=5), now) == "nog 5 min"
    assert rules.describe_left(now - timedelta(minutes=1), now) == "verlopen"


def test_state_machine() -> None:
    assert rules.can_move(rules.OPEN, rules.ACKNOWLEDGED)
    assert rules.can_move(rules.ACKNOWLEDGED, rules.ANSWERED)
    assert rules.can_move(rules.OPEN, rules.EXPIRED)
    assert not rules.can_move(rules.ANSWERED, rules.EXPIRED)
    assert not rules.can_move(rules.EXPIRED, rules.ANSWERED)
    assert not rules.can_move(rules.ACKNOWLEDGED, rules.ACKNOWLEDGED)
    assert "al bevestigd" in rules.refusal(rules.ACKNOWLEDGED, rules.ACKNOWLEDGED)
    assert "verlopen" in rules.refusal(rules.EXPIRED, rules.ANSWERED)


def test_status_enum_keeps_the_stored_values_and_its_transitions() -> None:
    S = rules.AanvraagStatus
    assert [s.value for s in S] == ["open", "bevestigd", "beantwoord", "ingetrokken", "verlopen"]
    assert S("verlopen") is S.EXPIRED and S.OPEN == "open"  # a stored string reads back as the member
    allowed = {(a, b) for a in S for b in S if a.can_move_to(b)}
    assert allowed == {(S.OPEN, S.ACKNOWLEDGED), (S.OPEN, S.ANSWERED), (S.OPEN, S.CANCELLED), (S.OPEN, S.EXPIRED),
                       (S.ACKNOWLEDGED, S.ANSWERED), (S.ACKNOWLEDGED, S.CANCELLED), (S.ACKNOWLEDGED, S.EXPIRED)}
    assert {s for s in S if s.final} == {S.ANSWERED, S.CANCELLED, S.EXPIRED}
    assert {s for s in S if not s.final} == rules.ACTIVE
    assert all(rules.can_move(a.value, b.value) == a.can_move_to(b) for a in S for b in S)  # plain strings too
    assert S.OPEN.label == "open, nog niet bevestigd" and S.EXPIRED.label == "verlopen zonder advies"


def test_chain_plan_with_repeats_stops_before_the_deadline() -> None:
    chain = rules.Chain(rules.parse_chain(["herinnering:30", "backup:60", "ruimte:90"], "x"),
                        repeat_every=timedelta(minutes=60), repeat_times=5)
    opened = local(2026, 11, 23, 10, 0)
    plan = chain.plan(opened, opened + timedelta(hours=4))
    assert [(k, (t - opened).total_seconds() / 60) for k, t in plan] == [
        ("herinnering", 30), ("backup", 60), ("ruimte", 90), ("ruimte", 150), ("ruimte", 210)]
    assert rules.Chain.from_json(chain.to_json()) == chain


def test_config_from_section_and_vh_extra() -> None:
    cfg = parse_config(
        {"kantoortijden": "09:00-17:30", "escalatie_buiten": ["herinnering:10", "ruimte:20"],
         "vh": {"utrecht": {"doelgroepen": ["Huiselijk geweld"], "termijn": "2wd", "room": "!oc:localhost"}}},
        [("eemland", {"aanvraag_doelgroepen": ["High Impact Crime"], "aanvraag_teamleider": "@tl:localhost"}),
         ("zeeland", {"iets_anders": 1})],
    )
    assert cfg.vh("utrecht").prioritised("huiselijk geweld")
    assert not cfg.vh("utrecht").prioritised("jeugd")
    assert cfg.term_for("utrecht").kind == "werkdagen"
    assert cfg.term_for("eemland").text == "24u"
    assert cfg.vh("eemland").teamleider == "@tl:localhost"
    assert cfg.vh("zeeland").doelgroepen == ()
    saturday = local(2026, 11, 21, 11)
    assert [s.kind for s in cfg.chain_for("utrecht", saturday).steps] == ["herinnering", "ruimte"]
    assert [s.kind for s in cfg.chain_for("utrecht", local(2026, 11, 23, 10)).steps] == [
        "herinnering", "backup", "teamleider"]


@pytest.mark.parametrize("section,needle", [
    ({"kantoortijden": "17:00-08:00"}, "aanvraag.kantoortijden"),
    ({"werkdagen": ["maandag", "xx"]}, "aanvraag.werkdagen"),
    ({"escalatie_kantoor": ["bellen:10"]}, "aanvraag.escalatie_kantoor[0]"),
    ({"escalatie_kantoor": ["herinnering:30", "backup:20"]}, "oplopen"),
    ({"termijn": "9d"}, "aanvraag.termijn"),
    ({"vh": {"utrecht": {"room": "geen-room"}}}, "aanvraag.vh.utrecht.room"),
    ({"mail_tls": "misschien"}, "aanvraag.mail_tls"),
])
def test_config_errors_name_the_key(section: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_config(section, [])


def test_parse_moments_and_refs() -> None:
    got = rules.parse_moments(["23-11-2026", "08:00", "2026-11-24T08:30"])
    assert [format_local(g) for g in got] == ["23-11-2026 08:00", "24-11-2026 08:30"]
    with pytest.raises(rules.MomentError, match="geen tijdstip"):
        rules.parse_moments(["morgen"])
    with pytest.raises(rules.MomentError, match="bestaande datum"):
        rules.parse_moments(["31-02-2026"])
    got = rules.parse_moments(["24-11-2026T08.30", "2026-11-25", "1-2-2027", "7:05"])
    assert [format_local(g) for g in got] == ["24-11-2026 08:30", "25-11-2026 00:00", "01-02-2027 07:05"]
    for typed, why in (("2026-11-24T", "geen tijdstip"), ("24-11-2026T8", "geen tijdstip"), ("T08:00", "geen tijdstip"),
                       ("24-11-26", "geen tijdstip"), ("24-11-2026T25:00", "bestaande datum of tijd"),
                       ("2026-13-01", "bestaande datum of tijd")):
        with pytest.raises(rules.MomentError, match=why):
            rules.parse_moments([typed])
    assert rules.parse_ref("A12") == 12
    assert rules.parse_ref("a-7") == 7
    assert rules.parse_ref("x") is None


def test_a_typed_day_is_read_one_way() -> None:
    """``!dienst``'s moments and ``!informeren``'s day read a day the same way (``domain.clock.parse_day``)."""
    assert parse_day("22-11-2026") == parse_day("2026-11-22") == parse_day(" 22-11-2026 ") == date(2026, 11, 22)
    with pytest.raises(DayError) as err:
        parse_day("gisteren")
    assert str(err.value) == "'gisteren' is geen datum. Schrijf dd-mm-jjjj (of jjjj-mm-dd)." and err.value.exists
    with pytest.raises(DayError) as err:
        parse_day("29-02-2027")
    assert str(err.value) == "'29-02-2027' is geen bestaande datum." and not err.value.exists
