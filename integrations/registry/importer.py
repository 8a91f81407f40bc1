"""``zsm-bot import <file> [--volledig <vh>]``: load markings into the built-in registry.

CSV (UTF-8, header row, ``;`` or ``,``) or JSON lines. All or nothing: every row is checked, and any bad row
(bad BSN, unknown veiligheidshuis, bad date, duplicate, ...) rejects the whole file with a report that lists
every bad row by line number and reason. A good file is upserted: importing the same file twice changes
nothing. ``--volledig <vh>`` marks the file as the full set of that veiligheidshuis: its markings absent from
the file are removed.

Speed: rows are streamed into a temporary staging table (PostgreSQL COPY, SQLite executemany), then merged
with three set-based statements, so a million rows take seconds, not an hour of per-row ORM work. The report
names line numbers and reasons only, never a BSN or other content of the row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.identifiers import elfproef
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuizen
from storage.audit import Auditor
from storage.db import SessionFactory, is_sqlite

FIELDS = ("bsn", "skn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies",
          "geadviseerde_afdoening", "advies_datum", "regisseur", "huishouden")
REQUIRED = frozenset({"bsn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies", "advies_datum",
                      "regisseur"})
STATUSES = ("actief", "afgesloten")
BATCH = 20_000
MAX_TEXT = 255
MAX_ADVIES = 4000

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SKN = re.compile(r"^\d{6,12}$")
_AFDOENING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/\-]{0,31}$")

Row = tuple[int, str, str | None, date, str, str, str, str, str | None, date, str, bool]


@dataclass
class ImportResult:
    source: str
    rows: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def report(self) -> str:
        if not self.ok:
            lines = [f"import geweigerd: {len(self.errors)} foute regel(s) in {self.source}; er is niets gewijzigd."]
            lines += [f"regel {n}: {reason}" if n else f"bestand: {reason}" for n, reason in self.errors]
            return "\n".join(lines)
        return (f"import geslaagd: {self.rows} regels gelezen uit {self.source}; {self.inserted} nieuw, "
                f"{self.updated} bijgewerkt, {self.unchanged} ongewijzigd, {self.removed} verwijderd.")


class FileProblem(Exception):
    """The file as a whole cannot be read (encoding, missing columns)."""


def _date(value: str, name: str, today: date, problems: list[str]) -> date | None:
    if not _DATE.match(value):
        problems.append(f"{name}: verwacht JJJJ-MM-DD, kreeg {'niets' if not value else 'een andere vorm'}")
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        problems.append(f"{name}: geen bestaande datum")
        return None
    if d > today:
        problems.append(f"{name}: ligt in de toekomst")
        return None
    return d


def _text(rec: dict[str, Any], key: str) -> str:
    value = rec.get(key)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nee"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        return "\x00"  # a list or object: rejected by the checks below
    return value.strip()


def validate(rec: dict[str, Any], line: int, vhs: Veiligheidshuizen, today: date) -> Row | list[str]:
    """One record to a row tuple, or the list of Dutch reasons it is bad (no personal data in them)."""
    problems: list[str] = []
    v = {k: _text(rec, k) for k in FIELDS}
    for k in FIELDS:
        if "\x00" in v[k]:
            problems.append(f"{k}: verwacht tekst")
            v[k] = ""
    for k in sorted(REQUIRED):
        if not v[k]:
            problems.append(f"{k} ontbreekt")
    bsn = v["bsn"]
    if bsn and not elfproef(bsn):
        problems.append("bsn: geen geldig BSN (9 cijfers, elfproef)")
    skn = v["skn"] or None
    if skn is not None and not _SKN.match(skn):
        problems.append("skn: verwacht 6 tot 12 cijfers")
    geboren = _date(v["geboortedatum"], "geboortedatum", today, problems) if v["geboortedatum"] else None
    advies_datum = _date(v["advies_datum"], "advies_datum", today, problems) if v["advies_datum"] else None
    vh = v["veiligheidshuis"]
    if vh and vhs.get(vh) is None:
        hints = nearest(vh, vhs.keys())
        problems.append(f"veiligheidshuis: onbekende sleutel{' (bedoeld: ' + ', '.join(hints) + '?)' if hints else ''}")
    status = v["status"].lower()
    if status and status not in STATUSES:
        problems.append(f"status: verwacht {' of '.join(STATUSES)}")
    afdoening = v["geadviseerde_afdoening"] or None
    if afdoening is not None and not _AFDOENING.match(afdoening):
        problems.append("geadviseerde_afdoening: verwacht een afdoeningscode (letters, cijfers, max. 32 tekens)")
    huishouden = v["huishouden"].lower()
    if huishouden not in ("", "ja", "nee"):
        problems.append("huishouden: verwacht ja, nee of leeg")
    for k in ("doelgroep", "regisseur"):
        if len(v[k]) > MAX_TEXT:
            problems.append(f"{k}: langer dan {MAX_TEXT} tekens")
    if len(v["advies"]) > MAX_ADVIES:
        problems.append(f"advies: langer dan {MAX_ADVIES} tekens")
    if problems or geboren is None or advies_datum is None:
        return problems or ["onvolledige regel"]
    return (line, bsn, skn, geboren, vh, v["doelgroep"], status, v["advies"], afdoening, advies_datum,
            v["regisseur"], huishouden == "ja")


def _records(fh: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) or (line number, Dutch reason) for a line that cannot be read at all."""
    first = fh.readline()
    while first and not first.strip():
        first = fh.readline()
    if not first:
        raise FileProblem("het bestand is leeg")
    if first.lstrip().startswith("{"):
        yield from _json_lines(first, fh)
    else:
        yield from _csv_rows(first, fh)


