"""``zsm-bot import <file> [--volledig <vh>]``: load markings into the built-in registry.

CSV (UTF-8, header row, ``;`` or ``,``) or JSON lines. All or nothing: every row is checked, and any bad row
(bad BSN, unknown veiligheidshuis, bad date, duplicate, ...) rejects the whole file with a report that lists
every bad row by line number and reason. A good file is upserted: importing the same file twice changes
nothing. ``--volledig <vh>`` marks the file as the full set of that veiligheidshuis: its markings absent from
the file are removed.

Speed: rows are streamed into a temporary staging table (PostgreSQL COPY, SQLite executemany), then merged
with three set-based statements (``storage.registry_queries.ImportStage``), so a million rows take seconds,
not an hour of per-row ORM work. The report names line numbers and reasons only, never a BSN or other content
of the row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from domain.identifiers import elfproef
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuizen
from storage.audit import Auditor
from storage.db import SessionFactory
from storage.registry_queries import ImportStage, StagedRow

FIELDS = ("bsn", "skn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies",
          "geadviseerde_afdoening", "advies_datum", "regisseur", "huishouden")
REQUIRED = frozenset({"bsn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies", "advies_datum",
                      "regisseur"})
STATUSES = ("actief", "afgesloten")
BATCH = 20_000
MAX_TEXT = 255
MAX_ADVIES = 4000

# The format as `zsm-bot import --help` shows it (docs/import.md is the long version; keep the two in step).
HELP = """\
bestandsformaat:
  CSV in UTF-8 (een BOM mag; Excel: "CSV UTF-8"), eerste regel de kolomnamen, scheidingsteken ; of ,
  (wat in de kopregel het vaakst staat). Tekst met het scheidingsteken of een " ertussen: tussen "...".
  Of JSON lines: per regel een object met dezelfde veldnamen.

kolommen (* verplicht):
  bsn*                     9 cijfers, elfproef
  skn                      strafrechtketennummer, 6-12 cijfers
  geboortedatum*           JJJJ-MM-DD, niet in de toekomst
  veiligheidshuis*         sleutel uit veiligheidshuizen.toml (bijv. utrecht)
  doelgroep*               tekst, max. 255 tekens (bijv. huiselijk geweld)
  status*                  actief of afgesloten
  advies*                  tekst, max. 4000 tekens
  geadviseerde_afdoening   afdoeningscode (bijv. tom, osb), max. 32 tekens
  advies_datum*            JJJJ-MM-DD, niet in de toekomst
  regisseur*               naam en bereikbaarheid, max. 255 tekens
  huishouden               ja, nee of leeg

gedrag:
  Alles of niets: een foute regel weigert het hele bestand, met regelnummer en reden per fout (nooit de inhoud).
  Opnieuw importeren werkt bij: per bsn + veiligheidshuis wordt een markering toegevoegd of bijgewerkt;
  hetzelfde bestand twee keer geeft "0 nieuw, 0 bijgewerkt". Markeringen die niet in het bestand staan,
  blijven staan, behalve met --volledig VH: dan is het bestand de volledige set van dat veiligheidshuis
  en verdwijnen diens markeringen die er niet in staan.

voorbeeld:
  zsm-bot import voorbeeld-markeringen.csv        (zsm-bot init zet dit bestand klaar)
  zsm-bot import utrecht-2026-11.csv --volledig utrecht
"""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SKN = re.compile(r"^\d{6,12}$")
_AFDOENING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/\-]{0,31}$")

Row = StagedRow


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
            # A problem of the file as a whole (encoding, columns, an unknown --volledig house) is not a wrong line:
            # the operator fixes the file or the command, not row 0.
            bad_rows = sum(1 for n, _ in self.errors if n)
            whole = len(self.errors) - bad_rows
            counted = [f"{bad_rows} foute regel(s)"] if bad_rows else []
            counted += [f"{whole} {'probleem' if whole == 1 else 'problemen'} met het bestand"] if whole else []
            lines = [f"import geweigerd: {' en '.join(counted)} in {self.source}; er is niets gewijzigd."]
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


async def _merge(stage: ImportStage, now: datetime, volledig: list[str], result: ImportResult) -> None:
    for line in await stage.duplicate_lines():
        result.errors.append((line, "dubbel: dezelfde bsn en hetzelfde veiligheidshuis staan al op een "
                                    "eerdere regel"))
    if result.errors:
        return
    merged = await stage.merge(now, volledig)
    result.updated = merged.updated
    result.inserted = merged.inserted
    result.removed += merged.removed


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
        stage = await ImportStage.create(session, database_url)
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
                        await stage.add(batch)
                        batch = []
                if batch and not result.errors:
                    await stage.add(batch)
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
                await _merge(stage, now, volledig, result)
        if result.errors:
            await session.rollback()
            await stage.drop_after_rollback(sessions)
            return result
        if auditor is not None:
            await auditor.record(session, kind="register.import", at=now, actor="zsm-bot import", role="beheerder",
                                 details={"bestand": path.name, "regels": result.rows, "nieuw": result.inserted,
                                          "bijgewerkt": result.updated, "verwijderd": result.removed,
                                          "volledig": volledig})
        await stage.drop()
        await session.commit()
    return result

