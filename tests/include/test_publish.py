"""Publication: atomic serving files, pseudonymous BI copy without names or emails."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb

from rto.publish.serve import pseudonymise, publish
from rto.warehouse import connect


def _build(path):
    with connect(path) as con:
        con.execute("""
            create schema marts;
            create table marts.dim_employee as
              select * from (values ('E1', 5, 'Ann Lee', 'ann@x.test'), ('E2', 6, 'Bo Ma', 'bo@x.test'))
              v(employee_id, job_level, full_name, email);
            create table marts.fct_promotion_gate as
              select * from (values ('N1', 'E2', 'A9'), ('N2', null, null)) v(nomination_id, employee_id, approver_id);
            insert into audit.pipeline_runs values ('r1', 'rto_warehouse', now(), now(), 'success', null);
        """)


def test_publish_writes_both_files_and_pseudonymises_bi(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    build = tmp_path / "build.duckdb"
    _build(build)
    with connect(build) as con:
        out = publish(con, tmp_path / "serving", tmp_path, "r1")
    # 2 marts + 7 audit tables; no dbt state in this warehouse, so written whole
    assert out["warehouse.duckdb"] == {
        "tables": 9,
        "rows": 5,
        "written": "whole",
        "why_whole": "no file published before",
    }
    assert out["bi.duckdb"]["tables"] == 2

    wh = duckdb.connect(str(tmp_path / "serving" / "warehouse.duckdb"), read_only=True)
    audit = wh.execute(
        "select table_name from duckdb_tables() where schema_name = 'audit' order by 1"
    ).fetchall()
    assert [a[0] for a in audit] == [
        "dq_results",
        "freshness",
        "pipeline_runs",
        "publications",
        "purges",
        "quarantine",
        "source_files",
    ]
    assert wh.execute("select employee_id from marts.dim_employee order by 1").fetchall() == [
        ("E1",),
        ("E2",),
    ]
    assert "full_name" not in [c[0] for c in wh.execute("describe marts.dim_employee").fetchall()]
    assert wh.execute("select count(*) from audit.pipeline_runs").fetchone() == (1,)
    # no freshness check recorded: nothing flagged as missing
    assert wh.execute("select count(*) from meta.missing_deliveries").fetchone() == (0,)

    bi = duckdb.connect(str(tmp_path / "serving" / "bi.duckdb"), read_only=True)
    keys = bi.execute("select employee_id from marts.dim_employee order by job_level").fetchall()
    assert keys == [(pseudonymise(b"k1", "E1"),), (pseudonymise(b"k1", "E2"),)]
    assert bi.execute(
        "select employee_id, approver_id from marts.fct_promotion_gate order by nomination_id"
    ).fetchall() == [(pseudonymise(b"k1", "E2"), pseudonymise(b"k1", "A9")), (None, None)]
    schemas = {r[0] for r in bi.execute("select schema_name from duckdb_schemas()").fetchall()}
    assert "audit" not in schemas
    dump = " ".join(
        str(r)
        for t in ("dim_employee", "fct_promotion_gate")
        for r in bi.execute(f"select * from marts.{t}").fetchall()
    )
    for secret in ("Ann Lee", "ann@x.test", "Bo Ma", "bo@x.test", "'E1'", "'E2'"):
        assert secret not in dump
    wh.close()
    bi.close()


def test_a_reader_of_the_old_file_never_blocks_republication(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    build = tmp_path / "build.duckdb"
    _build(build)
    with connect(build) as con:
        publish(con, tmp_path / "serving", tmp_path, "r1")
    reader = duckdb.connect(str(tmp_path / "serving" / "warehouse.duckdb"), read_only=True)
    with connect(build) as con:
        con.execute("insert into marts.dim_employee values ('E3', 7, 'C', 'c@x.test')")
        publish(con, tmp_path / "serving", tmp_path, "r2")
    # the open reader keeps the snapshot it opened; a new reader sees tonight's file
    assert reader.execute("select count(*) from marts.dim_employee").fetchone() == (2,)
    # (another process: DuckDB caches open databases per process and path)
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
            "print(c.execute('select count(*) from marts.dim_employee').fetchone()[0],"
            " c.execute('select run_id from meta.publication').fetchone()[0])",
            str(tmp_path / "serving" / "warehouse.duckdb"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert fresh.stdout.split() == ["3", "r2"]
    assert not list((tmp_path / "serving").glob(".*tmp"))


# --------------------------------------------------------------------------------------
# Patched publication: a file one build behind gets only tonight's scope rewritten
# --------------------------------------------------------------------------------------

WEEKS = ["2024-01-01", "2024-01-08", "2024-01-15"]


def _weekly_warehouse(path):
    """A build warehouse after its first build: 3 employees x 3 weeks, dbt state build 'b1'."""
    with connect(path) as con:
        con.execute("""
            create schema marts;
            create schema intermediate;
            create table marts.fct_rto_compliance_weekly as
              select e.employee_id, w.week_start::date as week_start, 'M1' as manager_id,
                     2 as office_days
              from (values ('E1'), ('E2'), ('E3')) e(employee_id),
                   (values ('2024-01-01'), ('2024-01-08'), ('2024-01-15')) w(week_start);
            create table marts.dim_employee as
              select * from (values ('E1', 'Ann Lee'), ('E2', 'Bo Ma'), ('E3', 'Cy Do'))
              v(employee_id, full_name);
            create table intermediate.int_rebuild_state_builds as
              select 1 as build_number, 'b1' as build_invocation_id;
            create table intermediate.int_rebuild_scope as
              select 'all' as scope_kind, null::varchar as employee_id,
                     null::date as date_day, null::date as week_start,
                     'no previous build' as reason;
        """)


def _next_build(con, build_id, scope_rows):
    """Record another successful build and tonight's scope (what dbt's state models do)."""
    con.execute(
        "insert into intermediate.int_rebuild_state_builds "
        "select max(build_number) + 1, ? from intermediate.int_rebuild_state_builds",
        [build_id],
    )
    con.execute("delete from intermediate.int_rebuild_scope")
    for kind, employee, day in scope_rows:
        con.execute(
            "insert into intermediate.int_rebuild_scope values "
            "(?, ?, ?::date, date_trunc('week', ?::date)::date, 'test')",
            [kind, employee, day, day],
        )


def _dump(path, table):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(f"select * from {table}").fetchall(), key=str)
    finally:
        con.close()


def _tonights_build(con, build_id="b2"):
    """Tonight rebuilt employee E2 (all weeks) and the weeks from 2024-01-15 on."""
    con.execute("""
        delete from marts.fct_rto_compliance_weekly
        where employee_id = 'E2' or week_start >= '2024-01-15';
        -- E2's history changed: one week dropped (a backdated termination), one recounted
        insert into marts.fct_rto_compliance_weekly values ('E2', '2024-01-01', 'M1', 5);
        insert into marts.fct_rto_compliance_weekly values
          ('E1', '2024-01-15', 'M1', 3), ('E3', '2024-01-15', 'M2', 1),
          ('E1', '2024-01-22', 'M1', 4), ('E4', '2024-01-22', 'M1', 2);
        insert into marts.dim_employee values ('E4', 'Di Wu');
    """)
    _next_build(con, build_id, [("employee", "E2", None), ("from", None, "2024-01-15")])


def test_a_file_one_build_behind_is_patched_and_equals_a_whole_write(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    build = tmp_path / "build.duckdb"
    _weekly_warehouse(build)
    serving = tmp_path / "serving"
    with connect(build) as con:
        first = publish(con, serving, tmp_path, "r1")
        assert first["bi.duckdb"]["written"] == "whole"
        _tonights_build(con)
        # a row outside tonight's scope that differs shows the file was patched, not
        # rewritten (a real build never changes such a row): it keeps last night's value
        con.execute(
            "update marts.fct_rto_compliance_weekly set office_days = 9 "
            "where employee_id = 'E3' and week_start = '2024-01-01'"
        )
        out = publish(con, serving, tmp_path, "r2")
        assert {n: (o["written"], o["why_whole"]) for n, o in out.items()} == {
            "warehouse.duckdb": ("patched", None),
            "bi.duckdb": ("patched", None),
        }
        con.execute(
            "update marts.fct_rto_compliance_weekly set office_days = 2 "
            "where employee_id = 'E3' and week_start = '2024-01-01'"
        )
        whole = publish(con, tmp_path / "whole", tmp_path, "r2")
        assert whole["bi.duckdb"]["written"] == "whole"
    for name in ("warehouse.duckdb", "bi.duckdb"):
        assert (out[name]["tables"], out[name]["rows"]) == (
            whole[name]["tables"],
            whole[name]["rows"],
        )

    for name in ("warehouse.duckdb", "bi.duckdb"):
        for table in ("marts.fct_rto_compliance_weekly", "marts.dim_employee"):
            assert _dump(serving / name, table) == _dump(tmp_path / "whole" / name, table), (
                name,
                table,
            )
    weekly = _dump(serving / "warehouse.duckdb", "marts.fct_rto_compliance_weekly")
    assert len(weekly) == 9  # 9 - E2's 3 - 2 weeks of 01-15 + E2's 1 + 2 + 2 of 01-22
    assert ("E2", date(2024, 1, 8), "M1", 2) not in weekly
    meta = _dump(serving / "bi.duckdb", "meta.publication")[0]
    assert meta[0] == "r2" and meta[2:] == ("b2", 1, pseudonymise(b"k1", ""))
    assert "full_name" not in str(_dump(serving / "bi.duckdb", "marts.dim_employee"))


def _publish_twice(tmp_path, between):
    """Publish, run ``between(con)`` (a build), publish again; returns the second result."""
    build = tmp_path / "build.duckdb"
    _weekly_warehouse(build)
    with connect(build) as con:
        publish(con, tmp_path / "serving", tmp_path, "r1")
        between(con)
        return publish(con, tmp_path / "serving", tmp_path, "r2")


def test_a_file_more_than_one_build_behind_is_written_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")

    def two_builds(con):  # a night that built but did not publish, then tonight
        _next_build(con, "b2", [("from", None, "2024-01-15")])
        _tonights_build(con, "b3")

    out = _publish_twice(tmp_path, two_builds)
    assert (
        out["warehouse.duckdb"]["why_whole"]
        == "the file is not exactly one build behind the warehouse"
    )


def test_a_full_rebuild_or_a_new_key_writes_the_file_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    out = _publish_twice(
        tmp_path / "all", lambda con: _next_build(con, "b2", [("all", None, None)])
    )
    assert out["bi.duckdb"]["why_whole"] == "tonight's build rebuilt everything"

    def rotate(con):
        _tonights_build(con)
        monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k2")

    out = _publish_twice(tmp_path / "key", rotate)
    assert out["warehouse.duckdb"]["written"] == "patched"
    assert out["bi.duckdb"]["why_whole"] == "the pseudonym key changed"
    keys = {r[0] for r in _dump(tmp_path / "key" / "serving" / "bi.duckdb", "marts.dim_employee")}
    assert keys == {pseudonymise(b"k2", e) for e in ("E1", "E2", "E3", "E4")}


def test_patched_files_are_written_whole_again_every_few_nights(tmp_path, monkeypatch):
    from rto.publish.serve import MAX_PATCHED_NIGHTS

    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    build = tmp_path / "build.duckdb"
    _weekly_warehouse(build)
    written = []
    with connect(build) as con:
        for night in range(MAX_PATCHED_NIGHTS + 3):
            if night:
                _next_build(con, f"b{night + 1}", [("from", None, "2024-01-15")])
            out = publish(con, tmp_path / "serving", tmp_path, f"r{night}")
            written.append(out["warehouse.duckdb"]["written"])
    assert written == ["whole"] + ["patched"] * MAX_PATCHED_NIGHTS + ["whole", "patched"]
