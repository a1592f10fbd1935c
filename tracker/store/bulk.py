"""Bulk INSERTs and UPDATEs of plain column values, without per-value statement processing.

The polling path writes a dozen event rows, a shipment update and a few outbox messages
per refresh, thousands a second. Going through `Connection.execute(stmt, rows)` spends
more time in SQLAlchemy's generic parameter handling (dict -> positional mapping, one type
processor call per value, the sqlite DATETIME formatter) than the database spends storing
the rows. Here a statement is compiled once per (table, columns, dialect) and every value
is converted by a small per-column function chosen from the column's type. On SQLite the
rows then go to the driver's `executemany` as tuples; on PostgreSQL a batch goes as one
statement over `unnest` of one array per column, because the server would otherwise
start an executor for every row, and a large batch of `insert_tuples` (a poll's events)
goes in by COPY.

Values are stored exactly as SQLAlchemy would store them: `tests/integration/test_bulk_writes.py`
compares the converters with SQLAlchemy's own processors and reads rows back through the
ORM on both databases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker.models.types import UTCDateTime, utc_text

Converter = Callable[[Any], Any]

log = logging.getLogger("tracker.store.bulk")


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    #: the row keys in the statement's parameter order
    names: tuple[str, ...]
    #: (position, converter) of the values that are not handed to the driver as they are
    converters: tuple[tuple[int, Converter], ...]
    #: PostgreSQL: the same statement over one array parameter per column (`_unnest_sql`)
    array_sql: str | None = None


_plans: dict[tuple[Any, ...], _Plan] = {}


#: the last instant `_utc_sqlite` wrote, and its text
_last_utc: tuple[datetime | None, str | None] = (None, None)


def _utc_sqlite(value: datetime | None) -> str | None:
    # sqlite's DATETIME stores "YYYY-MM-DD HH:MM:SS.ffffff" of naive UTC (UTCDateTime)
    global _last_utc
    # values are converted column by column, and a batch repeats one object down a column
    # (the poll's `now` in recorded_at, updated_at, last_polled_at): the last text is kept.
    # Scan times seldom repeat, and an LRU cache spent more on hashing them than it saved
    last = _last_utc
    if last[0] is value:
        return last[1]
    text = None if value is None else utc_text(value, " ")
    _last_utc = (value, text)
    return text


def _utc_postgres(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime refused; use an aware UTC datetime")
    return value


def converter(table: Table, name: str, dialect: Dialect) -> Converter | None:
    """How a value of column `name` is handed to the driver on `dialect`."""
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime):
        return _utc_sqlite if dialect.name == "sqlite" else _utc_postgres
    # everything else as SQLAlchemy itself would (None for most types on these drivers)
    return column_type._cached_bind_processor(dialect)


def _compile(statement: Any, dialect: Dialect, table: Table, names: Sequence[str]) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    key_of = {f"b_{n}": n for n in names} | {n: n for n in names}
    columns = tuple(key_of.get(p, "") for p in compiled.positiontup or ())
    if sorted(columns) != sorted(names):
        raise RuntimeError(f"unexpected parameters in bulk statement on {table.name}: {compiled.positiontup}")
    return _Plan(
        sql=compiled.string,
        names=columns,
        converters=tuple(
            (i, f) for i, f in enumerate(converter(table, name, dialect) for name in columns) if f is not None
        ),
    )


def _unnest_sql(
    table: Table, names: Sequence[str], dialect: Dialect, *, key: str | None, conflict: Sequence[str]
) -> str:
    """PostgreSQL: INSERT (or, with `key`, UPDATE ... FROM) over `unnest` of one array per
    column, `names` giving the parameter order.

    asyncpg's executemany runs the statement once per row, and the server starts an executor
    for each: one statement over arrays does that once for the whole batch.
    """
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(f"${i}::{table.c[n].type.compile(dialect=dialect)}[]" for i, n in enumerate(names, 1))
    columns = [quote(n) for n in names]
    if key is None:
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
        if conflict:
            sql += f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO NOTHING"
        return sql
    sets = ", ".join(f"{c} = v.{c}" for n, c in zip(names, columns, strict=True) if n != key)
    return (
        f"UPDATE {quote(table.name)} SET {sets} FROM unnest({arrays}) AS v({', '.join(columns)})"
        f" WHERE {quote(table.name)}.{quote(key)} = v.{quote(key)}"
    )


def _converted(plan: _Plan, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows of values in the plan's order, each value as the driver takes it."""
    converters = plan.converters
    if not converters or not rows:
        return [tuple(row) for row in rows]
    # column by column: `map` and `zip` run the loops in C
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, convert in converters:
        columns[i] = list(map(convert, columns[i]))
    return list(zip(*columns, strict=True))


