"""The same dbt project on PostgreSQL, from raw tables loaded the same way.

The small hand-made company (``small_company``) is written into DuckDB with the
loader's DDL, copied table by table into a fresh PostgreSQL database by
``rto.postgres.copy_warehouse``, and built there with ``dbt seed`` and
``dbt build --target postgres`` (every model, data test and unit test must
pass). The marts must then equal, row by row, what the same project builds on
DuckDB from the same raw tables.

The database is created with a linguistic (ICU en-US) collation on purpose,
where 'a' sorts before 'B' and '_' before letters: the project's tie-breaks on
string ids must still follow code-point order (macro ``code_point_order``).

Needs the PostgreSQL service (``RTO_PG_HOST`` etc., defaults 127.0.0.1:5432,
user postgres); skipped when it cannot be reached. Each database gets a unique
name and is dropped at the end. dbt target and logs go under ``var/test/dbt``.
"""

from __future__ import annotations

import math
import os
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from rto.postgres import connect, connection_settings, copy_warehouse, pg_type
from rto.warehouse import raw_table_ddl
from tests.dbt.small_company import write_raw

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "dbt_project"
VAR = Path(os.environ["RTO_TEST_VAR"]) / "dbt"  # per xdist worker (conftest)

MARTS = {
    "fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "fct_promotion_gate": ["nomination_id"],
    "fct_exits": ["employee_id"],
    "fct_attrition_monthly": ["month_start", "department_id", "compliance_band"],
    "dim_employee": ["employee_id", "valid_from"],
    "dim_org_unit": ["org_unit_id"],
    "dim_policy": ["policy_id"],
    "dim_date": ["date_day"],
}


# --------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------


def _admin():
    con = connect(dbname="postgres", connect_timeout=5)
    con.autocommit = True
    return con


@pytest.fixture(scope="module")
def postgres_available() -> None:
    try:
        _admin().close()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means no server
        if os.environ.get("CI"):  # .ci/run starts the server: in CI a missing one is a failure
            pytest.fail(f"PostgreSQL not reachable in CI ({connection_settings()}): {exc}")
        pytest.skip(f"PostgreSQL not reachable ({connection_settings()}): {exc}")


@pytest.fixture(scope="module")
def new_database(postgres_available):
    """A factory of fresh, uniquely named databases, all dropped at the end of the module."""
    created: list[str] = []

    def create() -> str:
        name = f"rto_dbt_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        con = _admin()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(
                        f"create database {name} template template0 encoding 'UTF8' "
                        "locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'"
                    )
                except Exception:  # noqa: BLE001 - a server without ICU: its default collation
                    cur.execute(f"create database {name} template template0 encoding 'UTF8'")
            created.append(name)
        finally:
            con.close()
        return name

    yield create
    con = _admin()
    try:
        with con.cursor() as cur:
            for name in created:
                cur.execute(f"drop database if exists {name} with (force)")
    finally:
        con.close()


