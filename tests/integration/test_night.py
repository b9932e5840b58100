"""A whole night through Airflow (``dag.test``) on a small generated company.

The marts published by the pipeline must equal, row by row, the marts the
independent Python oracle (``tests/integration/oracle.py``) computes straight
from the generated source files.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.integration.oracle import compute_marts, load_sources

COMPANY = dict(employees=60, start=date(2023, 3, 6), end=date(2024, 1, 28), seed=11)

KEYS = {
    "fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "fct_promotion_gate": ["nomination_id"],
    "fct_exits": ["employee_id"],
    "fct_attrition_monthly": ["month_start", "department_id", "compliance_band"],
}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Generate the company and run two nights; returns (source_root, data_dir, first_night).

    One busy site-day file is held back on the first night and delivered before the
    second, as a vendor's late file would be. ``first_night`` holds the marts published
    by the first night and the oracle's marts for the files present that night.
    """
    from rto.cli import run_night
    from rto.simulator import QuirkRates, SimulatorConfig, generate

    base = tmp_path_factory.mktemp("night")
    source, data, held = base / "source", base / "data", base / "held"
    # messy deliveries on: duplicates, re-sent rows, unknown badges, unparsable rows, a
    # vendor's extra column, cut-short gzip files, late files, a corrected RIF delivery
    quirks = QuirkRates.demo(COMPANY["start"], COMPANY["end"])
    summary = generate(SimulatorConfig(out=source, quirks=quirks, **COMPANY))
    assert summary.quirks["bad_row_timestamp"] and summary.quirks["duplicate_event_rows"]

    late = max(
        (source / "badge" / "events").glob("2023-06-*/*.csv.gz"), key=lambda p: p.stat().st_size
    )
    (held / late.parent.name).mkdir(parents=True)
    late.rename(held / late.parent.name / late.name)
    assert run_night(str(source), str(data)), "the first night failed; see the log above"
    con = _serving(data)
    first = {
        "published": {m: con.execute(f"select * from marts.{m}").df() for m in KEYS},
        "oracle": compute_marts(source),
        "late_file": late.relative_to(source).as_posix(),
    }
    con.close()

    (held / late.parent.name / late.name).rename(late)
    assert run_night(str(source), str(data)), "the second night failed; see the log above"
    return source, data, first


def _serving(data: Path, name: str = "warehouse.duckdb"):
    return duckdb.connect(str(data / "serving" / name), read_only=True)


def _normalise(value):
    if (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    ):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return round(value, 9)
    return value


def _rows(frame: pd.DataFrame, columns: list[str], keys: list[str]) -> list[tuple]:
    frame = frame[columns].astype(object)
    rows = [tuple(_normalise(v) for v in row) for row in frame.itertuples(index=False)]
    idx = [columns.index(k) for k in keys]
    return sorted(rows, key=lambda r: tuple((r[i] is None, str(r[i])) for i in idx))


@pytest.mark.parametrize("mart", sorted(KEYS))
def test_published_mart_equals_the_oracle(night, mart):
    source, data, _ = night
    expected = compute_marts(source)[mart]
    con = _serving(data)
    actual = con.execute(f"select * from marts.{mart}").df()
    con.close()
    _assert_same(expected, actual, mart)


@pytest.mark.parametrize("mart", sorted(KEYS))
def test_first_night_without_the_late_file_equals_the_oracle(night, mart):
    _, _, first = night
    _assert_same(first["oracle"][mart], first["published"][mart], mart)


def test_the_late_file_changed_the_weeks_it_touches(night):
    source, data, first = night
    before = first["published"]["fct_rto_compliance_weekly"]
    con = _serving(data)
    after = con.execute("select * from marts.fct_rto_compliance_weekly").df()
    loaded_late = con.execute(
        "select count(*) from audit.source_files where source_path = ?", [first["late_file"]]
    ).fetchone()[0]
    con.close()
    assert loaded_late == 1
    day = date.fromisoformat(first["late_file"].split("/")[2])
    week = day - timedelta(days=day.weekday())
    gained = (
        after[after.week_start.dt.date == week].office_days.sum()
        - before[before.week_start.dt.date == week].office_days.sum()
    )
    assert gained > 0
    other_weeks = [w for w in before.week_start.dt.date.unique() if w != week]
    assert (
        after[after.week_start.dt.date.isin(other_weeks)]
        .sort_values(KEYS["fct_rto_compliance_weekly"])
        .office_days.tolist()
        == before[before.week_start.dt.date.isin(other_weeks)]
        .sort_values(KEYS["fct_rto_compliance_weekly"])
        .office_days.tolist()
    )


