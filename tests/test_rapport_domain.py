import itertools
from datetime import UTC, datetime

import pytest

from domain.rapport import PeriodError, buckets, parse_period, pieces, small_count


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


def test_pieces_cover_each_bucket_in_weeks_on_local_midnights() -> None:
    """October 2026 as one bucket of 31 days, with the change to winter time on the 25th: four pieces of seven days
    and one of three, end to end, the one over the change 169 hours long."""
    october = parse_period("2026-10")
    cut = pieces([october], 7)
    assert [b for b, _ in cut] == [0, 0, 0, 0, 0]
    assert cut[0][1].start == october.start and cut[-1][1].end == october.end
    assert all(a.end == b.start for (_, a), (_, b) in itertools.pairwise(cut))
    hours = [(p.end - p.start).total_seconds() / 3600 for _, p in cut]
    assert hours == [168, 168, 168, 169, 72]
    # A year in its month buckets: every piece inside its own bucket, the bucket indexes in order.
    year = buckets(parse_period("2026-01-01..2026-12-31"))
    cut = pieces(year, 7)
    assert all(year[b].start <= p.start < p.end <= year[b].end for b, p in cut)
    assert [b for b, _ in cut] == sorted(b for b, _ in cut) and {b for b, _ in cut} == set(range(12))
    assert (cut[0][1].start, cut[-1][1].end) == (year[0].start, year[-1].end)
    assert len(cut) == 11 * 5 + 4  # February 2026: four weeks exactly
