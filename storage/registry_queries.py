"""Named queries on ``markering``, the built-in registry: the lookup of one person, the upsert used to seed it,
and the staging table through which ``zsm-bot import`` loads a whole file.

The lookup is on the hot path of every !check (a million markings in production): it reads Core columns on the
caller's own connection, no ORM entities and no identity map. The import streams rows into a temporary staging
table (PostgreSQL COPY, SQLite executemany) and merges with a few set-based statements, so a million rows take
seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.advies import Markering
from storage.db import SessionFactory, is_sqlite
from storage.driven import driven
from storage.registry_models import MarkeringRow

_T = MarkeringRow.__table__
# Core columns, not ORM entities: the lookup is on the hot path of every !check and needs no identity map.
_COLUMNS = (
    _T.c.bsn, _T.c.skn, _T.c.geboortedatum, _T.c.veiligheidshuis, _T.c.doelgroep, _T.c.status, _T.c.advies,
    _T.c.geadviseerde_afdoening, _T.c.advies_datum, _T.c.regisseur, _T.c.huishouden, _T.c.bron,
)


def _to_domain(row: Any) -> Markering:
    """A row of ``_COLUMNS``, by position."""
    (bsn, skn, geboortedatum, veiligheidshuis, doelgroep, status, advies, geadviseerde_afdoening, advies_datum,
     regisseur, huishouden, bron) = row
    return Markering(
        bsn=bsn, skn=skn, geboortedatum=geboortedatum, veiligheidshuis=veiligheidshuis, doelgroep=doelgroep,
        status=status, advies=advies, geadviseerde_afdoening=geadviseerde_afdoening, advies_datum=advies_datum,
        regisseur=regisseur, huishouden=bool(huishouden), bron=bron,
    )


# Built once (a !check's lookup is on the person's path): only the value changes.
_BY_BSN = select(*_COLUMNS).where(_T.c.bsn == bindparam("v")).order_by(_T.c.veiligheidshuis)
_BY_SKN = select(*_COLUMNS).where(_T.c.skn == bindparam("v")).order_by(_T.c.veiligheidshuis)


async def markeringen_of(session: AsyncSession, kind: str, value: str) -> list[Markering]:
    """Every marking of one person (``kind`` "bsn" or "skn"), by veiligheidshuis, read in ``session``."""
    conn = await session.connection()
    statement = driven(_BY_BSN if kind == "bsn" else _BY_SKN, conn.dialect)
    return [_to_domain(r) for r in await statement.fetch(conn, {"v": value})]


async def upsert(session: AsyncSession, markeringen: Iterable[Markering], now: datetime) -> int:
    """Insert or replace by (bsn, veiligheidshuis). Used by tests to seed and as the import's base operation."""
    count = 0
    for m in markeringen:
        existing = (
            await session.execute(
                select(MarkeringRow).where(MarkeringRow.bsn == m.bsn, MarkeringRow.veiligheidshuis == m.veiligheidshuis)
            )
        ).scalar_one_or_none()
        row = existing or MarkeringRow(bsn=m.bsn, veiligheidshuis=m.veiligheidshuis)
        row.skn = m.skn
        row.geboortedatum = m.geboortedatum
        row.doelgroep = m.doelgroep
        row.status = m.status
        row.advies = m.advies
        row.geadviseerde_afdoening = m.geadviseerde_afdoening
        row.advies_datum = m.advies_datum
        row.regisseur = m.regisseur
        row.huishouden = m.huishouden
        row.bron = m.bron
        row.updated_at = now
        if existing is None:
            session.add(row)
        count += 1
    await session.flush()
    return count


# ------------------------------------------------------------------------------------------------- import

# line, bsn, skn, geboortedatum, veiligheidshuis, doelgroep, status, advies, geadviseerde_afdoening,
# advies_datum, regisseur, huishouden
StagedRow = tuple[int, str, str | None, date, str, str, str, str, str | None, date, str, bool]

_STAGE_COLS = ("line", "bsn", "skn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies",
               "geadviseerde_afdoening", "advies_datum", "regisseur", "huishouden")
_DATA_COLS = _STAGE_COLS[1:]
_DIFFERS = " OR ".join(f"markering.{c} IS DISTINCT FROM import_stage.{c}" for c in _DATA_COLS
                       if c not in ("bsn", "veiligheidshuis"))


@dataclass(frozen=True)
class Merged:
    """What a merge of the staging table changed in ``markering``."""

    updated: int
    inserted: int
    removed: int


