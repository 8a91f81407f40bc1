"""The decision and mail lifecycles (domain.lifecycles) and the identifier a veiligheidshuis may receive
(domain.veiligheidshuizen.mail_identifier): pure rules, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import UserError
from domain.identifiers import PersonId
from domain.lifecycles import MAIL_OPEN, BesluitStatus, MailStatus, may_become, may_have_gone
from domain.veiligheidshuizen import Veiligheidshuis, mail_identifier


def test_values_are_the_stored_strings() -> None:
    assert [s.value for s in BesluitStatus] == ["actief", "vervangen", "ingetrokken"]
    assert [s.value for s in MailStatus] == ["concept", "pending", "sent", "dead", "vervallen"]
    assert MailStatus.SENT == "sent" and f"{BesluitStatus.ACTIEF}" == "actief"


def test_decision_steps() -> None:
    assert may_become("actief", BesluitStatus.VERVANGEN) and may_become("actief", BesluitStatus.INGETROKKEN)
    assert not may_become("vervangen", BesluitStatus.ACTIEF)
    assert not may_become("ingetrokken", BesluitStatus.VERVANGEN)
    assert not may_become("onbekend", BesluitStatus.VERVANGEN)


def test_mail_steps() -> None:
    assert may_become("concept", MailStatus.PENDING)      # !outbox bevestig
    assert may_become("pending", MailStatus.SENT) and may_become("pending", MailStatus.DEAD)
    assert may_become("pending", MailStatus.PENDING)      # a failed attempt, rescheduled
    assert may_become("dead", MailStatus.PENDING)         # !outbox opnieuw
    assert not may_become("sent", MailStatus.VERVALLEN)   # a mail that went cannot be taken back
    assert not may_become("vervallen", MailStatus.PENDING)
    assert not may_become("concept", MailStatus.SENT)     # a concept is confirmed first
    assert [s for s in MailStatus if may_become(s, MailStatus.VERVALLEN)] == list(MAIL_OPEN)
    # cancelled while the relay had it, which then accepted it: it went, and nothing else follows
    assert may_become("vervallen", MailStatus.SENT)
    assert [s for s in MailStatus if may_become("vervallen", s)] == [MailStatus.SENT]


def test_a_mail_may_have_gone_when_sent_or_held_by_a_relay_round() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    later, earlier = now + timedelta(seconds=30), now - timedelta(seconds=1)
    assert may_have_gone("sent", None, now)
    assert may_have_gone("pending", later, now)          # claimed for a round that is running
    assert not may_have_gone("pending", earlier, now)    # that round's claim ran out: its sender is gone
    assert not may_have_gone("pending", None, now)       # waits for its window or its next attempt
    assert not may_have_gone("concept", later, now)
    assert may_have_gone("vervallen", later, now)        # cancelled while a round held it
    assert not may_have_gone("vervallen", None, now)     # cancelled before a round took it


def house(identificatie: tuple[str, ...] = ("bsn", "skn")) -> Veiligheidshuis:
    return Veiligheidshuis(key="utrecht", naam="Veiligheidshuis Utrecht", regio="Midden-Nederland",
                           mailbox="t@vh.example", gemeenten=("Utrecht",), identificatie=identificatie)


def test_identifier_per_veiligheidshuis() -> None:
    bsn, skn = PersonId("bsn", "123456782"), PersonId("skn", "12345678")
    assert mail_identifier(house(), bsn, None) == "BSN 123456782"          # default: BSN and SKN
    assert mail_identifier(house(), skn, None) == "SKN 12345678"
    skn_only = house(identificatie=("skn",))
    assert mail_identifier(skn_only, bsn, "87654321") == "SKN 87654321"     # the known SKN instead of the BSN
    with pytest.raises(UserError, match="Veiligheidshuis Utrecht mag geen BSN ontvangen"):
        mail_identifier(skn_only, bsn, None)
    assert mail_identifier(house(identificatie=("bsn",)), bsn, None) == "BSN 123456782"