def _json_lines(first: str, fh: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    lines = iter([first])
    n = 0
    for chunk in (lines, fh):
        for raw in chunk:
            n += 1
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                yield n, "geen geldige JSON"
                continue
            if not isinstance(obj, dict):
                yield n, "verwacht een JSON-object per regel"
                continue
            unknown = sorted(set(obj) - set(FIELDS))
            if unknown:
                yield n, f"onbekend veld {unknown[0]!r}"
                continue
            yield n, obj


def _csv_rows(first: str, fh: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))]
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        hints = nearest(unknown[0], FIELDS)
        hint = f" (bedoeld: {hints[0]}?)" if hints else ""
        raise FileProblem(f"onbekende kolom {unknown[0]!r}{hint} in de kopregel; kolommen: {', '.join(FIELDS)}")
    missing = sorted(REQUIRED - set(header))
    if missing:
        raise FileProblem(f"kolom(men) ontbreken in de kopregel: {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise FileProblem("een kolom staat twee keer in de kopregel")
    reader = csv.reader(fh, delimiter=delimiter)
    width = len(header)
    for values in reader:
        n = reader.line_num + 1  # the header was line 1
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != width:
            yield n, f"verwacht {width} kolommen, kreeg {len(values)}"
            continue
        yield n, dict(zip(header, values, strict=True))


_STAGE_COLS = ("line", "bsn", "skn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies",
               "geadviseerde_afdoening", "advies_datum", "regisseur", "huishouden")
_DATA_COLS = _STAGE_COLS[1:]


async def _create_stage(conn: AsyncConnection, sqlite: bool) -> None:
    if sqlite:
        await conn.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")
        await conn.exec_driver_sql(
            "CREATE TEMP TABLE import_stage (line INTEGER, bsn TEXT, skn TEXT, geboortedatum TEXT, "
            "veiligheidshuis TEXT, doelgroep TEXT, status TEXT, advies TEXT, geadviseerde_afdoening TEXT, "
            "advies_datum TEXT, regisseur TEXT, huishouden INTEGER)"
        )
    else:
        await conn.exec_driver_sql(
            "CREATE TEMP TABLE import_stage (line integer, bsn varchar(9), skn varchar(16), geboortedatum date, "
            "veiligheidshuis varchar(64), doelgroep varchar(255), status varchar(16), advies text, "
            "geadviseerde_afdoening varchar(32), advies_datum date, regisseur varchar(255), huishouden boolean) "
            "ON COMMIT DROP"
        )


async def _stage(conn: AsyncConnection, sqlite: bool, rows: list[Row]) -> None:
    if sqlite:
        placeholders = ", ".join("?" for _ in _STAGE_COLS)
        await conn.exec_driver_sql(
            f"INSERT INTO import_stage ({', '.join(_STAGE_COLS)}) VALUES ({placeholders})",  # noqa: S608
            [(r[0], r[1], r[2], r[3].isoformat(), r[4], r[5], r[6], r[7], r[8], r[9].isoformat(), r[10],
              1 if r[11] else 0) for r in rows],
        )
    else:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "import_stage", records=rows, columns=list(_STAGE_COLS)
        )


_DIFFERS = " OR ".join(f"markering.{c} IS DISTINCT FROM import_stage.{c}" for c in _DATA_COLS
                       if c not in ("bsn", "veiligheidshuis"))


