"""Copy the loader's tables from a DuckDB warehouse into PostgreSQL.

The loader (``rto.ingest``) writes DuckDB only. To build the dbt project on
PostgreSQL from raw tables "loaded the same way", this module copies every
table of the ``raw`` schema (and of any other schema asked for, e.g. ``audit``)
as the loader left it: same column names and order, the DuckDB types mapped
to their PostgreSQL equivalents, NOT NULL kept (keys are not), every row
including the lineage columns. Data travels as CSV through ``COPY ... FROM
STDIN`` in Arrow record batches, so memory stays bounded on large tables.

A copy is idempotent and one transaction: a table whose layout is unchanged
is truncated and refilled (the dbt staging views on it keep working); a new
or changed one is dropped (with the views that depend on it, which the next
``dbt build`` recreates) and created again. A reader sees the old rows or the
new ones, never a mix.

Connection settings come from the environment, never from the repository:
``RTO_PG_HOST``, ``RTO_PG_PORT``, ``RTO_PG_USER``, ``RTO_PG_DBNAME`` (defaults
127.0.0.1, 5432, postgres, test). A password, when the server wants one, is
read by libpq itself from ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import psycopg2.extensions

DEFAULTS = {
    "RTO_PG_HOST": "127.0.0.1",
    "RTO_PG_PORT": "5432",
    "RTO_PG_USER": "postgres",
    "RTO_PG_DBNAME": "test",
}

# DuckDB catalogue type -> PostgreSQL type, spelt as PostgreSQL's format_type()
# prints it so that an existing table's layout can be compared as text
_PG_TYPES = {
    "VARCHAR": "character varying",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "FLOAT": "real",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")

BATCH_ROWS = 100_000

# (name, PostgreSQL type, not null) of each column, in order
Layout = list[tuple[str, str, bool]]


def connection_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """psycopg2 keyword arguments from the RTO_PG_* environment variables."""
    env = os.environ if env is None else env
    value = {name: env.get(name) or default for name, default in DEFAULTS.items()}
    return {
        "host": value["RTO_PG_HOST"],
        "port": int(value["RTO_PG_PORT"]),
        "user": value["RTO_PG_USER"],
        "dbname": value["RTO_PG_DBNAME"],
    }


def connect(**overrides: Any) -> psycopg2.extensions.connection:
    """A psycopg2 connection from the environment; keyword arguments override it."""
    import psycopg2

    return psycopg2.connect(**(connection_settings() | overrides))


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL type for a DuckDB catalogue type name; unknown types are refused."""
    name = duckdb_type.upper()
    if name in _PG_TYPES:
        return _PG_TYPES[name]
    decimal = _DECIMAL.fullmatch(name)
    if decimal:
        return f"numeric({decimal[1]},{decimal[2]})"
    raise ValueError(f"no PostgreSQL type for DuckDB type {duckdb_type!r}")


def _duckdb_layout(src: duckdb.DuckDBPyConnection, schema: str, table: str) -> Layout:
    rows = src.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [(name, pg_type(data_type), nullable == "NO") for name, data_type, nullable in rows]


def _postgres_layout(cur, target) -> Layout:
    """The columns of an existing PostgreSQL table (empty when there is none)."""
    cur.execute(
        "select attname, format_type(atttypid, atttypmod), attnotnull from pg_attribute "
        "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped order by attnum",
        [target.as_string(cur)],
    )
    return [tuple(row) for row in cur.fetchall()]


def _replace_table(cur, target, layout: Layout) -> None:
    """Empty the table when its layout is unchanged, else (re)create it."""
    from psycopg2 import sql

    if _postgres_layout(cur, target) == layout:
        cur.execute(sql.SQL("truncate table {}").format(target))
        return
    cur.execute(sql.SQL("drop table if exists {} cascade").format(target))
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(name), sql.SQL(type_), sql.SQL(" not null" if not_null else "")
        )
        for name, type_, not_null in layout
    )
    cur.execute(sql.SQL("create table {} ({})").format(target, columns))


def _copy_rows(src: duckdb.DuckDBPyConnection, cur, schema: str, table: str, target) -> int:
    """Stream the DuckDB table into the PostgreSQL one; returns the number of rows."""
    import pyarrow.csv

    quoted = ".".join('"' + name.replace('"', '""') + '"' for name in (schema, table))
    copy = f"copy {target.as_string(cur)} from stdin with (format csv)"
    # Arrow's CSV quotes every string (so '' stays an empty string) and leaves
    # a null unquoted and empty, which COPY's csv format reads as NULL
    options = pyarrow.csv.WriteOptions(include_header=False)
    rows = 0
    for batch in src.sql(f"select * from {quoted}").to_arrow_reader(BATCH_ROWS):
        if batch.num_rows:
            buffer = io.BytesIO()
            pyarrow.csv.write_csv(batch, buffer, options)
            buffer.seek(0)
            cur.copy_expert(copy, buffer)
            rows += batch.num_rows
    return rows


def copy_warehouse(
    duckdb_path: Path | str,
    pg: psycopg2.extensions.connection | None = None,
    schemas: Iterable[str] = ("raw",),
) -> dict[str, int]:
    """Copy every table of ``schemas`` from the DuckDB file into PostgreSQL.

    Returns the number of rows copied per ``schema.table``. ``pg`` defaults to
    :func:`connect` (and is then closed); a connection passed in is committed
    and left open.
    """
    import duckdb
    from psycopg2 import sql

    schemas = list(schemas)
    own = pg is None
    pg = connect() if own else pg
    copied: dict[str, int] = {}
    try:
        with duckdb.connect(str(duckdb_path), read_only=True) as src, pg.cursor() as cur:
            tables = src.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' and table_schema in "
                f"({', '.join('?' * len(schemas))}) order by table_schema, table_name",
                schemas,
            ).fetchall()
            for schema in sorted({schema for schema, _ in tables}):
                cur.execute(
                    sql.SQL("create schema if not exists {}").format(sql.Identifier(schema))
                )
            for schema, table in tables:
                target = sql.Identifier(schema, table)
                _replace_table(cur, target, _duckdb_layout(src, schema, table))
                copied[f"{schema}.{table}"] = _copy_rows(src, cur, schema, table, target)
        pg.commit()
    except BaseException:
        pg.rollback()
        raise
    finally:
        if own:
            pg.close()
    return copied
