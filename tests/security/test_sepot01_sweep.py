"""Technisch sepot 01 removes everything the bot holds on the person (PROCESS.md: no use by anyone afterwards).

The person goes through every path that stores or says something about them: ``!check`` by BSN and by SKN,
``!instroom``, the API's instroom signal, an advice request with its on-call ping and its ``!advies`` answer (which
writes the registry), a release request and its release, a referral (aanmelding mail with the full BSN) and a
decision with a pending terugkoppeling. After ``!besluit <bsn> 01`` a sweep of every column of every table (found
by introspection, so a table added later is swept too) finds neither the BSN, nor the SKN, nor their masked forms;
the only exception is the veiligheidshuis's own marking as imported into the built-in registry (the
veiligheidshuis's data, not the case's). Every message the bot sent about the person was redacted in its room (the
ZSM room, the on-call room, the release room, the requester's direct room). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import inspect, select, text

from bot.dispatcher import IncomingCommand
from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from config.settings import load_settings
from domain.advies import Markering
from domain.clock import AMSTERDAM, FixedClock
from storage.aanvraag_queries import answered_advice
from storage.registry_models import MarkeringRow
from storage.registry_queries import upsert
from tests.harness.config import (
    VEILIGHEIDSHUIZEN,
    VERANTWOORDELIJKE,
    VRIJGAVE_RUIMTE,
    strict_vh_block,
    user_for,
    write_config,
)

BSN = "123456782"
SKN = "87654321"
OTHER = "111222333"
ONCALL = "!dienst-utrecht:localhost"
DUTY = "@jan.dienst:localhost"
TOKEN = "test-instroom-token-0123456789"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=AMSTERDAM).astimezone(UTC)
NEEDLES = (BSN, SKN, "*" * 6 + BSN[-3:])


class RecordingConsole(ConsoleTransport):
    """The console transport that also remembers what it sent under which event id, to check the redactions."""

    def __init__(self, out: io.StringIO) -> None:
        super().__init__(out)
        self.sent: dict[str, tuple[str, str]] = {}

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        event_id = await super().send(room_id, content, txn_id)
        self.sent[event_id] = (room_id, str(content.get("body", "")) + str(content.get("formatted_body", "")))
        return event_id


def config(tmp_path: Path, database_url: str) -> Path:
    vh_file = tmp_path / "vh.toml"
    vh_file.write_text(VEILIGHEIDSHUIZEN.read_text(encoding="utf-8") + strict_vh_block(), encoding="utf-8")
    users = {user_for(r): r for r in ("ovj", "kpc", "politie", "bereikbaarheidsdienst")}
    users |= {DUTY: "bereikbaarheidsdienst", VERANTWOORDELIJKE: "veiligheidshuis"}
    return write_config(tmp_path, database_url, users=users, sections={
        "referentie": {"veiligheidshuizen": str(vh_file)},
        "http": {"enabled": True, "port": 0},
        "instroom": {"token": TOKEN, "room": CONSOLE_ROOM},
        "aanvraag": {"tik_seconden": 0, "link_sleutel": "test-link-sleutel", "basis_url": "http://127.0.0.1:1",
                     "escalatie_kantoor": ["herinnering:60"], "escalatie_buiten": ["herinnering:15"],
                     "vh.utrecht.doelgroepen": ["huiselijk geweld"], "vh.utrecht.room": ONCALL,
                     "vh.utrecht.termijn": "24u"},
        # the shift-start digest keeps the identifier utrecht may receive on each arrival: removed with it
        "werklijst": {"dienststart": ["utrecht"]},
    })


async def sweep(runtime: Runtime) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table in which a needle occurs, in any column (values as text)."""
    found: list[tuple[str, dict[str, Any]]] = []
    async with runtime.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert {"outgoing_message", "mail_outbox", "advies_aanvraag", "vrijgave", "audit_log",
                "room_members"} <= set(tables)
        for table in tables:
            for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).mappings():  # noqa: S608
                if any(n in str(v) for v in row.values() for n in NEEDLES):
                    found.append((table, dict(row)))
    return found


