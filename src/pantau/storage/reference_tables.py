"""The reference tables (migration 0005, ref_*) kept equal to contracts/reference/.

`sync_reference_tables(conn, load_reference())` writes every table in one transaction: rows that are
new or differ are upserted, rows whose key is no longer in the files are deleted, unchanged rows are
not touched (a second run writes nothing), and ref_files records each file's version. `pantau
bootstrap` and `pantau migrate` run it after the migrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pantau.reference import ReferenceData, ReferenceDataError

_LOCK_ID = 0x70726566  # "pref": two bootstraps at once write the tables one after the other


@dataclass(frozen=True)
class _Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # key columns first
    rows: list[tuple]
    stamp: str | None = None  # a column set to now() whenever the row is written


def _tables(ref: ReferenceData) -> list[_Table]:
    """The tables' rows from the reference data, parents before the tables that reference them."""
    prices = [
        (c.code, p.kind, p.quality_grade, p.price_level, p.zone, p.effective_from, _list(p.province_codes),
         p.price_idr, p.legal_basis, p.note)
        for c in ref.commodities for p in c.reference_prices
    ]  # fmt: skip
    requirements = [
        (m.code, s.commodity, s.daily_requirement_kg,
         s.typical_inflow_kg_per_day.min if s.typical_inflow_kg_per_day else None,
         s.typical_inflow_kg_per_day.max if s.typical_inflow_kg_per_day else None,
         s.safe_stock_kg.min if s.safe_stock_kg else None, s.safe_stock_kg.max if s.safe_stock_kg else None,
         s.inflow_peak_weekday, s.basis)
        for m in ref.markets for s in m.supply
    ]  # fmt: skip
    versions = ref.versions
    return [
        _Table("ref_files", ("name",), ("name", "version"),
               [(name, versions[name]) for name in ("commodities", "markets", "regencies", "checkpoints")],
               stamp="loaded_at"),
        _Table("ref_commodities", ("code",),
               ("code", "name_id", "name_en", "unit", "quality_grades", "default_grade"),
               [(c.code, c.name_id, c.name_en, c.unit, list(c.quality_grades), c.default_grade)
                for c in ref.commodities]),
        _Table("ref_reference_prices",
               ("commodity_code", "kind", "quality_grade", "price_level", "zone", "effective_from"),
               ("commodity_code", "kind", "quality_grade", "price_level", "zone", "effective_from",
                "province_codes", "price_idr", "legal_basis", "note"),
               _unique(prices, 6, "commodities.v1.json: two reference_prices of commodity {0!r} share kind "
                                  "{1!r}, grade {2!r}, level {3!r}, zone {4!r} and effective_from {5}")),
        _Table("ref_markets", ("code",),
               ("code", "name", "kind", "province_code", "city", "latitude", "longitude", "supply_destination"),
               [(m.code, m.name, m.kind, m.province_code, m.city, m.location.lat if m.location else None,
                 m.location.lon if m.location else None, m.supply_destination) for m in ref.markets]),
        _Table("ref_market_requirements", ("market_code", "commodity_code"),
               ("market_code", "commodity_code", "daily_requirement_kg", "typical_inflow_min_kg",
                "typical_inflow_max_kg", "safe_stock_min_kg", "safe_stock_max_kg", "inflow_peak_weekday", "basis"),
               _unique(requirements, 2, "markets.v1.json: market {0!r} lists commodity {1!r} twice in supply")),
        _Table("ref_regencies", ("code",),
               ("code", "name", "kind", "seat", "to_bakauheni_km", "to_bakauheni_road_minutes"),
               [(r.code, r.name, r.kind, r.seat, r.to_bakauheni.distance_km, r.to_bakauheni.normal_road_minutes)
                for r in ref.regencies]),
        _Table("ref_checkpoints", ("code",),
               ("code", "name", "kind", "province_code", "regency_code", "sequence", "normal_minutes_to_next",
                "min_minutes_to_next", "max_minutes_to_next"),
               [(c.code, c.name, c.kind, c.province_code, c.regency_code, c.sequence, *_leg_from(ref, c.code))
                for c in ref.checkpoints]),
    ]  # fmt: skip


def _list(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values is not None else None


def _unique(rows: list[tuple], key_size: int, message: str) -> list[tuple]:
    seen = set()
    for row in rows:
        if row[:key_size] in seen:
            raise ReferenceDataError(message.format(*row[:key_size]))
        seen.add(row[:key_size])
    return rows


def _leg_from(ref: ReferenceData, checkpoint: str) -> tuple[int | None, int | None, int | None]:
    """(normal, min, max) minutes of the leg leaving `checkpoint`; every route must agree on it."""
    legs = {
        (leg.normal_minutes, *((leg.range_minutes.min, leg.range_minutes.max) if leg.range_minutes else (None, None)))
        for route in ref.routes for leg in route.legs if leg.from_ == checkpoint
    }  # fmt: skip
    if len(legs) > 1:
        raise ReferenceDataError(
            f"checkpoints.v1.json: routes give different times for the leg leaving {checkpoint!r}: {sorted(legs)}"
        )
    return legs.pop() if legs else (None, None, None)


def _identifiers(names: Sequence[str], prefix: str | None = None) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(*([prefix] if prefix else []), name) for name in names)


def _sync_table(conn: psycopg.Connection, table: _Table) -> tuple[int, sql.Composed]:
    """Stage the rows and upsert them; returns the rows written and the DELETE to run afterwards."""
    staging = sql.Identifier(f"staging_{table.name}")
    target = sql.Identifier(table.name)
    columns = _identifiers(table.columns)
    # the table's column types, not its constraints
    create = sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
    conn.execute(create.format(staging, columns, target))
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                staging, columns, sql.SQL(", ").join(sql.Placeholder() * len(table.columns))
            ),
            table.rows,
        )
    values = [c for c in table.columns if c not in table.key]
    stamp = [sql.SQL(", {} = now()").format(sql.Identifier(table.stamp))] if table.stamp else []
    # a row is rewritten only when a value differs (the key matched through the conflict)
    upsert = sql.SQL(
        "INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT ({key}) DO UPDATE"
        " SET ({values}) = ROW({excluded}){stamp} WHERE ({current}) IS DISTINCT FROM ({excluded})"
    ).format(
        target=target, columns=columns, staging=staging, key=_identifiers(table.key),
        values=_identifiers(values), excluded=_identifiers(values, "excluded"), stamp=sql.Composed(stamp),
        current=_identifiers(values, table.name),
    )  # fmt: skip
    written = conn.execute(upsert).rowcount
    matches = sql.SQL(" AND ").join(
        sql.SQL("s.{0} IS NOT DISTINCT FROM t.{0}").format(sql.Identifier(column)) for column in table.key
    )
    delete = sql.SQL("DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
        target, staging, matches
    )
    return written, delete


def sync_reference_tables(conn: psycopg.Connection, ref: ReferenceData) -> dict[str, int]:
    """Make the ref_* tables hold exactly `ref`, in one transaction; returns rows written or deleted per
    table (all zero when they already did). Needs migration 0005."""
    tables = _tables(ref)
    changed: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        deletes = []
        for table in tables:  # parents first: a new row may reference a new parent
            changed[table.name], delete = _sync_table(conn, table)
            deletes.append((table.name, delete))
        for name, delete in reversed(deletes):  # children first: a removed parent may still be referenced
            changed[name] += conn.execute(delete).rowcount
    return changed