def _query_pg(dbname: str, sql: str) -> tuple[list[str], list[tuple]]:
    con = connect(dbname=dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# rto.postgres: the copy of the raw tables
# --------------------------------------------------------------------------------------


def test_connection_settings_come_from_the_environment():
    assert connection_settings({}) == {
        "host": "127.0.0.1",
        "port": 5432,
        "user": "postgres",
        "dbname": "test",
    }
    env = {"RTO_PG_HOST": "db", "RTO_PG_PORT": "6543", "RTO_PG_USER": "rto", "RTO_PG_DBNAME": "w"}
    assert connection_settings(env) == {"host": "db", "port": 6543, "user": "rto", "dbname": "w"}


def test_duckdb_types_map_to_postgres_types():
    assert pg_type("VARCHAR") == "character varying"
    assert pg_type("TIMESTAMP") == "timestamp without time zone"
    assert pg_type("DECIMAL(6,4)") == "numeric(6,4)"
    with pytest.raises(ValueError, match="MAP"):
        pg_type("MAP(VARCHAR, INTEGER)")


def _copy(warehouse: Path, dbname: str) -> dict[str, int]:
    con = connect(dbname=dbname)
    try:
        return copy_warehouse(warehouse, con)
    finally:
        con.close()


LAYOUT_SQL = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
    from pg_attribute as a
    inner join pg_class as c on a.attrelid = c.oid
    inner join pg_namespace as n on c.relnamespace = n.oid
    where n.nspname = 'raw' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
    order by c.relname collate "C", a.attnum
"""


def test_copy_keeps_layout_values_and_is_idempotent(tmp_path, new_database):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(raw_table_ddl())
        con.execute("create schema audit; create table audit.ignored (x integer)")
        lineage = ["sha", "badge/events/2023-05-10/NYC.csv.gz", 2, date(2023, 5, 13), "run"]
        rows = [
            ["EV1", "B1", "NYC", "", datetime(2023, 5, 10, 9, 0, 0, 123456), None, "GRANTED"],
            ["EV2", None, "NYC", 'a "quoted", two\nline text', datetime(2023, 5, 10), "IN", "Zoë"],
        ]
        for row in rows:
            con.execute(
                "insert into raw.badge_events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row + lineage,
            )
        con.execute(
            "insert into raw.hr_job_history values "
            "('E1', date '2023-01-02', 7, null, 'OU1', null, 'hire', 'f', 'p', null, "
            "date '2023-01-03', 'r')"
        )
        duck_layout = [
            (table, column, pg_type(data_type), nullable == "NO")
            for table, column, data_type, nullable in con.execute(
                "select table_name, column_name, data_type, is_nullable "
                "from information_schema.columns where table_schema = 'raw' "
                "order by table_name, ordinal_position"
            ).fetchall()
        ]
    dbname = new_database()

    copied = _copy(warehouse, dbname)
    assert len(copied) == 14
    assert copied["raw.badge_events"] == 2
    assert copied["raw.hr_job_history"] == 1
    assert copied["raw.hr_sites"] == 0
    assert "audit.ignored" not in copied  # only the schemas asked for
    assert _query_pg(dbname, LAYOUT_SQL)[1] == duck_layout

    _, events = _query_pg(dbname, "select * from raw.badge_events order by event_id")
    assert [list(r) for r in events] == [row + lineage for row in rows]  # '' stays '', null null
    _, jobs = _query_pg(
        dbname, "select job_level, job_family, _line_number from raw.hr_job_history"
    )
    assert jobs == [(7, None, None)]

    # a second copy replaces the rows, it does not append; a view on the raw
    # table (as dbt's staging views are) keeps working
    pg = connect(dbname=dbname)
    with pg, pg.cursor() as cur:
        cur.execute("create view public.events_seen as select event_id from raw.badge_events")
    pg.close()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw.badge_events where event_id = 'EV2'")
    assert _copy(warehouse, dbname)["raw.badge_events"] == 1
    assert _query_pg(dbname, "select event_id from public.events_seen")[1] == [("EV1",)]

    # a changed layout recreates the table (and drops what depended on it)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table raw.badge_events add column vendor_note varchar")
    assert _copy(warehouse, dbname)["raw.badge_events"] == 1
    columns, _ = _query_pg(dbname, "select * from raw.badge_events")
    assert columns[-1] == "vendor_note"
    assert _query_pg(dbname, "select to_regclass('public.events_seen') is null")[1] == [(True,)]


# --------------------------------------------------------------------------------------
# The project built on both engines from the same raw tables
# --------------------------------------------------------------------------------------


def _dbt(args: list[str], name: str, **env: str):
    """Invoke dbt in-process with its own target and log folders under var/."""
    from dbt.cli.main import dbtRunner

    env = {
        "DBT_PROFILES_DIR": str(PROJECT),
        "DBT_TARGET_PATH": str(VAR / name / "target"),
        "DBT_LOG_PATH": str(VAR / name / "logs"),
        **env,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = dbtRunner().invoke([*args, "--project-dir", str(PROJECT)])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert result.success, (
        args,
        result.exception,
        [
            (r.node.name, str(r.status), r.message)
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass")
        ],
    )
    return result


# Held back from the first PostgreSQL build and delivered before the second: a badge
# file from May 2023 (far outside the lookback window) and the newest HR snapshot,
# which changes the past (the older snapshot is wrong on purpose, see small_company).
LATE_EVENTS = "badge/events/2023-05-16/NYC.csv.gz"
LATE_HR = date(2025, 1, 15)


def _hold_back(warehouse: Path) -> list[str]:
    """Move the late rows into schema held (not copied to PostgreSQL); returns the tables."""
    with duckdb.connect(str(warehouse)) as con:
        hr = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'raw' and table_name like 'hr\\_%' escape '\\'"
            ).fetchall()
        ]
        where = {t: f"_delivery_date = date '{LATE_HR}'" for t in hr}
        where["badge_events"] = f"_source_path = '{LATE_EVENTS}'"
        con.execute("create schema held")
        for table, condition in where.items():
            con.execute(f"create table held.{table} as select * from raw.{table} where {condition}")
            con.execute(f"delete from raw.{table} where {condition}")
        return sorted(where)


def _deliver_held(warehouse: Path, tables: list[str]) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for table in tables:
            con.execute(f"insert into raw.{table} select * from held.{table}")
        con.execute("drop schema held cascade")


@pytest.fixture(scope="module")
def both_builds(tmp_path_factory, new_database) -> tuple[Path, str]:
    """(DuckDB file, PostgreSQL database) holding the same company, each built by dbt.

    PostgreSQL builds twice: first without the late rows (``_hold_back``), then,
    incrementally, after they arrive. DuckDB builds once, from scratch, on all rows.
    """
    warehouse = tmp_path_factory.mktemp("pg_company") / "warehouse.duckdb"
    write_raw(warehouse)
    held = _hold_back(warehouse)
    assert len(held) == 11
    dbname = new_database()
    copied = _copy(warehouse, dbname)
    assert copied["raw.badge_events"] > 1000 and len(copied) == 14

    # Postgres: seeds, then every model, data test and unit test
    pg_env = {"RTO_PG_DBNAME": dbname, "RTO_WAREHOUSE_PATH": str(warehouse)}
    _dbt(["seed", "--target", "postgres"], "pg_postgres", **pg_env)
    build = _dbt(["build", "--target", "postgres", "--threads", "4"], "pg_postgres", **pg_env)
    kinds = {r.node.resource_type for r in build.result}
    assert {"model", "test", "unit_test"} <= {str(k) for k in kinds}

    # the late rows arrive; the second build is incremental
    _deliver_held(warehouse, held)
    _copy(warehouse, dbname)
    _dbt(["build", "--target", "postgres", "--threads", "4"], "pg_postgres", **pg_env)

    # DuckDB: the models only (tests/dbt/test_dbt_project.py runs its tests)
    _dbt(["seed"], "pg_duckdb", RTO_WAREHOUSE_PATH=str(warehouse))
    _dbt(["run"], "pg_duckdb", RTO_WAREHOUSE_PATH=str(warehouse))
    return warehouse, dbname


def _normalise(value):
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else round(value, 12)
    return value


def _sorted_rows(columns: list[str], rows: list[tuple], key: list[str]) -> list[tuple]:
    positions = [columns.index(k) for k in key]
    normalised = [tuple(_normalise(v) for v in row) for row in rows]
    return sorted(
        normalised,
        key=lambda r: tuple((r[p] is None, "" if r[p] is None else r[p]) for p in positions),
    )


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_postgres_marts_equal_duckdb_marts(both_builds, mart):
    warehouse, dbname = both_builds
    # dbt-duckdb keeps its in-process connection open: same configuration (not read-only)
    con = duckdb.connect(str(warehouse))
    try:
        cur = con.execute(f"select * from marts.{mart}")
        duck_columns = [d[0] for d in cur.description]
        duck_rows = cur.fetchall()
    finally:
        con.close()
    pg_columns, pg_rows = _query_pg(dbname, f"select * from marts.{mart}")

    assert pg_columns == duck_columns
    assert len(duck_rows) > 0
    key = MARTS[mart]
    assert _sorted_rows(pg_columns, pg_rows, key) == _sorted_rows(duck_columns, duck_rows, key)


def test_raw_tables_on_postgres_equal_duckdb(both_builds):
    warehouse, dbname = both_builds
    con = duckdb.connect(str(warehouse))
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        ]
        duck = {
            t: sorted(con.execute(f"select * from raw.{t}").fetchall(), key=repr) for t in tables
        }
    finally:
        con.close()
    for table, rows in duck.items():
        pg_rows = sorted(_query_pg(dbname, f"select * from raw.{table}")[1], key=repr)
        assert len(rows) > 0 and pg_rows == rows, table


def test_second_postgres_build_was_incremental(both_builds):
    """The late rows were found by the change detection, not by a full rebuild."""
    _, dbname = both_builds
    _, scope = _query_pg(
        dbname,
        "select scope_kind, employee_id, date_day, reason from intermediate.int_rebuild_scope",
    )
    assert not [r for r in scope if r[0] == "all"], scope
    assert ("date", None, date(2023, 5, 16), "new badge events") in scope
    # the lookback window starts 14 days (var badge_lookback_days) before the older as-of
    assert ("from", None, date(2024, 5, 18), "lookback window") in scope
    changed = {r[1] for r in scope if r[0] == "employee"}
    assert changed  # the newer HR snapshot changes people's past
    _, builds = _query_pg(
        dbname,
        "select build_number, as_of_date from intermediate.int_rebuild_state_builds "
        "order by build_number",
    )
    assert builds == [(1, date(2024, 6, 1)), (2, date(2025, 1, 15))]
