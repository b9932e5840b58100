"""The build warehouse: one DuckDB file with schemas raw, audit and the dbt schemas.

Only the nightly build writes it (DuckDB has a single writer); BI tools read
the published copies under ``serving/`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rto.ingest.sources import DATE, FILE_SPECS, INTEGER, TIMESTAMP

if TYPE_CHECKING:
    import duckdb

_SQL_TYPES = {DATE: "date", TIMESTAMP: "timestamp", INTEGER: "integer"}

LINEAGE_COLUMNS = """
    _file_id varchar not null,
    _source_path varchar not null,
    _line_number integer,
    _delivery_date date not null,
    _run_id varchar not null
"""

AUDIT_DDL = """
create schema if not exists audit;
create table if not exists audit.source_files (
    file_id varchar primary key,
    source varchar not null,
    entity varchar not null,
    source_path varchar not null,
    delivery_date date not null,
    landing_path varchar not null,
    sha256 varchar not null,
    bytes bigint not null,
    rows_in bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    status varchar not null,
    message varchar,
    pulled_at timestamp not null,
    loaded_at timestamp,
    run_id varchar not null
);
create table if not exists audit.quarantine (
    file_id varchar not null,
    source_path varchar not null,
    line_number integer,
    reason varchar not null,
    raw_text varchar,
    run_id varchar not null,
    quarantined_at timestamp not null
);
create table if not exists audit.dq_results (
    run_id varchar not null,
    step varchar not null,
    suite varchar not null,
    expectation varchar not null,
    column_name varchar,
    severity varchar not null,
    success boolean not null,
    observed_value varchar,
    unexpected_count bigint,
    element_count bigint,
    checked_at timestamp not null
);
create table if not exists audit.pipeline_runs (
    run_id varchar not null,
    dag_id varchar not null,
    started_at timestamp,
    finished_at timestamp,
    status varchar not null,
    message varchar
);
create table if not exists audit.freshness (
    run_id varchar not null,
    dag_id varchar not null,
    source varchar not null,
    delivery_date date not null,
    expected_path varchar not null,
    status varchar not null,
    grace_minutes double not null,
    checked_at timestamp not null
);
create table if not exists audit.publications (
    run_id varchar not null,
    published_at timestamp not null,
    target varchar not null,
    tables integer not null,
    total_rows bigint not null
);
-- what the retention task purged (rto.retention): one row per file and target
-- (raw.badge_events rows, audit.quarantine.raw_text cleared, landing bytes)
create table if not exists audit.purges (
    run_id varchar not null,
    source_path varchar not null,
    target varchar not null,
    rows bigint,
    bytes bigint,
    cutoff date not null,
    retention_months integer not null,
    purged_at timestamp not null
);
"""


def raw_table_ddl() -> str:
    statements = ["create schema if not exists raw;"]
    for spec in FILE_SPECS:
        cols = ",\n    ".join(
            f'"{c.name}" {_SQL_TYPES.get(c.type, "varchar")}' for c in spec.columns
        )
        statements.append(
            f"create table if not exists {spec.table} (\n    {cols},\n{LINEAGE_COLUMNS});"
        )
    return "\n".join(statements)


def is_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether ``schema.name`` exists as a table (not a view) in the open warehouse."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ? and table_type = 'BASE TABLE'",
            [schema, name],
        ).fetchall()[0][0]
    )


DEFAULT_MEMORY_LIMIT = "4GB"


def memory_limit() -> str:
    """DuckDB's memory cap for every warehouse connection (the dbt profile sets the same).

    ``RTO_DUCKDB_MEMORY_LIMIT`` (default 4GB); beyond it DuckDB spills to
    ``<warehouse>.tmp/`` next to the file. Without a cap DuckDB takes up to 80% of the
    machine's memory.
    """
    return os.environ.get("RTO_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, creating the raw and audit schemas on first use."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        # SET, not connect(config=...): dbt may hold the same file open in this process,
        # and DuckDB refuses a second connection with a different configuration
        con.execute("set memory_limit = ?", [memory_limit()])
        # The loader numbers each file's lines by the rows' order in its read. dbt runs
        # with the order off (profiles.yml) and, in one process, shares this database.
        con.execute("set preserve_insertion_order = true")
        if not read_only:
            con.execute(AUDIT_DDL)
            con.execute(raw_table_ddl())
        yield con
    finally:
        con.close()
