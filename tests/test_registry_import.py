"""``zsm-bot import``: CSV and JSON lines, all or nothing, a report per bad row, idempotent, --volledig."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cli.main import main as cli_main
from config.reference import load_veiligheidshuizen
from domain.veiligheidshuizen import Veiligheidshuizen
from integrations.registry.importer import FIELDS, ImportResult, import_file
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import AuditRecord
from storage.registry_models import MarkeringRow
from tests.harness.config import VEILIGHEIDSHUIZEN, write_config
from tests.harness.markings import NOW, TODAY, bsn


@pytest.fixture
def vhs() -> Veiligheidshuizen:
    return load_veiligheidshuizen(VEILIGHEIDSHUIZEN)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Any]:
    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def row(n: int, vh: str = "utrecht", **kw: str) -> dict[str, str]:
    r = {"bsn": bsn(n), "skn": "", "geboortedatum": "1991-02-03", "veiligheidshuis": vh, "doelgroep": "veelpleger",
         "status": "actief", "advies": "Taakstraf; regisseur volgt op.", "geadviseerde_afdoening": "TS",
         "advies_datum": "2026-03-01", "regisseur": "A. Regie, 030-0000000", "huishouden": ""}
    r.update(kw)
    return r


def write_csv(path: Path, rows: list[dict[str, str]], sep: str = ";") -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, delimiter=sep)
        w.writeheader()
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


async def run(path: Path, db: Any, vhs: Veiligheidshuizen, volledig: list[str] | None = None) -> ImportResult:
    return await import_file(path, db, vhs, now=NOW, today=TODAY, volledig=volledig)


async def stored(db: Any) -> dict[tuple[str, str], MarkeringRow]:
    async with db() as s:
        rows = (await s.execute(select(MarkeringRow))).scalars().all()
    return {(r.bsn, r.veiligheidshuis): r for r in rows}


@pytest.mark.parametrize("fmt", ["semicolon", "comma", "jsonl"])
async def test_good_file_is_loaded_and_reimport_changes_nothing(tmp_path: Path, db: Any, vhs: Veiligheidshuizen,
                                                                fmt: str) -> None:
    rows = [row(1), row(1, "twente", huishouden="ja", skn="12345678"),
            row(2, advies="Advies met ; puntkomma, komma en \"aanhalingstekens\"", geadviseerde_afdoening="")]
    path = tmp_path / "m.txt"
    if fmt == "jsonl":
        write_jsonl(path, rows)
    else:
        write_csv(path, rows, sep="," if fmt == "comma" else ";")
    first = await run(path, db, vhs)
    assert first.ok, first.report()
    assert (first.rows, first.inserted, first.updated, first.removed) == (3, 3, 0, 0)
    data = await stored(db)
    twente = data[(bsn(1), "twente")]
    assert twente.huishouden and twente.skn == "12345678" and twente.advies_datum.isoformat() == "2026-03-01"
    assert data[(bsn(2), "utrecht")].advies == rows[2]["advies"]
    assert data[(bsn(2), "utrecht")].geadviseerde_afdoening is None
    stamps = {k: v.updated_at for k, v in data.items()}
    second = await run(path, db, vhs)
    assert second.ok and (second.inserted, second.updated, second.unchanged) == (0, 0, 3)
    assert {k: v.updated_at for k, v in (await stored(db)).items()} == stamps
    assert "0 nieuw, 0 bijgewerkt, 3 ongewijzigd" in second.report()


async def test_changed_rows_are_updated(tmp_path: Path, db: Any, vhs: Veiligheidshuizen) -> None:
    assert (await run(write_csv(tmp_path / "a.csv", [row(1), row(2)]), db, vhs)).ok
    result = await run(write_csv(tmp_path / "b.csv", [row(1, status="afgesloten"), row(2), row(3)]), db, vhs)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert (await stored(db))[(bsn(1), "utrecht")].status == "afgesloten"


async def test_bad_rows_reject_the_whole_file_with_line_numbers(tmp_path: Path, db: Any,
                                                                vhs: Veiligheidshuizen) -> None:
    assert (await run(write_csv(tmp_path / "a.csv", [row(1)]), db, vhs)).ok
    rows = [
        row(2),                                             # line 2: good
        row(3, bsn="123456789"),                            # 3: elfproef
        row(4, veiligheidshuis="utreht"),                   # 4: unknown vh, with a suggestion
        row(5, advies_datum="2026-13-01"),                  # 5: not a date
        row(6, geboortedatum="01-02-1990"),                 # 6: wrong form
        row(7, status="lopend", advies=""),                 # 7: two problems
        row(8, advies_datum="2027-01-01"),                  # 8: future
        row(9, huishouden="misschien", skn="12"),           # 9
        row(2),                                             # 10: duplicate of line 2 ... but only if 3-9 pass
        row(1, status="afgesloten"),                        # 11: good, would update
    ]
    result = await run(write_csv(tmp_path / "bad.csv", rows), db, vhs)
    assert not result.ok
    reasons = dict(result.errors)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert "elfproef" in reasons[3] and "utrecht" in reasons[4] and "geen bestaande datum" in reasons[5]
    assert "JJJJ-MM-DD" in reasons[6] and "status" in reasons[7] and "advies ontbreekt" in reasons[7]
    assert "toekomst" in reasons[8] and "huishouden" in reasons[9] and "skn" in reasons[9]
    report = result.report()
    assert report.startswith("import geweigerd: 7 foute regel(s)") and "regel 4:" in report
    assert "123456789" not in report and bsn(3) not in report
    data = await stored(db)
    assert list(data) == [(bsn(1), "utrecht")] and data[(bsn(1), "utrecht")].status == "actief"


async def test_duplicates_in_file_are_reported(tmp_path: Path, db: Any, vhs: Veiligheidshuizen) -> None:
    result = await run(write_csv(tmp_path / "d.csv", [row(1), row(2), row(1, doelgroep="ander")]), db, vhs)
    assert [n for n, _ in result.errors] == [4] and "dubbel" in result.errors[0][1]
    assert await stored(db) == {}


async def test_full_reimport_removes_absent_markings_of_that_vh_only(tmp_path: Path, db: Any,
                                                                    vhs: Veiligheidshuizen) -> None:
    assert (await run(write_csv(tmp_path / "a.csv", [row(1), row(2), row(3, "twente")]), db, vhs)).ok
    partial = await run(write_csv(tmp_path / "b.csv", [row(1)]), db, vhs)
    assert partial.removed == 0 and len(await stored(db)) == 3
    full = await run(write_csv(tmp_path / "c.csv", [row(1)]), db, vhs, volledig=["utrecht"])
    assert full.ok and full.removed == 1
    assert set(await stored(db)) == {(bsn(1), "utrecht"), (bsn(3), "twente")}
    bad = await run(write_csv(tmp_path / "c.csv", [row(1)]), db, vhs, volledig=["utreht"])
    assert not bad.ok and "utrecht" in bad.errors[0][1]


@pytest.mark.parametrize(("content", "expected"), [
    ("", "leeg"),
    ("bsn;veiligheidshuis\n", "ontbreken"),
    ("bsn;geboortedatum;veiligheidshuis;doelgroep;status;advies;advies_datum;regisseur;adviesx\n", "adviesx"),
    ("bsn;bsn;geboortedatum;veiligheidshuis;doelgroep;status;advies;advies_datum;regisseur\n", "twee keer"),
])
async def test_file_level_problems(tmp_path: Path, db: Any, vhs: Veiligheidshuizen, content: str,
                                   expected: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(content, encoding="utf-8")
    result = await run(path, db, vhs)
    assert not result.ok and expected in result.report()


async def test_not_utf8_and_missing_file(tmp_path: Path, db: Any, vhs: Veiligheidshuizen) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(";".join(FIELDS).encode() + b"\n" + "é".encode("latin-1") + b"\n")
    # A problem of the whole file is named as such, not counted as a wrong line.
    assert (await run(path, db, vhs)).report() == (
        f"import geweigerd: 1 probleem met het bestand in {path.name}; er is niets gewijzigd.\n"
        "bestand: het bestand is geen UTF-8")
    report = (await run(tmp_path / "nope.csv", db, vhs)).report()
    assert report.startswith("import geweigerd: 1 probleem met het bestand") and "foute regel" not in report
    assert "bestaat niet" in report


async def test_jsonl_bad_lines(tmp_path: Path, db: Any, vhs: Veiligheidshuizen) -> None:
    path = tmp_path / "m.jsonl"
    good = json.dumps(row(1))
    path.write_text("\n".join([good, "{niet json", "[1, 2]", json.dumps({**row(2), "extra": 1}),
                               json.dumps({**row(3), "advies": ["lijst"]}), "", json.dumps(row(4))]) + "\n")
    result = await run(path, db, vhs)
    reasons = dict(result.errors)
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "JSON" in reasons[2] and "object" in reasons[3] and "extra" in reasons[4] and "advies" in reasons[5]
    assert await stored(db) == {}


async def test_wrong_column_count_line(tmp_path: Path, db: Any, vhs: Veiligheidshuizen) -> None:
    path = write_csv(tmp_path / "w.csv", [row(1)])
    with path.open("a", encoding="utf-8") as fh:
        fh.write("1;2;3\n")
    result = await run(path, db, vhs)
    assert [n for n, _ in result.errors] == [3] and "kolommen" in result.errors[0][1]


async def test_cli_import_reports_and_audits(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    config = write_config(tmp_path, database_url)
    good = write_csv(tmp_path / "good.csv", [row(1), row(2, "rotterdam")])
    assert await asyncio.to_thread(cli_main, ["import", "--config", str(config), str(good)]) == 0
    assert "import geslaagd: 2 regels" in capsys.readouterr().out
    bad = write_csv(tmp_path / "bad.csv", [row(1, bsn="111111111")])
    assert await asyncio.to_thread(cli_main, ["import", "--config", str(config), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "regel 2: bsn: geen geldig BSN" in err and "111111111" not in err
    empty = write_csv(tmp_path / "empty.csv", [])
    assert await asyncio.to_thread(cli_main, ["import", "--config", str(config), "--volledig", "rotterdam",
                                              str(empty)]) == 0
    assert "1 verwijderd" in capsys.readouterr().out
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s:
            n = await s.scalar(select(func.count()).select_from(MarkeringRow))
            audits = (await s.execute(select(AuditRecord).where(AuditRecord.kind == "register.import"))
                      ).scalars().all()
    finally:
        await engine.dispose()
    assert n == 1 and [a.details["nieuw"] for a in audits] == [2, 0]
    assert audits[1].details["volledig"] == ["rotterdam"] and audits[1].details["verwijderd"] == 1
