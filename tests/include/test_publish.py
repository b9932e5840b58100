"""Publication: atomic serving files, pseudonymous BI copy without names or emails."""

from __future__ import annotations

import subprocess
import sys

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
    assert out["warehouse.duckdb"] == {"tables": 9, "rows": 5}  # 2 marts + 7 audit tables
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