async def test_sepot_01_leaves_nothing_about_the_person(tmp_path: Path, database_url: str) -> None:
    clock = FixedClock(NOW)
    runtime = Runtime(load_settings(config(tmp_path, database_url)), clock=clock)
    transport = RecordingConsole(io.StringIO())
    await runtime.start(transport)
    assert runtime.dispatcher and runtime.sender and runtime.redactor
    n = 0

    async def say(body: str, who: str) -> str:
        nonlocal n
        n += 1
        before = transport.out.tell()
        await runtime.dispatcher.handle(IncomingCommand(  # type: ignore[union-attr]
            event_id=f"$e{n}", room_id=CONSOLE_ROOM, sender=who, body=body, sent_at=clock.now()))
        await runtime.sender.drain()  # type: ignore[union-attr]
        transport.out.seek(before)
        return transport.out.read()

    try:
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [Markering(
                bsn=BSN, skn=SKN, geboortedatum=date(1990, 1, 1), veiligheidshuis="utrecht",
                doelgroep="huiselijk geweld", status="actief", advies="Oud advies: taakstraf.",
                geadviseerde_afdoening="TS", advies_datum=date(2026, 5, 1), regisseur="mw. De Groot"),
                Markering(bsn=BSN, skn=SKN, geboortedatum=date(1990, 1, 1), veiligheidshuis="strikt",
                          doelgroep="veelpleger", status="actief", advies="Alleen na vrijgave.",
                          geadviseerde_afdoening=None, advies_datum=date(2026, 5, 1), regisseur="T. Strikt")],
                clock.now())
        ovj, kpc = user_for("ovj"), user_for("kpc")
        assert "Bekend bij 2" in await say(f"!check {BSN}", ovj)
        assert "Bekend bij 2" in await say(f"!check skn:{SKN}", ovj)
        assert "bekend" in await say(f"!instroom {BSN} {OTHER}", kpc)
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{runtime.http_port}/api/instroom", json={"ids": [BSN], "bron": "BOSZ"},
                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
        await runtime.sender.drain()
        start = (NOW - timedelta(days=1)).astimezone(AMSTERDAM)
        end = start + timedelta(days=6)
        assert "Dienst utrecht" in await say(f"!dienst utrecht {DUTY} {start:%d-%m-%Y %H:%M} {end:%d-%m-%Y %H:%M}",
                                             kpc)
        sketch = "feit: mishandeling partner in de woning voornemen: voorwaardelijk sepot"
        assert "Aanvraag A1" in await say(f"!aanvraag {BSN} {sketch}", kpc)
        assert "doorgegeven" in await say("!advies A1 vs Voorwaardelijk sepot met hulpverlening; plan loopt.", DUTY)
        assert "V1" in await say(f"!vraag-vrijgave {BSN} reden: voorgeleiding", ovj)
        assert "vrijgegeven" in await say("!vrijgeven V1", VERANTWOORDELIJKE)
        assert "aangemeld" in (await say(f"!aanmelden {BSN} Amersfoort vermoeden van schulden", kpc)).lower()
        decided = await say(f"!besluit {BSN} vs zaak: 2026-1", ovj)
        assert "Besluit" in decided or "besluit" in decided
        assert await sweep(runtime), "the scenario must have stored the person somewhere"
        assert any(t == "binnenkomst" and row["identificatie"] == f"BSN {BSN}" for t, row in await sweep(runtime))

        removed = await say(f"!besluit {BSN} 01 zaak: 2026-1", ovj)
        assert "Technisch sepot 01" in removed and not any(x in removed for x in NEEDLES)
        assert "uit de rooms verwijderd" in removed
        await runtime.redactor.drain()
        await runtime.sender.drain()

        left = await sweep(runtime)
        imported = [row for table, row in left if table == "markering" and row["bron"] != "advies op aanvraag"]
        assert [t for t, row in left if row not in imported] == [], left
        async with runtime.sessions() as s:
            marks = list((await s.execute(select(MarkeringRow).where(MarkeringRow.bsn == BSN))).scalars())
        assert all(m.bron != "advies op aanvraag" for m in marks)  # the !advies answer left the registry
        async with runtime.sessions() as s:  # and its coded afdoening, kept on the request, went with the request
            assert await answered_advice(s, [BSN, SKN], "beantwoord") == []

        about = {e for e, (_, body) in transport.sent.items() if any(x in body for x in NEEDLES)}
        rooms = {transport.sent[e][0] for e in about}
        assert {CONSOLE_ROOM, ONCALL, VRIJGAVE_RUIMTE} <= rooms
        assert about <= set(transport.redacted), sorted(transport.sent[e] for e in about - set(transport.redacted))
    finally:
        await runtime.close()