async def _execute(conn: AsyncConnection, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> None:
    await _run(conn, plan, _converted(plan, list(map(_values_of(plan.names), rows))))


def _values_of(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row dict's values in `names` order, taken in C (`itemgetter`)."""
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    return itemgetter(*names)


async def _run(conn: AsyncConnection, plan: _Plan, values: list[tuple[Any, ...]]) -> None:
    if plan.array_sql is not None and len(values) > 1:
        await conn.exec_driver_sql(plan.array_sql, tuple(list(column) for column in zip(*values, strict=True)))
    else:
        await conn.exec_driver_sql(plan.sql, values)


def _with_arrays(plan: _Plan, table: Table, dialect: Dialect, *, key: str | None, conflict: Sequence[str]) -> _Plan:
    if dialect.name != "postgresql":
        return plan
    array_sql = _unnest_sql(table, plan.names, dialect, key=key, conflict=conflict)
    return _Plan(plan.sql, plan.names, plan.converters, array_sql)


def _insert_plan(dialect: Dialect, table: Table, names: tuple[str, ...], skip_conflicts_on: Sequence[str]) -> _Plan:
    key = ("insert", table.name, names, dialect.name, tuple(skip_conflicts_on))
    plan = _plans.get(key)
    if plan is None:
        values: dict[str, Any] = {n: bindparam(n) for n in names}
        statement: Any
        if skip_conflicts_on:
            flavour = postgresql if dialect.name == "postgresql" else sqlite
            statement = (
                flavour.insert(table).values(values).on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
            )
        else:
            statement = insert(table).values(values)
        plan = _compile(statement, dialect, table, names)
        plan = _plans[key] = _with_arrays(plan, table, dialect, key=None, conflict=skip_conflicts_on)
    return plan


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, skip_conflicts_on: Sequence[str] = ()
) -> None:
    """INSERT rows (dicts with the same keys); with `skip_conflicts_on`, rows clashing on
    that unique key are skipped (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    await _execute(conn, _insert_plan(conn.dialect, table, tuple(rows[0]), skip_conflicts_on), rows)


async def insert_tuples(
    conn: AsyncConnection,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts_on: Sequence[str] = (),
) -> None:
    """`insert_rows` for rows already written as sequences of values in `names` order, which
    must be the table's column order (the order the statement binds them in; checked): the
    hot path builds no dict per row."""
    if not rows:
        return
    plan = _insert_plan(conn.dialect, table, names, skip_conflicts_on)
    if plan.names != names:
        raise ValueError(f"values of {table.name} must come in table order: {plan.names}")
    values = _converted(plan, rows)
    if conn.dialect.name == "postgresql" and len(values) >= COPY_MIN_ROWS and await _copied(conn, table, names, values):
        return
    await _run(conn, plan, values)


#: PostgreSQL: `insert_tuples` batches of at least this many rows go in by COPY. For 24,000
#: event rows in one transaction (`bench/pg_event_insert.py`, three runs) COPY cost the
#: server 11 to 12.5 us of CPU a row against 17 to 25 us for the INSERT over arrays with
#: ON CONFLICT, and the worker 5 to 9 us against 12 to 14 us. It takes three round trips
#: (savepoint, COPY, release) instead of one, which a small batch would notice
COPY_MIN_ROWS = 64


async def _copied(conn: AsyncConnection, table: Table, names: tuple[str, ...], values: list[tuple[Any, ...]]) -> bool:
    """PostgreSQL: COPY the rows in (binary), in a savepoint; True when done.

    COPY has no ON CONFLICT: a row that clashes with a stored one (or another of the batch)
    on a unique key fails the whole COPY. The savepoint then takes back what it wrote, and
    False sends the batch to the INSERT, which skips the clashing rows as it always did, or
    raises, as SQLAlchemy's error, whatever else the server refused.
    """
    # imported here: a process on SQLite never loads the driver (about 0.1 s at start-up)
    import asyncpg

    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None:
        return False
    try:
        async with conn.begin_nested():
            await driver.copy_records_to_table(table.name, records=values, columns=names)
    except asyncpg.UniqueViolationError:
        return False
    except asyncpg.PostgresError as err:
        # not a clash: the INSERT will likely be refused too, or every such batch pays for
        # a failed COPY (as with row-level security, which COPY FROM does not support)
        log.warning("COPY refused, inserting instead", extra={"table": table.name, "error": str(err)})
        return False
    return True


async def update_rows(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str) -> None:
    """UPDATE each row's columns where column `key` equals the row's `key` value."""
    if not rows:
        return
    dialect = conn.dialect
    names = tuple(rows[0])
    cache_key = ("update", table.name, names, dialect.name, key)
    plan = _plans.get(cache_key)
    if plan is None:
        statement = (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({n: bindparam(f"b_{n}") for n in names if n != key})
        )
        plan = _compile(statement, dialect, table, names)
        plan = _plans[cache_key] = _with_arrays(plan, table, dialect, key=key, conflict=())
    await _execute(conn, plan, rows)