class ImportStage:
    """The temporary staging table of one import, on the import transaction's own connection."""

    def __init__(self, conn: AsyncConnection, sqlite: bool) -> None:
        self.conn = conn
        self.sqlite = sqlite

    @classmethod
    async def create(cls, session: AsyncSession, database_url: str = "") -> ImportStage:
        """Create the (empty) staging table in ``session``'s transaction."""
        conn = await session.connection()
        stage = cls(conn, conn.dialect.name == "sqlite" or is_sqlite(database_url))
        if stage.sqlite:
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
        return stage

    async def add(self, rows: list[StagedRow]) -> None:
        """Stream one batch of checked rows into the staging table."""
        conn = self.conn
        if self.sqlite:
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

    async def duplicate_lines(self) -> list[int]:
        """Index the staged rows; the lines whose (bsn, veiligheidshuis) already stands on an earlier line."""
        conn = self.conn
        await conn.exec_driver_sql("CREATE INDEX ix_import_stage_key ON import_stage (bsn, veiligheidshuis, line)")
        if not self.sqlite:
            await conn.exec_driver_sql("ANALYZE import_stage")
        dups = await conn.exec_driver_sql(
            "SELECT s.line FROM import_stage s WHERE EXISTS (SELECT 1 FROM import_stage t WHERE t.bsn = s.bsn "
            "AND t.veiligheidshuis = s.veiligheidshuis AND t.line < s.line) ORDER BY s.line"
        )
        return [int(line) for (line,) in dups.all()]

    async def merge(self, now: datetime, volledig: list[str]) -> Merged:
        """Update changed markings, insert new ones, and for each ``volledig`` veiligheidshuis remove its
        markings absent from the file. Call ``duplicate_lines`` first (it builds the index)."""
        conn = self.conn
        stamp: Any = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else now
        p = "?" if conn.dialect.paramstyle == "qmark" else "$1"
        sets = ", ".join(f"{c} = import_stage.{c}" for c in _DATA_COLS if c not in ("bsn", "veiligheidshuis"))
        upd = await conn.exec_driver_sql(
            f"UPDATE markering SET {sets}, bron = 'import', updated_at = {p} FROM import_stage "  # noqa: S608
            "WHERE markering.bsn = import_stage.bsn AND markering.veiligheidshuis = import_stage.veiligheidshuis "
            f"AND ({_DIFFERS})",
            (stamp,),
        )
        cols = ", ".join(_DATA_COLS)
        ins = await conn.exec_driver_sql(
            f"INSERT INTO markering ({cols}, bron, updated_at) SELECT {cols}, 'import', {p} "  # noqa: S608
            "FROM import_stage WHERE NOT EXISTS (SELECT 1 FROM markering m WHERE m.bsn = import_stage.bsn "
            "AND m.veiligheidshuis = import_stage.veiligheidshuis)",
            (stamp,),
        )
        removed = 0
        for vh in volledig:
            rm = await conn.exec_driver_sql(
                f"DELETE FROM markering WHERE veiligheidshuis = {p} AND NOT EXISTS (SELECT 1 FROM import_stage s "  # noqa: S608
                "WHERE s.bsn = markering.bsn AND s.veiligheidshuis = markering.veiligheidshuis)",
                (vh,),
            )
            removed += max(rm.rowcount, 0)
        return Merged(updated=max(upd.rowcount, 0), inserted=max(ins.rowcount, 0), removed=removed)

    async def drop(self) -> None:
        """Before the commit: SQLite keeps a temporary table for the connection's life (PostgreSQL drops it on
        commit)."""
        if self.sqlite:
            await self.conn.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")

    async def drop_after_rollback(self, sessions: SessionFactory) -> None:
        """After a rollback the SQLite staging table may outlive it on the pooled connection: drop it there."""
        if self.sqlite:
            async with sessions() as s:
                conn = await s.connection()
                await conn.exec_driver_sql("DROP TABLE IF EXISTS temp.import_stage")
                await s.commit()


async def replace_advice(session: AsyncSession, *, bsn: str, veiligheidshuis: str, advies: str, afdoening: str,
                         datum: date, now: datetime) -> tuple[bool, date | None]:
    """An answer to an advice request as the marking's newest advice (source "advies op aanvraag"), and the
    marking's birth date (minor or not decides who may read the answer). (False, None) when that veiligheidshuis
    has no marking of the person: there is nothing to update, the request keeps the answer."""
    row = (await session.execute(select(MarkeringRow).where(
        MarkeringRow.bsn == bsn, MarkeringRow.veiligheidshuis == veiligheidshuis))).scalar_one_or_none()
    if row is None:
        return False, None
    born: date | None = row.geboortedatum
    await upsert(session, [Markering(
        bsn=row.bsn, skn=row.skn, geboortedatum=row.geboortedatum, veiligheidshuis=row.veiligheidshuis,
        doelgroep=row.doelgroep, status=row.status, advies=advies, geadviseerde_afdoening=afdoening,
        advies_datum=datum, regisseur=row.regisseur, huishouden=row.huishouden, bron="advies op aanvraag",
    )], now)
    return True, born
