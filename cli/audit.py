"""``zsm-bot audit verify [--witness FILE]... [--head SEQ:MAC]`` and
``zsm-bot audit export --persoon <bsn> | --gebruiker <user>``.

Verify checks every MAC with the audit key and holds the chain against witnesses: the ``audit witness`` log lines
the bot writes (JSON or text; any line carrying ``audit_seq`` and ``audit_mac``, so the witness room's messages
pasted into a file work as well) or one head given by hand. Each finding is one Dutch line naming the record or
the witness. The inzage of the audit trail for the privacy officer; the queries are ``storage.audit_queries``."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.runtime import audit_key, default_var_dir
from config.reader import os_reason
from config.settings import Settings
from domain.identifiers import InvalidIdentifier, parse_person_id
from domain.regimes import regime_of
from storage.audit import Auditor, Witness, verify_chain
from storage.audit_queries import records_about, records_by
from storage.db import create_engine, session_factory
from storage.migrate import up_to_date
from storage.models import AuditRecord

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("actie", choices=["verify", "export"], help="verify: controleer de keten; export: inzage")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--persoon", help="BSN of SKN: alles wat over deze persoon is vastgelegd")
    who.add_argument("--gebruiker", help="Matrix-id: alles wat deze gebruiker deed")
    p.add_argument("--witness", action="append", default=[], metavar="BESTAND",
                   help="verify: logbestand met 'audit witness'-regels (kop van de keten buiten de database)")
    p.add_argument("--head", action="append", default=[], metavar="SEQ:MAC",
                   help="verify: een gepubliceerde kop, volgnummer en MAC, bv. 1234:ab12...")


_SEQ = re.compile(r"audit_seq\W{1,4}(\d+)")
_MAC = re.compile(r"audit_mac\W{1,4}([0-9a-f]{64})")
_HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


def read_witnesses(path: str) -> list[Witness] | str:
    """Every witness line of a log file, or a Dutch line saying why the file cannot serve."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"--witness {path}: niet leesbaar ({os_reason(exc)}); geef een logbestand met 'audit witness'-regels"
    found = []
    for n, line in enumerate(lines, 1):
        seq, mac = _SEQ.search(line), _MAC.search(line)
        if seq and mac:
            found.append(Witness(int(seq.group(1)), mac.group(1), f"getuige {Path(path).name} regel {n}"))
    if not found:
        return f"--witness {path}: geen 'audit witness'-regels (audit_seq en audit_mac) gevonden"
    return found


def parse_head(value: str) -> Witness | str:
    m = _HEAD.match(value.strip().lower())
    if not m:
        return f"--head {value[:80]!r}: verwacht volgnummer:MAC, bv. 1234:{'0' * 64}"
    return Witness(int(m.group(1)), m.group(2), f"getuige --head {m.group(1)}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if args.actie == "verify":
            return await _verify(settings, engine, args)
        if not args.persoon and not args.gebruiker:
            print("geef --persoon <bsn|skn> of --gebruiker <matrix-id>", file=sys.stderr)
            return 2
        subject: str | None = None
        if args.persoon:
            try:
                person = parse_person_id(args.persoon)
            except InvalidIdentifier as exc:
                print(f"--persoon: {exc}", file=sys.stderr)
                return 2
            subject = Auditor(audit_key(settings)).subject_of(person.value)
        count = 0
        async with sessions() as s:
            records = await (records_about(s, subject) if subject is not None else records_by(s, args.gebruiker))
            for rec in records:
                print(json.dumps(_export(rec), ensure_ascii=False))
                count += 1
        print(f"{count} records", file=sys.stderr)
        return 0
    finally:
        await engine.dispose()


async def _verify(settings: Settings, engine: AsyncEngine, args: argparse.Namespace) -> int:
    if not settings.audit.key and not (default_var_dir(settings) / "audit.key").exists():
        print("geen auditsleutel: zet ZSM_BOT_AUDIT_KEY (of [audit] key) op de sleutel waarmee de bot draait",
              file=sys.stderr)
        return 2
    if not await up_to_date(engine):
        print("de database is nog niet bijgewerkt voor deze versie; voer eerst zsm-bot db upgrade uit", file=sys.stderr)
        return 2
    witnesses: list[Witness] = []
    for item in [*(read_witnesses(p) for p in args.witness), *(parse_head(h) for h in args.head)]:
        if isinstance(item, str):
            print(item, file=sys.stderr)
            return 2
        witnesses.extend(item if isinstance(item, list) else [item])
    async with session_factory(engine)() as s:
        result = await verify_chain(s, Auditor(audit_key(settings)), now=datetime.now(UTC),
                                    retention=settings.privacy.bewaren.period("audit"), witnesses=witnesses)
    if result.ok:
        print(f"auditketen in orde: {result.checked} records, elke MAC klopt"
              + (f" (records 1-{result.checkpoint} opgeschoond; controlepunt na record {result.checkpoint})"
                 if result.checkpoint else "")
              + (f"; {result.witnessed} getuige(n) kloppen" if witnesses else
                 "; zonder getuige is een weggeknipt einde niet uit te sluiten (geef --witness)"))
        return 0
    for line in result.problems:
        print(f"auditketen: {line}", file=sys.stderr)
    from cli.config_check import audit_key_mismatch

    mismatch = audit_key_mismatch(settings)
    if mismatch:
        print(f"let op: {mismatch}", file=sys.stderr)
    return 1


def _export(rec: AuditRecord) -> dict[str, Any]:
    return {
        "id": rec.id, "tijd": rec.at.isoformat(), "soort": rec.kind, "gebruiker": rec.actor, "rol": rec.role,
        "regime": regime_of(rec.kind), "details": rec.details,
    }