async def _merge(conn: AsyncConnection, sqlite: bool, now: datetime, volledig: list[str],
                 result: ImportResult) -> None:
    stamp: Any = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    p = "?" if conn.dialect.paramstyle == "qmark" else "$1"
    await conn.exec_driver_sql("CREATE INDEX ix_import_stage_key ON import_stage (bsn, veiligheidshuis, line)")
    if not sqlite:
        await conn.exec_driver_sql("ANALYZE import_stage")
    dups = await conn.exec_driver_sql(
        "SELECT s.line FROM import_stage s WHERE EXISTS (SELECT 1 FROM import_stage t WHERE t.bsn = s.bsn "
        "AND t.veiligheidshuis = s.veiligheidshuis AND t.line < s.line) ORDER BY s.line"
    )
    for (line,) in dups.all():
        result.errors.append((int(line), "dubbel: dezelfde bsn en hetzelfde veiligheidshuis staan al op een "
                                         "eerdere regel"))
    if result.errors:
        return
    sets = ", ".join(f"{c} = import_stage.{c}" for c in _DATA_COLS if c not in ("bsn", "veiligheidshuis"))
    upd = await conn.exec_driver_sql(
        f"UPDATE markering SET {sets}, bron = 'import', updated_at = {p} FROM import_stage "  # noqa: S608
        "WHERE markering.bsn = import_stage.bsn AND markering.veiligheidshuis = import_stage.veiligheidshuis "
        f"AND ({_DIFFERS})",
        (stamp,),
    )
    result.updated = max(upd.rowcount, 0)
    cols = ", ".join(_DATA_COLS)
    ins = await conn.exec_driver_sql(
        f"INSERT INTO markering ({cols}, bron, updated_at) SELECT {cols}, 'import', {p} "  # noqa: S608
        "FROM import_stage WHERE NOT EXISTS (SELECT 1 FROM markering m WHERE m.bsn = import_stage.bsn "
        "AND m.veiligheidshuis = import_stage.veiligheidshuis)",
        (stamp,),
    )
    result.inserted = max(ins.rowcount, 0)
    for vh in volledig:
        rm = await conn.exec_driver_sql(
            f"DELETE FROM markering WHERE veiligheidshuis = {p} AND NOT EXISTS (SELECT 1 FROM import_stage s "  # noqa: S608
            "WHERE s.bsn = markering.bsn AND s.veiligheidshuis = markering.veiligheidshuis)",
            (vh,),
        )
        result.removed += max(rm.rowcount, 0)


async def import_file(
    path: Path, sessions: SessionFactory, vhs: Veiligheidshuizen, *, now: datetime, today: date,
    volledig: list[str] | None = None, auditor: Auditor | None = None, database_url: str = "",
) -> ImportResult:
    """Validate and upsert the whole file in one transaction; on any bad row nothing changes."""
    result = ImportResult(source=path.name)
    volledig = list(dict.fromkeys(volledig or []))
    for vh in volledig:
        if vhs.get(vh) is None:
            hints = nearest(vh, vhs.keys())
            hint = f" (bedoeld: {', '.join(hints)}?)" if hints else ""
            result.errors.append((0, f"--volledig {vh!r}: onbekend veiligheidshuis{hint}"))
    if result.errors:
        return result
    async with sessions() as session:
        conn = await session.connection()
        sqlite = conn.dialect.name == "sqlite" or is_sqlite(database_url)
        await _create_stage(conn, sqlite)
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                batch: list[Row] = []
                for line, rec in _records(fh):
                    result.rows += 1
                    if isinstance(rec, str):
                        result.errors.append((line, rec))
                        continue
                    row = validate(rec, line, vhs, today)
                    if isinstance(row, list):
                        result.errors.append((line, "; ".join(row)))
                        continue
                    if result.errors:
                        continue  # keep checking, stop staging: the file is rejected anyway
                    batch.append(row)
                    if len(batch) >= BATCH:
                        await _stage(conn, sqlite, batch)
                        batch = []
                if batch and not result.errors:
                    await _stage(conn, sqlite, batch)
        except FileNotFoundError:
            result.errors.append((0, f"{path} bestaat niet"))
        except UnicodeDecodeError:
            result.errors.append((0, "het bestand is geen UTF-8"))
        except FileProblem as exc:
            result.errors.append((0, str(exc)))
        except csv.Error as exc:
            result.errors.append((0, f"CSV niet leesbaar ({exc})"))
        if not result.errors:
            if result.rows == 0 and not volledig:
                result.errors.append((0, "het bestand bevat geen markeringen"))
            else:
                await _merge(conn, sqlite, now, volledig, result)
        if result.errors:
            await session.rollback()
            if sqlite:
                await _drop_stage(sessions)
            return result
        if auditor is not None:
            await auditor.record(session, kind="register.import", at=now, actor="zsm-bot import", role="beheerder",
                                 details={"bestand": path.name, "regels": result.rows, "nieuw": result.inserted,
                                          "bijgewerkt": result.updated, "verwijderd": result.removed,
                                          "volledig": volledig})
        if sqlite:
            await conn.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")
        await session.commit()
    return result


async def _drop_stage(sessions: SessionFactory) -> None:
    async with sessions() as s:
        conn = await s.connection()
        await conn.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")
        await s.commit()
