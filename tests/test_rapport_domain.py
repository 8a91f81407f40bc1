from datetime import UTC, datetime

import pytest

from domain.rapport import PeriodError, parse_period, small_count


def test_small_count() -> None:
    assert [small_count(n) for n in (0, 1, 4, 5, 12)] == ["0", "< 5", "< 5", "5", "12"]


def test_month_in_local_time() -> None:
    p = parse_period("2026-10")
    assert p.start == datetime(2026, 9, 30, 22, tzinfo=UTC)  # CEST
    assert p.end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # CET after 25 Oct


def test_quarter_week_range() -> None:
    q = parse_period("2026-q4")
    assert (q.label, q.end) == ("2026-Q4", datetime(2026, 12, 31, 23, tzinfo=UTC))
    w = parse_period("2026-W43")
    assert w.start == datetime(2026, 10, 18, 22, tzinfo=UTC)
    r = parse_period("2026-10-01..2026-10-31")
    assert (r.start, r.end) == (parse_period("2026-10").start, parse_period("2026-10").end)


@pytest.mark.parametrize("bad", ["2026-13", "2026-Q5", "oktober", "2026-10-31..2026-10-01", "2026-W60"])
def test_bad_period(bad: str) -> None:
    with pytest.raises(PeriodError, match="Typ een periode"):
        parse_period(bad)
