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

Access (issue 8): the dbt project grants the marts to the roles ``bi_reader``
and ``auditor`` and its restricted models to ``hr_restricted``
(``dbt_project/macros/access.sql``). The ``audit`` schema is no dbt model, so a
copy that includes it grants it here, in the same transaction, to ``auditor``
only (read-only), withholding the columns that may hold source text (a
quarantined HR line carries a name and an email). The roles are created when
missing (:func:`ensure_roles`) and never dropped: they are cluster-wide.

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

# Roles of the server warehouse; the same names as dbt_project/macros/access.sql.
ACCESS_ROLES = ("bi_reader", "auditor", "hr_restricted")
AUDIT_READER = "auditor"
# audit columns that may hold source text (names, emails): not granted to the auditor
AUDIT_WITHHELD_COLUMNS = {"quarantine": ("raw_text",)}

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


def ensure_roles(cur, roles: Iterable[str] = ACCESS_ROLES) -> None:
    """Create the access roles that do not exist yet (NOLOGIN; never dropped).

    Roles are cluster-wide and other builds may create them at the same moment: a
    concurrent creation (duplicate_object, unique_violation) counts as success.
    """
    from psycopg2 import errors, sql

    for role in roles:
        cur.execute("select 1 from pg_catalog.pg_roles where rolname = %s", [role])
        if cur.fetchone():
            continue
        cur.execute("savepoint rto_role")
        try:
            cur.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
        except (errors.DuplicateObject, errors.UniqueViolation):
            cur.execute("rollback to savepoint rto_role")
        else:
            cur.execute("release savepoint rto_role")


def grant_audit(cur, tables: Iterable[str]) -> None:
    """Let the auditor read (only read) the audit tables, minus the withheld columns."""
    from psycopg2 import sql

    ensure_roles(cur, (AUDIT_READER,))
    role = sql.Identifier(AUDIT_READER)
    cur.execute(sql.SQL("grant usage on schema audit to {}").format(role))
    for table in tables:
        target = sql.Identifier("audit", table)
        # a truncated (not recreated) table keeps its grants: start from none each time
        cur.execute(sql.SQL("revoke all on {} from {}").format(target, role))
        withheld = AUDIT_WITHHELD_COLUMNS.get(table, ())
        if not withheld:
            cur.execute(sql.SQL("grant select on {} to {}").format(target, role))
            continue
        cur.execute(
            "select attname from pg_attribute where attrelid = to_regclass(%s) "
            "and attnum > 0 and not attisdropped order by attnum",
            [target.as_string(cur)],
        )
        columns = [name for (name,) in cur.fetchall() if name not in withheld]
        cur.execute(
            sql.SQL("grant select ({}) on {} to {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), target, role
            )
        )


def copy_warehouse(
    duckdb_path: Path | str,
    pg: psycopg2.extensions.connection | None = None,
    schemas: Iterable[str] = ("raw",),
) -> dict[str, int]:
    """Copy every table of ``schemas`` from the DuckDB file into PostgreSQL.

    The ``audit`` schema, when copied, is granted to the auditor (:func:`grant_audit`).
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
            audit_tables = [table for schema, table in tables if schema == "audit"]
            if audit_tables:
                grant_audit(cur, audit_tables)
        pg.commit()
    except BaseException:
        pg.rollback()
        raise
    finally:
        if own:
            pg.close()
    return copied
