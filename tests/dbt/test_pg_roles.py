"""Who can read what on the PostgreSQL warehouse (issue 8).

The small hand-made company is written into DuckDB with the loader's DDL,
together with a few audit rows (one of them a quarantined HR line holding a
name and an email), copied into a fresh PostgreSQL database with
``rto.postgres.copy_warehouse`` (schemas ``raw`` and ``audit``), and built there
by dbt. Then the test connects as the superuser and ``SET ROLE``s to each role
of ``dbt_project/macros/access.sql`` to prove what it can and cannot read:

- ``bi_reader``: the marts; not audit, staging, raw, reference or restricted;
- ``auditor``: the marts and audit (read-only, without quarantined source text);
  not raw, staging or restricted, and it cannot write anywhere;
- ``hr_restricted``: the restricted directory with names and emails.

The roles are cluster-wide: they are created when missing and never dropped.
Needs the PostgreSQL service; skipped when none answers, a failure under CI.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from psycopg2 import errors

from rto.postgres import ACCESS_ROLES, connect, connection_settings, copy_warehouse
from rto.warehouse import AUDIT_DDL
from tests.dbt.small_company import EMPLOYEES, write_raw
from tests.dbt.test_postgres import _dbt

QUARANTINED_LINE = '{"employee_id": "E010", "full_name": "Secret Person", "email": "sp@x", oops'


def _admin():
    con = connect(dbname="postgres", connect_timeout=5)
    con.autocommit = True
    return con


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A fresh database holding the company built by dbt; dropped at the end."""
    try:
        _admin().close()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means no server
        if os.environ.get("CI"):  # .ci/run starts the server: in CI a missing one is a failure
            pytest.fail(f"PostgreSQL not reachable in CI ({connection_settings()}): {exc}")
        pytest.skip(f"PostgreSQL not reachable ({connection_settings()}): {exc}")

    warehouse = tmp_path_factory.mktemp("pg_roles") / "warehouse.duckdb"
    write_raw(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(AUDIT_DDL)
        pulled = datetime(2025, 1, 16, 2, 0)
        files = [  # path, entity, rows in, loaded, quarantined
            ("hr/2025-01-15/employees.jsonl", "employees", 10, 9, 1),
            ("hr/2025-01-15/sites.jsonl", "sites", 2, 2, 0),
        ]
        for path, entity, rows_in, loaded, quarantined in files:
            con.execute(
                "insert into audit.source_files values "
                "(?, 'hr', ?, ?, ?, ?, 'sha', 100, ?, ?, ?, 'loaded', null, ?, ?, 'run1')",
                [path, entity, path, date(2025, 1, 15), "landing/" + path]
                + [rows_in, loaded, quarantined, pulled, pulled],
            )
        con.execute(
            "insert into audit.quarantine values "
            "('hr/2025-01-15/employees.jsonl', 'hr/2025-01-15/employees.jsonl', 11, "
            "'not valid JSON', ?, 'run1', ?)",
            [QUARANTINED_LINE, pulled],
        )

    name = f"rto_roles_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.cursor() as cur:
        cur.execute(f"create database {name} template template0 encoding 'UTF8'")
    admin.close()
    try:
        pg = connect(dbname=name)
        try:
            copied = copy_warehouse(warehouse, pg, schemas=("raw", "audit"))
        finally:
            pg.close()
        assert copied["audit.source_files"] == 2 and copied["audit.quarantine"] == 1
        env = {"RTO_PG_DBNAME": name, "RTO_WAREHOUSE_PATH": str(warehouse)}
        _dbt(["seed", "--target", "postgres"], "pg_roles", **env)
        _dbt(["run", "--target", "postgres", "--threads", "2"], "pg_roles", **env)
        _dbt(
            ["test", "--target", "postgres", "--select", "restricted_employee_directory"],
            "pg_roles",
            **env,
        )
        # a rebuild recreates the tables: dbt must grant them again
        _dbt(["run", "--target", "postgres", "--select", "fct_exits"], "pg_roles", **env)
        yield name
    finally:
        admin = _admin()
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


def _as(dbname: str, role: str | None, sql: str, params=None) -> list[tuple]:
    """Run one statement as ``role`` (None: the superuser); raises what PostgreSQL raises."""
    con = connect(dbname=dbname)
    try:
        with con.cursor() as cur:
            if role:
                cur.execute(f"set role {role}")
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        con.commit()
        return rows
    finally:
        con.close()


def _denied(dbname: str, role: str, sql: str) -> bool:
    try:
        _as(dbname, role, sql)
    except errors.InsufficientPrivilege:
        return True
    return False


MARTS = (
    "fct_rto_compliance_weekly",
    "fct_promotion_gate",
    "fct_exits",
    "fct_attrition_monthly",
    "dim_employee",
    "dim_org_unit",
    "dim_policy",
    "dim_date",
)
NOT_FOR_BI = (
    "audit.source_files",
    "audit.quarantine",
    "staging.stg_hr__employees",
    "staging.stg_badge__events",
    "raw.hr_employees",
    "raw.badge_events",
    "reference.rto_policies",
    "intermediate.int_employee_weeks_aggregated",
    "restricted.restricted_employee_directory",
)


def test_roles_exist_and_cannot_log_in(database):
    rows = _as(
        database,
        None,
        "select rolname, rolcanlogin, rolsuper from pg_roles where rolname = any(%s) "
        "order by rolname",
        [list(ACCESS_ROLES)],
    )
    assert rows == [
        ("auditor", False, False),
        ("bi_reader", False, False),
        ("hr_restricted", False, False),
    ]


def test_restricted_directory_holds_the_names_of_the_newest_snapshot(database):
    rows = _as(
        database,
        None,
        "select employee_id, full_name, email from restricted.restricted_employee_directory "
        "order by employee_id",
    )
    assert len(rows) == 9  # E001..E009 in the 2025-01-15 snapshot
    assert rows == [(e["employee_id"], e["full_name"], e["email"]) for e in EMPLOYEES]
    # nowhere else outside raw and staging: no mart column holds a name or an email
    columns = _as(
        database,
        None,
        "select table_schema, column_name from information_schema.columns "
        "where column_name in ('full_name', 'email') "
        "and table_schema not in ('raw', 'staging') order by 1, 2",
    )
    assert columns == [("restricted", "email"), ("restricted", "full_name")]


@pytest.mark.parametrize("mart", MARTS)
def test_bi_reader_and_auditor_read_every_mart(database, mart):
    (expected,) = _as(database, None, f"select count(*) from marts.{mart}")
    assert expected[0] > 0
    assert _as(database, "bi_reader", f"select count(*) from marts.{mart}") == [expected]
    assert _as(database, "auditor", f"select count(*) from marts.{mart}") == [expected]
    assert _denied(database, "hr_restricted", f"select count(*) from marts.{mart}")


@pytest.mark.parametrize("relation", NOT_FOR_BI)
def test_bi_reader_reads_nothing_but_the_marts(database, relation):
    assert _denied(database, "bi_reader", f"select * from {relation} limit 1")


def test_auditor_reads_audit_without_source_text(database):
    rows = _as(
        database,
        "auditor",
        "select source_path, rows_in, rows_loaded, rows_quarantined from audit.source_files "
        "order by source_path",
    )
    assert rows == [
        ("hr/2025-01-15/employees.jsonl", 10, 9, 1),
        ("hr/2025-01-15/sites.jsonl", 2, 2, 0),
    ]
    assert _as(
        database, "auditor", "select source_path, line_number, reason from audit.quarantine"
    ) == [("hr/2025-01-15/employees.jsonl", 11, "not valid JSON")]
    # the quarantined line holds a name and an email: only the superuser (HR) sees it
    assert _denied(database, "auditor", "select raw_text from audit.quarantine")
    assert _denied(database, "auditor", "select * from audit.quarantine")
    assert _as(database, None, "select raw_text from audit.quarantine") == [(QUARANTINED_LINE,)]


@pytest.mark.parametrize(
    "relation",
    [
        "raw.hr_employees",
        "staging.stg_hr__employees",
        "restricted.restricted_employee_directory",
    ],
)
def test_auditor_cannot_read_names(database, relation):
    assert _denied(database, "auditor", f"select * from {relation} limit 1")


@pytest.mark.parametrize(
    "statement",
    [
        "insert into audit.quarantine (file_id, source_path, reason, run_id, quarantined_at) "
        "values ('f', 'p', 'r', 'x', now())",
        "delete from audit.source_files",
        "update marts.fct_exits set exit_type = 'voluntary'",
        "truncate marts.dim_date",
        "create table marts.auditor_note (x integer)",
        "create table audit.auditor_note (x integer)",
        "create table public.auditor_note (x integer)",
        "drop table marts.dim_policy",
    ],
)
def test_auditor_cannot_write(database, statement):
    try:
        _as(database, "auditor", statement)
    except errors.InsufficientPrivilege:
        pass
    else:
        pytest.fail(f"the auditor could run: {statement}")


def test_hr_restricted_reads_the_directory_only(database):
    rows = _as(
        database,
        "hr_restricted",
        "select count(*), count(distinct email) from restricted.restricted_employee_directory "
        "where full_name like 'Name E%%'",
    )
    assert rows == [(9, 9)]
    for relation in ("raw.hr_employees", "audit.source_files", "staging.stg_hr__employees"):
        assert _denied(database, "hr_restricted", f"select * from {relation} limit 1"), relation


def test_duckdb_build_is_unchanged():
    """On DuckDB the grants are empty and the restricted model is not part of the project."""
    import json

    from rto.orchestration import manifest_path

    manifest = json.loads(Path(manifest_path()).read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert "restricted_employee_directory" not in models
    assert all(not m["config"].get("grants") for m in models.values())
