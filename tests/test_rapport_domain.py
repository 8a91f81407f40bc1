import itertools
from datetime import UTC, datetime, timedelta

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


async def test_coverage_adds_up_over_the_pieces_of_a_bucket(database_url: str) -> None:
    """2026-Q4 in month buckets, read in pieces of a week: November is five pieces. Arrivals and decisions put in
    different pieces of November, so a person's first arrival in a scope is only known once the pieces are added
    up. A: weeks 1 and 4 at utrecht, decided in week 2: fed back. B: week 1 at utrecht, week 3 at twente, decided in
    week 2: fed back at utrecht and in the total, not at twente (the decision came before B arrived there). C: weeks
    2 and 4 at utrecht, only an old decision and a withdrawn one in week 4: not fed back. D: week 4 at twente,
    decided an hour later: fed back. So November and the quarter: 4 persons, 3 fed back; utrecht 3 of whom 2,
    twente 2 of whom 1."""
    from sqlalchemy import insert

    from storage.besluit_models import BesluitRow
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.rapport_queries import compute_rapport
    from storage.werklijst_models import Binnenkomst

    nov = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def week(n: int, hours: int = 0) -> datetime:
        return nov + timedelta(days=7 * (n - 1), hours=hours)

    def came(subject: str, vh: str, at: datetime) -> dict[str, object]:
        return {"subject": subject, "masked": "BSN ******123", "veiligheidshuis": vh, "via": "check",
                "came_in_at": at}

    def decided(subject: str, at: datetime, status: str = "actief") -> dict[str, object]:
        return {"subject": subject, "zaak": "", "afdoening": "osb", "reclassering": False, "mondeling": False,
                "status": status, "decided_by": "@ovj:test", "role": "ovj", "decided_at": at,
                "event_id": f"${subject}{at.isoformat()}", "room_id": "!r:test"}

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as s, s.begin():
            await s.execute(insert(Binnenkomst), [
                came("A", "utrecht", week(1)), came("A", "utrecht", week(4)),
                came("B", "utrecht", week(1)), came("B", "twente", week(3)),
                came("C", "utrecht", week(2)), came("C", "utrecht", week(4)),
                came("D", "twente", week(4)),
            ])
            await s.execute(insert(BesluitRow), [
                decided("A", week(2)), decided("B", week(2)), decided("C", week(-20)),
                decided("C", week(4, 1), status="ingetrokken"), decided("D", week(4, 1)),
            ])
        async with sessions() as s:
            q4 = await compute_rapport(s, parse_period("2026-Q4"), None, ("utrecht", "twente"))
            utrecht = await compute_rapport(s, parse_period("2026-Q4"), "utrecht", ("utrecht", "twente"))
    finally:
        await engine.dispose()
    assert [b for b, _ in pieces(buckets(parse_period("2026-Q4")), 7)].count(1) == 5
    assert (q4.totaal.personen_bekend, q4.totaal.personen_teruggekoppeld) == (4, 3)
    assert [(p.label, c.personen_bekend, c.personen_teruggekoppeld) for p, c in q4.reeks] == [
        ("2026-10", 0, 0), ("2026-11", 4, 3), ("2026-12", 0, 0)]
    assert {k: (c.personen_bekend, c.personen_teruggekoppeld) for k, c in q4.per_vh} == {
        "utrecht": (3, 2), "twente": (2, 1)}
    assert (utrecht.totaal.personen_bekend, utrecht.totaal.personen_teruggekoppeld) == (3, 2)