def _assert_same(expected: pd.DataFrame, actual: pd.DataFrame, mart: str) -> None:
    columns = list(expected.columns)
    assert set(columns) <= set(actual.columns), f"{mart} lacks {set(columns) - set(actual.columns)}"
    assert len(expected) > 0, f"the generated company gives no {mart} rows: test is vacuous"
    exp_rows, act_rows = _rows(expected, columns, KEYS[mart]), _rows(actual, columns, KEYS[mart])
    assert len(act_rows) == len(exp_rows)
    mismatches = [(e, a) for e, a in zip(exp_rows, act_rows, strict=True) if e != a]
    assert not mismatches, f"{len(mismatches)} rows differ, first: {mismatches[:3]} ({columns})"


def test_every_source_file_is_accounted_for(night):
    source, data, _ = night
    delivered = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    con = _serving(data)
    files = con.execute(
        "select source_path, rows_in, rows_loaded, rows_quarantined, status "
        "from audit.source_files order by source_path"
    ).fetchall()
    con.close()
    assert [f[0] for f in files] == delivered
    for path, rows_in, loaded, quarantined, status in files:
        assert rows_in == loaded + quarantined, path
        # a gzip cut inside its header row leaves nothing to load: rejected, and counted
        assert status == "loaded" or (status == "rejected" and loaded == 0), path
    # the rows the pipeline quarantined are exactly those the oracle could not parse
    skipped = load_sources(source).skipped
    by_file = {f[0]: f[3] for f in files if f[3]}
    assert by_file == {path: n for path, n in skipped.items() if n}


def test_checks_ran_at_every_step_and_passed(night):
    _, data, _ = night
    con = _serving(data)
    steps = dict(
        con.execute("select step, count(*) from audit.dq_results group by step").fetchall()
    )
    failed_blocking = con.execute(
        "select count(*) from audit.dq_results where not success and severity = 'blocking'"
    ).fetchone()[0]
    run = con.execute(
        "select status from audit.pipeline_runs where dag_id = 'rto_warehouse' order by started_at"
    ).fetchall()
    con.close()
    assert set(steps) == {"raw", "staging", "marts"}
    assert failed_blocking == 0
    # each serving file holds the audit as of its own publication
    assert run == [("success",), ("published",)]
    assert (data / "reports" / "index.html").exists()
    report = sorted((data / "reports" / "runs").glob("*/index.html"))[-1].read_text()
    assert 'id="quality-chart"' in report and "balanced" in report
    assert (data / "reports" / "dbt_docs" / "index.html").exists()
    assert (data / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_bi_file_holds_no_names_emails_or_employee_ids(night):
    source, data, _ = night
    hr = sorted((source / "hr").iterdir())[-1]
    people = [json.loads(line) for line in (hr / "employees.jsonl").read_text().splitlines()]
    con = _serving(data, "bi.duckdb")
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables"
    ).fetchall()
    text = " ".join(
        str(row)
        for schema, table in tables
        for row in con.execute(f'select * from "{schema}"."{table}"').fetchall()
    )
    con.close()
    assert tables
    for person in people[:200]:
        assert person["full_name"] not in text
        assert person["email"] not in text
        assert f"'{person['employee_id']}'" not in text


def test_a_night_without_deliveries_changes_nothing(night):
    from rto.cli import run_night

    source, data, _ = night
    con = _serving(data)
    before = {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in KEYS}
    files_before = con.execute("select count(*) from audit.source_files").fetchone()[0]
    con.close()
    assert run_night(str(source), str(data))
    con = _serving(data)
    after = {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in KEYS}
    assert con.execute("select count(*) from audit.source_files").fetchone()[0] == files_before
    assert con.execute("select count(distinct run_id) from audit.publications").fetchone()[0] == 3
    con.close()
    assert after == before


def test_a_blocking_failure_stops_publication(night, tmp_path):
    """A new HR snapshot with a duplicated employee id fails a blocking raw check."""
    from rto.cli import run_night

    source, data, _ = night
    bad_source, bad_data = tmp_path / "source", tmp_path / "data"
    shutil.copytree(source, bad_source)
    shutil.copytree(data, bad_data)
    newest = sorted((bad_source / "hr").iterdir())[-1]
    next_day = bad_source / "hr" / (date.fromisoformat(newest.name) + timedelta(days=1)).isoformat()
    shutil.copytree(newest, next_day)
    employees = (next_day / "employees.jsonl").read_text().splitlines()
    (next_day / "employees.jsonl").write_text("\n".join(employees + employees[:1]) + "\n")
    published = (bad_data / "serving" / "warehouse.duckdb").stat().st_mtime_ns

    assert not run_night(str(bad_source), str(bad_data))
    assert (bad_data / "serving" / "warehouse.duckdb").stat().st_mtime_ns == published
    build = duckdb.connect(str(bad_data / "warehouse" / "build.duckdb"), read_only=True)
    failed = build.execute(
        "select suite, expectation from audit.dq_results where not success "
        "and severity = 'blocking'"
    ).fetchall()
    build.close()
    assert ("raw_hr_employees", "expect_compound_columns_to_be_unique") in failed
