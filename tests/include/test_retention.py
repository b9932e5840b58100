"""Retention: raw badge events older than the window leave the landing zone and raw tables.

A hand-made source root holds four badge-event files (two of them older than a
25-month window ending 2025-03-31, i.e. before 2023-02-28) and one old badge
assignment snapshot, pulled and loaded with the nightly functions. Every count
below is read off the files written here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from rto import nightly
from rto.config import Paths
from rto.orchestration import manifest_path
from rto.retention import (
    HISTORY_MODELS,
    RetentionRefused,
    cutoff_date,
    marts_keep_history,
    purge_badge_events,
    refuse_full_refresh_after_purge,
    retention_months,
    run_retention,
)
from rto.warehouse import connect

HEADER = b"event_id,badge_id,site_id,reader_id,event_time,direction,result\n"
AS_OF = date(2025, 3, 31)  # 25 months back: 2023-02-28 is the first site-day kept
WHEN = datetime(2025, 3, 31, 3, 0)
FILES = {
    # 3 rows load, line 5 is quarantined (a column short)
    "badge/events/2022-12-30/NYC.csv.gz": HEADER
    + b"e1,B1,NYC,R1,2022-12-30 08:00:00,IN,GRANTED\n"
    + b"e2,B1,NYC,R1,2022-12-30 17:00:00,OUT,GRANTED\n"
    + b"e3,B2,NYC,R1,2022-12-30 09:00:00,IN,DENIED\n"
    + b"e4,B2,NYC,R1,2022-12-30 09:01:00,IN\n",
    "badge/events/2023-02-27/NYC.csv.gz": HEADER
    + b"e5,B1,NYC,R1,2023-02-27 08:00:00,IN,GRANTED\n"
    + b"e6,B1,NYC,R1,2023-02-27 17:00:00,OUT,GRANTED\n",
    "badge/events/2023-02-28/NYC.csv.gz": HEADER + b"e7,B1,NYC,R1,2023-02-28 08:00:00,IN,GRANTED\n",
    "badge/events/2025-03-30/DUB.csv.gz": HEADER
    + b"e8,B3,DUB,R2,2025-03-30 08:00:00,IN,GRANTED\n"
    + b"e9,B3,DUB,R2,2025-03-30 18:00:00,OUT,GRANTED\n",
    # not an event file: assignments are snapshots, never purged by the window
    "badge/assignments/2022-01-03.csv.gz": b"badge_id,employee_id,badge_type,valid_from,valid_to\n"
    + b"B1,E1,EMPLOYEE,2022-01-01,\n",
}
OLD = ["badge/events/2022-12-30/NYC.csv.gz", "badge/events/2023-02-27/NYC.csv.gz"]


def _setup(tmp_path: Path) -> tuple[Paths, dict[str, int]]:
    root = tmp_path / "source"
    sizes = {}
    for path, content in FILES.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(content, mtime=0))
        sizes[path] = target.stat().st_size
    paths = Paths(source_root=str(root), data_dir=tmp_path / "data")
    assert nightly.pull(paths, "badge", "ingest1")["files"] == 5
    loaded = nightly.load(paths, "badge", "ingest1")
    assert (loaded["rows_in"], loaded["rows_loaded"], loaded["rows_quarantined"]) == (10, 9, 1)
    return paths, sizes


def _manifest(tmp_path: Path, materialized: str) -> Path:
    path = tmp_path / f"manifest-{materialized}.json"
    nodes = {
        f"model.rto_warehouse.{name}": {
            "name": name,
            "resource_type": "model",
            "config": {"materialized": materialized},
        }
        for name in HISTORY_MODELS
    }
    path.write_text(json.dumps({"nodes": nodes}))
    return path


def test_cutoff_is_the_window_back_from_the_logical_date():
    assert cutoff_date(date(2025, 3, 31), 25) == date(2023, 2, 28)  # day clamped
    assert cutoff_date(date(2025, 1, 15), 25) == date(2022, 12, 15)  # across a year
    assert cutoff_date(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert cutoff_date(date(2024, 12, 1), 1) == date(2024, 11, 1)


def test_window_comes_from_the_variable_with_a_default(monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_RTO_RETENTION_MONTHS", raising=False)
    assert retention_months() == 25
    monkeypatch.setenv("AIRFLOW_VAR_RTO_RETENTION_MONTHS", "13")
    assert retention_months() == 13
    assert retention_months(7) == 7
    for bad in ("two years", "0", "-3"):
        with pytest.raises(ValueError, match="rto_retention_months"):
            retention_months(bad)


def test_purge_removes_old_raw_rows_and_landed_files_and_records_them(tmp_path):
    paths, sizes = _setup(tmp_path)
    with connect(paths.warehouse) as con:
        result = purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN)
        assert result.cutoff == date(2023, 2, 28)
        assert (result.files, result.rows, result.quarantine_rows) == (2, 5, 1)
        assert result.bytes == sizes[OLD[0]] + sizes[OLD[1]]
        assert result.paths == OLD

        # the warehouse keeps the events of 2023-02-28 and later, and the assignments
        assert con.execute("select event_id from raw.badge_events order by 1").fetchall() == [
            ("e7",),
            ("e8",),
            ("e9",),
        ]
        assert con.execute("select count(*) from raw.badge_assignments").fetchone() == (1,)
        # the quarantined line keeps its reason and line, not its text
        assert con.execute(
            "select source_path, line_number, raw_text is null from audit.quarantine"
        ).fetchall() == [(OLD[0], 5, True)]

        # the manifest says which files went, and why
        statuses = con.execute(
            "select source_path, status, rows_loaded from audit.source_files order by 1"
        ).fetchall()
        assert statuses == [
            ("badge/assignments/2022-01-03.csv.gz", "loaded", 1),
            (OLD[0], "purged", 3),
            (OLD[1], "purged", 2),
            ("badge/events/2023-02-28/NYC.csv.gz", "loaded", 1),
            ("badge/events/2025-03-30/DUB.csv.gz", "loaded", 2),
        ]
        message = con.execute(
            "select message from audit.source_files where source_path = ?", [OLD[0]]
        ).fetchone()[0]
        assert message == (
            "raw rows and landed copy purged by ret1: site-day before 2023-02-28 "
            "(25-month retention)"
        )

        # audit.purges: one row per file and target
        purges = con.execute(
            "select run_id, source_path, target, rows, bytes, cutoff, retention_months, "
            "purged_at from audit.purges order by source_path, target"
        ).fetchall()
    assert purges == [
        ("ret1", OLD[0], "audit.quarantine.raw_text", 1, None, date(2023, 2, 28), 25, WHEN),
        ("ret1", OLD[0], "landing", None, sizes[OLD[0]], date(2023, 2, 28), 25, WHEN),
        ("ret1", OLD[0], "raw.badge_events", 3, None, date(2023, 2, 28), 25, WHEN),
        ("ret1", OLD[1], "audit.quarantine.raw_text", 0, None, date(2023, 2, 28), 25, WHEN),
        ("ret1", OLD[1], "landing", None, sizes[OLD[1]], date(2023, 2, 28), 25, WHEN),
        ("ret1", OLD[1], "raw.badge_events", 2, None, date(2023, 2, 28), 25, WHEN),
    ]

    # the landing zone: old files and their emptied site-day folders are gone
    landed = sorted(str(p.relative_to(paths.landing)) for p in paths.landing.rglob("*.gz"))
    assert landed == [
        "badge/assignments/2022-01-03.csv.gz",
        "badge/events/2023-02-28/NYC.csv.gz",
        "badge/events/2025-03-30/DUB.csv.gz",
    ]
    assert not (paths.landing / "badge/events/2022-12-30").exists()


def test_a_rerun_purges_nothing_twice_and_the_pull_does_not_take_purged_files_again(tmp_path):
    paths, _ = _setup(tmp_path)
    with connect(paths.warehouse) as con:
        purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN)
        again = purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN)
        assert (again.files, again.rows, again.bytes) == (0, 0, 0)
        assert con.execute("select count(*) from audit.purges").fetchone() == (6,)

    # the source root still holds the purged files: the manifest keeps them out
    assert (Path(paths.source_root) / OLD[0]).exists()
    pulled = nightly.pull(paths, "badge", "ingest2")
    assert (pulled["files"], pulled["bytes"]) == (0, 0)
    assert nightly.load(paths, "badge", "ingest2")["files"] == 0
    with connect(paths.warehouse) as con:
        assert con.execute("select count(*) from raw.badge_events").fetchone() == (3,)
    assert not (paths.landing / OLD[0]).exists()


def test_a_landed_copy_left_by_a_crash_is_deleted_next_time(tmp_path):
    paths, sizes = _setup(tmp_path)
    with connect(paths.warehouse) as con:
        purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN)
    # as if the process died after the commit, before deleting the file
    left = paths.landing / OLD[1]
    left.parent.mkdir(parents=True)
    left.write_bytes((Path(paths.source_root) / OLD[1]).read_bytes())
    with connect(paths.warehouse) as con:
        result = purge_badge_events(con, paths.landing, "ret2", AS_OF, 25, WHEN)
        assert (result.files, result.rows, result.bytes) == (0, 0, sizes[OLD[1]])
        assert con.execute(
            "select source_path, target, bytes from audit.purges where run_id = 'ret2'"
        ).fetchall() == [(OLD[1], "landing", sizes[OLD[1]])]
    assert not left.exists()


def test_retention_refuses_while_the_marts_are_rebuilt_in_full(tmp_path):
    paths, _ = _setup(tmp_path)
    table = _manifest(tmp_path, "table")
    assert marts_keep_history(table) == list(HISTORY_MODELS)
    with pytest.raises(RetentionRefused, match="fct_rto_compliance_weekly are rebuilt in full"):
        run_retention(paths, "ret1", AS_OF, WHEN, months=25, manifest=table)
    with connect(paths.warehouse) as con:
        assert con.execute("select count(*) from raw.badge_events").fetchone() == (8,)
        assert con.execute("select count(*) from audit.purges").fetchone() == (0,)

    incremental = _manifest(tmp_path, "incremental")
    assert marts_keep_history(incremental) == []
    out = run_retention(paths, "ret1", AS_OF, WHEN, months=25, manifest=incremental)
    assert out == {
        "cutoff": "2023-02-28",
        "months": 25,
        "files": 2,
        "rows": 5,
        "bytes": out["bytes"],
        "quarantine_rows": 1,
    }
    assert out["bytes"] > 0


def test_a_full_refresh_after_a_purge_is_refused_unless_forced(tmp_path):
    paths, _ = _setup(tmp_path)
    with connect(paths.warehouse) as con:
        refuse_full_refresh_after_purge(con)  # nothing purged yet: allowed
        purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN)
        with pytest.raises(RetentionRefused, match="2 badge-event file.*before 2023-02-28"):
            refuse_full_refresh_after_purge(con)
        refuse_full_refresh_after_purge(con, force=True)


def test_the_published_marts_are_unchanged_by_the_purge(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RTO_PSEUDONYM_KEY", "k1")
    paths, _ = _setup(tmp_path)
    with connect(paths.warehouse) as con:
        # marts as the last build left them: weeks from before and after the cutoff
        con.execute("""
            create schema marts;
            create table marts.fct_rto_compliance_weekly as select * from (values
                ('E1', date '2022-12-26', 4, 3, 1, 'non_compliant'),
                ('E1', date '2023-02-27', 5, 3, 2, 'non_compliant'),
                ('E1', date '2025-03-24', 5, 5, 1, 'non_compliant'))
              v(employee_id, week_start, available_days, required_days, office_days, status);
        """)
        nightly.publish(paths, "night1")
    serving = [paths.serving_warehouse, paths.serving_bi]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in serving]
    with connect(paths.warehouse) as con:
        marts_before = con.execute("select * from marts.fct_rto_compliance_weekly").fetchall()
        assert purge_badge_events(con, paths.landing, "ret1", AS_OF, 25, WHEN).rows == 5
        marts_after = con.execute("select * from marts.fct_rto_compliance_weekly").fetchall()
    assert marts_after == marts_before and len(marts_after) == 3
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in serving] == before


def test_the_projects_history_models_are_incremental():
    """The real manifest (make dbt-parse): every badge-derived model keeps its history."""
    assert marts_keep_history(manifest_path()) == []
