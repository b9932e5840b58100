"""Lineage views: a mart row traced to the exact source files (path, sha256) and load run.

A small clean company is loaded by the nightly functions (no Airflow), dbt builds the
marts and the lineage views, and for weekly compliance rows the files the view lists
must be exactly those found by reading the source files in plain Python: the event
files holding that employee's badge events of that week, the badge assignment
snapshot, and the HR snapshot files with the employee's rows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

RUN = "lineage_night"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from rto import nightly
    from rto.config import Paths
    from rto.ingest.sources import SOURCES
    from rto.simulator import SimulatorConfig, generate

    base = tmp_path_factory.mktemp("lineage")
    source = base / "source"
    generate(
        SimulatorConfig(
            out=source, employees=25, start=date(2023, 5, 1), end=date(2023, 5, 28), seed=4
        )
    )
    paths = Paths(source_root=str(source), data_dir=base / "data")
    for src in SOURCES:
        nightly.pull(paths, src, RUN)
        nightly.load(paths, src, RUN)
    nightly.dbt_seed(paths)
    nightly.run_dbt(paths, ["run"])
    nightly.dbt_lineage(paths)
    con = duckdb.connect(str(paths.warehouse))
    yield source, con
    con.close()


def _csv_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(io.StringIO(f.read())))


def _ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text if " " in text or "T" in text else text + " 00:00:00")


def _expected_files(source: Path, employee_id: str, week_start: date) -> dict[str, str]:
    """role per file, from the source files alone."""
    (assignments_file,) = sorted((source / "badge" / "assignments").glob("*.csv.gz"))[-1:]
    badges = [r for r in _csv_gz(assignments_file) if r["employee_id"] == employee_id]
    files = {assignments_file.relative_to(source).as_posix(): "badge_assignments"} if badges else {}
    for day in (week_start + timedelta(days=i) for i in range(7)):
        for path in sorted((source / "badge" / "events" / day.isoformat()).glob("*.csv.gz")):
            for event in _csv_gz(path):
                t = _ts(event["event_time"])
                if any(
                    b["badge_id"] == event["badge_id"]
                    and _ts(b["valid_from"]) <= t
                    and (not b["valid_to"] or t < _ts(b["valid_to"]))
                    for b in badges
                ):
                    files[path.relative_to(source).as_posix()] = "badge_events"
                    break
    hr = sorted((source / "hr").iterdir())[-1]
    week_end = week_start + timedelta(days=6)
    for name, role, keep in (
        ("employees", "hr_employees", lambda r: True),
        ("job_history", "hr_job_history", lambda r: True),
        (
            "leave",
            "hr_leave",
            lambda r: (
                (not r["start_date"] or date.fromisoformat(r["start_date"]) <= week_end)
                and (not r["end_date"] or date.fromisoformat(r["end_date"]) >= week_start)
            ),
        ),
    ):
        rows = [json.loads(line) for line in (hr / f"{name}.jsonl").read_text().splitlines()]
        if any(r["employee_id"] == employee_id and keep(r) for r in rows):
            files[(hr / f"{name}.jsonl").relative_to(source).as_posix()] = role
    return files


def test_a_weekly_row_lists_exactly_the_files_it_came_from(built):
    source, con = built
    rows = con.execute(
        "select employee_id, week_start from marts.fct_rto_compliance_weekly "
        "where office_days > 0 order by office_days desc, employee_id, week_start limit 3"
    ).fetchall()
    assert len(rows) == 3
    for employee_id, week_start in rows:
        listed = con.execute(
            "select source_path, role, sha256, loaded_by_run_id "
            "from lineage.lineage_compliance_weekly where employee_id = ? and week_start = ?",
            [employee_id, week_start],
        ).fetchall()
        expected = _expected_files(source, employee_id, week_start)
        assert {p: r for p, r, _, _ in listed} == expected, (employee_id, week_start)
        # at least the snapshot files and one event file per office day
        office_days = con.execute(
            "select office_days from marts.fct_rto_compliance_weekly "
            "where employee_id = ? and week_start = ?",
            [employee_id, week_start],
        ).fetchone()[0]
        assert sum(r == "badge_events" for r in expected.values()) >= office_days
        for path, _, sha, run in listed:
            assert sha == hashlib.sha256((source / path).read_bytes()).hexdigest()
            assert run == RUN


def test_every_mart_row_has_lineage(built):
    _, con = built
    for mart, view, key in (
        ("fct_rto_compliance_weekly", "lineage_compliance_weekly", "employee_id, week_start"),
        ("fct_promotion_gate", "lineage_promotion_gate", "nomination_id"),
        ("fct_exits", "lineage_exits", "employee_id"),
        (
            "fct_attrition_monthly",
            "lineage_attrition_monthly",
            "month_start, department_id, compliance_band",
        ),
    ):
        untraced = con.execute(
            f"select count(*) from (select {key} from marts.{mart} except "
            f"select {key} from lineage.{view} where role like 'hr_%')"
        ).fetchone()[0]
        assert untraced == 0, mart
