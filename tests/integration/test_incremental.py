"""Incremental builds equal a full refresh, night after night, on messy deliveries.

A small generated company (messy mode on: duplicated event rows, files re-sent
inside the next day's file, late files) is delivered night by night. Every
night runs the loader (``rto.nightly.pull`` / ``load``) and an incremental
``dbt run``; the lookback is cut to one day so that only the change detection
of ``int_rebuild_scope`` can pick up what arrives late or changes the past:

- the simulator's late files (a week late);
- one busy site-day file held back for four weeks;
- a retroactive HR change from the second incremental night on: a backdated
  week of leave, a backdated employee exception, a badge reassigned from
  one employee to another over its whole validity, and a backdated transfer
  to another team.

After the last night the same raw data is built with ``--full-refresh`` in a
copy of the warehouse: every mart and every incremental model must equal the
incremental result row for row, and the compliance marts must still equal the
independent oracle (``tests/integration/oracle.py``). A last run with the
``rebuild_from`` / ``rebuild_to`` vars must rebuild exactly those weeks.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from rto.publish.serve import publish
from rto.warehouse import connect
from tests.integration.oracle import compute_marts
from tests.integration.test_night import KEYS, _assert_same

COMPANY = dict(employees=80, start=date(2023, 3, 6), end=date(2023, 6, 25), seed=5)
FIRST_NIGHT = date(2023, 6, 15)  # everything up to here is delivered before the first build
# Friday to Monday: on Sunday's night the week of June 12 becomes complete
NIGHTS = [date(2023, 6, 16), date(2023, 6, 17), date(2023, 6, 18), date(2023, 6, 19)]
RETRO_FROM = NIGHTS[1]  # the retroactive HR change appears in this snapshot and stays
HELD_DAY = date(2023, 5, 10)  # a Wednesday: this site-day file arrives on NIGHTS[2]
LEAVE_WEEK = (date(2023, 5, 15), date(2023, 5, 19))  # backdated leave, Mon-Fri
EXCEPTION_SPAN = (date(2023, 5, 1), date(2023, 5, 29))  # backdated exception, 0 days
TRANSFER_DAY = date(2023, 4, 3)  # a backdated transfer to another team, a Monday
NIGHT_VARS = '{"badge_lookback_days": 1}'

# Every mart of DOMAIN.md section 4 and every incremental model, with its grain.
TABLES = {
    "marts.fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "marts.fct_promotion_gate": ["nomination_id"],
    "marts.fct_exits": ["employee_id"],
    "marts.fct_attrition_monthly": ["month_start", "department_id", "compliance_band"],
    "marts.dim_employee": ["employee_id", "valid_from"],
    "marts.dim_org_unit": ["org_unit_id"],
    "marts.dim_policy": ["policy_id"],
    "marts.dim_date": ["date_day"],
    "staging.stg_badge__events": ["event_id"],
    "intermediate.int_office_presence_daily": ["employee_id", "office_date"],
    "intermediate.int_employee_days_available": ["employee_id", "date_day"],
    "intermediate.int_employee_days_required": ["employee_id", "date_day"],
    "intermediate.int_employee_weeks": ["employee_id", "week_start"],
    "intermediate.int_employee_weeks_aggregated": ["employee_id", "week_start"],
    "intermediate.int_employee_months_banded": ["employee_id", "month_start"],
}


# --------------------------------------------------------------------------------------
# Deliveries
# --------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _event_ids(path: Path) -> set[str]:
    # messy files hold a few undecodable bytes (bad rows); the ids around them are ASCII
    with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
        return {row["event_id"] for row in csv.DictReader(f)}


def _only_copies(source: Path, day: date) -> list[Path]:
    """The badge files of ``day`` that hold the only copy of each of their events."""
    files = sorted((source / "badge" / "events").glob("*/*.csv.gz"))
    ids = {f: _event_ids(f) for f in files}
    return [
        f
        for f in files
        if f.parent.name == day.isoformat()
        and not any(ids[f] & other for g, other in ids.items() if g != f)
    ]


def _pick_people(source: Path, night: date) -> dict[str, str]:
    """Three employees employed over the whole period, and the badge of the first."""
    people = _read_jsonl(source / "hr" / night.isoformat() / "employees.jsonl")
    steady = sorted(
        p["employee_id"]
        for p in people
        if p["worker_type"] == "employee"
        and p["hire_date"] < COMPANY["start"].isoformat()
        and p["termination_date"] is None
    )
    with gzip.open(source / "badge" / "assignments" / f"{night}.csv.gz", "rt") as f:
        badges = [r for r in csv.DictReader(f) if r["badge_type"] == "EMPLOYEE"]
    giver = next(
        e for e in steady if sum(b["employee_id"] == e for b in badges) == 1
    )  # one badge over the whole period: reassigning it moves all their swipes
    others = [e for e in steady if e != giver]
    badge = next(b["badge_id"] for b in badges if b["employee_id"] == giver)
    return {
        "on_leave": others[0],
        "excepted": others[1],
        "giver": giver,
        "receiver": others[2],
        "moved": others[3],
        "badge": badge,
    }


def _apply_retro_changes(source: Path, night: date, who: dict[str, str]) -> None:
    """Rewrite the snapshot of ``night`` as if HR had backdated the changes."""
    hr = source / "hr" / night.isoformat()
    leave = _read_jsonl(hr / "leave.jsonl")
    leave.append(
        dict(
            leave_id="L-RETRO-1",
            employee_id=who["on_leave"],
            start_date=LEAVE_WEEK[0].isoformat(),
            end_date=LEAVE_WEEK[1].isoformat(),
            leave_type="vacation",
        )
    )
    _write_jsonl(hr / "leave.jsonl", leave)
    exceptions = _read_jsonl(hr / "exceptions.jsonl")
    exceptions.append(
        dict(
            exception_id="X-RETRO-1",
            scope="employee",
            subject_id=who["excepted"],
            required_days_per_week=0,
            reason="medical",
            approved_by=None,
            valid_from=EXCEPTION_SPAN[0].isoformat(),
            valid_to=EXCEPTION_SPAN[1].isoformat(),
        )
    )
    _write_jsonl(hr / "exceptions.jsonl", exceptions)
    # a backdated transfer to another team: their org unit changes from TRANSFER_DAY on
    jobs = _read_jsonl(hr / "job_history.jsonl")
    last = max(
        (j for j in jobs if j["employee_id"] == who["moved"]), key=lambda j: j["effective_date"]
    )
    teams = sorted(
        u["org_unit_id"] for u in _read_jsonl(hr / "org_units.jsonl") if u["kind"] == "team"
    )
    jobs.append(
        {
            **last,
            "effective_date": TRANSFER_DAY.isoformat(),
            "org_unit_id": next(t for t in teams if t != last["org_unit_id"]),
            "event": "transfer",
        }
    )
    _write_jsonl(hr / "job_history.jsonl", jobs)
    path = source / "badge" / "assignments" / f"{night}.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if row["badge_id"] == who["badge"]:
            row["employee_id"] = who["receiver"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with gzip.open(path, "wt", newline="") as f:
        f.write(out.getvalue())


# --------------------------------------------------------------------------------------
# Nights
# --------------------------------------------------------------------------------------


def _load(paths, run_id: str) -> None:
    from rto import nightly

    for source in ("hr", "badge", "layoffs"):
        nightly.pull(paths, source, run_id)
        nightly.load(paths, source, run_id)


def _dbt(paths, args: list[str]) -> None:
    from rto.nightly import run_dbt

    run_dbt(paths, args)


def _publish(paths, run_id: str) -> dict[str, str]:
    """Publish the serving files as the DAG does; how each file was written."""
    from rto import nightly

    return {name: out["written"] for name, out in nightly.publish(paths, run_id).items()}


def _query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _table(warehouse: Path, table: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(warehouse))
    try:
        cur = con.execute(f"select * from {table}")
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    key = [columns.index(k) for k in TABLES[table]]
    return columns, sorted(rows, key=lambda r: tuple((r[i] is None, str(r[i])) for i in key))


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Deliver and build night by night; returns what each night saw and the warehouses."""
    from rto.config import resolve_paths
    from rto.simulator import QuirkRates, SimulatorConfig, generate_nights
    from rto.simulator.generate import build_population, generate_night

    base = tmp_path_factory.mktemp("incremental")
    source, held = base / "source", base / "held"
    quirks = QuirkRates(
        duplicate_event_rate=0.01,
        resent_file_rate=0.1,
        unknown_badge_rate=0.002,
        bad_row_rate=0.001,
        late_file_rate=0.25,
        late_days=7,  # seed 5: one site's file of 2023-06-12 arrives on the night of 06-19
    )
    config = SimulatorConfig(out=source, quirks=quirks, **COMPANY)
    summary = generate_nights(config, FIRST_NIGHT)
    assert summary.quirks["duplicate_event_rows"] and summary.quirks["late_files"]
    assert summary.quirks["resent_files"]

    # the busiest site-day file of HELD_DAY whose events no other file re-sends is held
    # back for four weeks: its arrival changes the marts of an old week
    late = max(_only_copies(source, HELD_DAY), key=lambda p: p.stat().st_size)
    held.mkdir()
    late.rename(held / late.name)

    paths = resolve_paths(str(source), base / "data")
    seen: dict[str, dict] = {}
    _load(paths, "night_0")
    _dbt(paths, ["seed"])
    _dbt(paths, ["run", "--vars", NIGHT_VARS])
    seen["night_0"] = {
        "scope": _query(paths.warehouse, SCOPE_SQL),
        "published": _publish(paths, "night_0"),
    }

    population = build_population(config)
    who = _pick_people(source, FIRST_NIGHT)
    for night in NIGHTS:
        generate_night(config, night, population)
        if night >= RETRO_FROM:
            _apply_retro_changes(source, night, who)
        if night == NIGHTS[2]:
            late.parent.mkdir(parents=True, exist_ok=True)
            (held / late.name).rename(late)
        run_id = f"night_{night}"
        _load(paths, run_id)
        files = _query(
            paths.warehouse,
            f"select source_path from audit.source_files where run_id = '{run_id}'",
        )
        _dbt(paths, ["run", "--vars", NIGHT_VARS])
        seen[str(night)] = {
            "scope": _query(paths.warehouse, SCOPE_SQL),
            "held_week": _query(paths.warehouse, HELD_WEEK_SQL),
            "files": sorted(f[0] for f in files),
            "published": _publish(paths, run_id),
        }

    # the serving files patched night by night, against the same warehouse written whole
    whole = base / "whole-serving"
    with connect(paths.warehouse) as con:
        publish(con, whole, paths.data_dir, run_id)

    # the same raw tables, built from scratch
    full = base / "full" / "warehouse" / "build.duckdb"
    full.parent.mkdir(parents=True)
    _query(paths.warehouse, "checkpoint")  # dbt-duckdb's open connection may hold a WAL
    shutil.copyfile(paths.warehouse, full)
    full_paths = resolve_paths(str(source), base / "full")
    _dbt(full_paths, ["run", "--full-refresh", "--vars", NIGHT_VARS])
    return {
        "source": source,
        "paths": paths,
        "full": full,
        "seen": seen,
        "who": who,
        "late_file": late.relative_to(source).as_posix(),
        "whole_serving": whole,
    }


HELD_WEEK_SQL = (
    "select count(*), sum(office_days) from marts.fct_rto_compliance_weekly "
    f"where week_start = '{HELD_DAY - timedelta(days=HELD_DAY.weekday())}'"
)
SCOPE_SQL = (
    "select scope_kind, employee_id, date_day, reason "
    "from intermediate.int_rebuild_scope order by all"
)


# --------------------------------------------------------------------------------------
# The proof
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(TABLES))
def test_incremental_equals_full_refresh(nights, table):
    inc_columns, inc_rows = _table(nights["paths"].warehouse, table)
    full_columns, full_rows = _table(nights["full"], table)
    assert inc_columns == full_columns
    assert len(full_rows) > 0
    assert len(inc_rows) == len(full_rows)
    mismatches = [(i, f) for i, f in zip(inc_rows, full_rows, strict=True) if i != f]
    assert not mismatches, f"{len(mismatches)} rows differ, first: {mismatches[:3]}"


@pytest.mark.parametrize("mart", sorted(KEYS))
def test_incremental_marts_equal_the_oracle(nights, mart):
    expected = compute_marts(nights["source"])[mart]
    con = duckdb.connect(str(nights["paths"].warehouse))
    try:
        actual = con.execute(f"select * from marts.{mart}").df()
    finally:
        con.close()
    _assert_same(expected, actual, mart)


def test_every_night_after_the_first_was_incremental(nights):
    seen = nights["seen"]
    assert seen["night_0"]["scope"] == [("all", None, None, "no previous build")]
    for night in NIGHTS:
        kinds = {row[0] for row in seen[str(night)]["scope"]}
        assert "all" not in kinds, (night, seen[str(night)]["scope"])
        # lookback of one day: from the older as-of date (the previous night) minus 1,
        # or from the Monday after the last week the previous night had complete
        start = min(night - timedelta(days=2), night - timedelta(days=night.weekday()))
        window = [r for r in seen[str(night)]["scope"] if r[0] == "from"]
        assert window == [("from", None, start, "lookback window")]


SERVED = [t for t in TABLES if t.startswith("marts.")]


@pytest.mark.parametrize("name", ["warehouse.duckdb", "bi.duckdb"])
def test_serving_files_patched_night_by_night_equal_a_whole_write(nights, name):
    seen = nights["seen"]
    assert seen["night_0"]["published"][name] == "whole"
    assert [seen[str(n)]["published"][name] for n in NIGHTS] == ["patched"] * len(NIGHTS)
    # the held file changed an old week, outside the lookback window, on its night
    assert seen[str(NIGHTS[1])]["held_week"] != seen[str(NIGHTS[2])]["held_week"]
    patched = nights["paths"].serving_dir / name
    whole = nights["whole_serving"] / name
    for table in SERVED:
        got, want = (_served(f, table) for f in (patched, whole))
        assert len(want) > 0, table
        assert got == want, (table, len(got), len(want))


def _served(path: Path, table: str) -> list[tuple]:
    return sorted(_query(path, f"select * from {table}"), key=str)


def test_late_files_were_found_by_their_content_not_the_window(nights):
    seen = nights["seen"]
    late_night = str(NIGHTS[2])
    assert nights["late_file"] in seen[late_night]["files"]
    dates = {r[2] for r in seen[late_night]["scope"] if r[0] == "date"}
    assert HELD_DAY in dates
    # the simulator's own late files (a week late) are found the same way
    late_files = 0
    for night in NIGHTS:
        late_days = {
            date.fromisoformat(path.split("/")[2])
            for path in seen[str(night)]["files"]
            if path.startswith("badge/events/")
            and date.fromisoformat(path.split("/")[2]) < night - timedelta(days=2)
        }
        scope_dates = {r[2] for r in seen[str(night)]["scope"] if r[0] == "date"}
        assert late_days <= scope_dates, night
        late_files += len(late_days)
    assert late_files > 1  # the held file and at least one of the simulator's


def test_retroactive_hr_changes_rebuilt_the_people_they_touch(nights):
    who = nights["who"]
    seen = nights["seen"]
    changed = {(r[1], r[3]) for r in seen[str(RETRO_FROM)]["scope"] if r[0] == "employee"}
    assert (who["on_leave"], "leave changed") in changed
    assert (who["excepted"], "employee exception changed") in changed
    assert (who["giver"], "badge assignments changed") in changed
    assert (who["receiver"], "badge assignments changed") in changed
    assert (who["moved"], "job history changed") in changed
    # the next night's snapshot carries the same changes: nothing new for them
    later = {r[1] for r in seen[str(NIGHTS[2])]["scope"] if r[0] == "employee"}
    assert not {who["on_leave"], who["excepted"], who["giver"]} & later


def test_the_retroactive_changes_show_in_the_weekly_fact(nights):
    who = nights["who"]
    warehouse = nights["paths"].warehouse
    leave = _query(
        warehouse,
        "select available_days from marts.fct_rto_compliance_weekly "
        f"where employee_id = '{who['on_leave']}' and week_start = '{LEAVE_WEEK[0]}'",
    )
    assert leave == [(0,)]  # the whole week on leave: no available day
    excepted = _query(
        warehouse,
        "select distinct required_days, status, has_exception "
        "from marts.fct_rto_compliance_weekly "
        f"where employee_id = '{who['excepted']}' "
        f"and week_start >= '{EXCEPTION_SPAN[0]}' and week_start < '{EXCEPTION_SPAN[1]}'",
    )
    assert excepted == [(0, "no_requirement", True)]
    giver = _query(
        warehouse,
        "select count(*) from intermediate.int_office_presence_daily "
        f"where employee_id = '{who['giver']}'",
    )
    assert giver == [(0,)]  # every swipe of the badge is now the receiver's
    jobs = _read_jsonl(nights["source"] / "hr" / NIGHTS[-1].isoformat() / "job_history.jsonl")
    team = next(
        j["org_unit_id"]
        for j in jobs
        if j["employee_id"] == who["moved"] and j["effective_date"] == TRANSFER_DAY.isoformat()
    )
    moved = _query(
        warehouse,
        "select org_unit_id from marts.fct_rto_compliance_weekly "
        f"where employee_id = '{who['moved']}' and week_start = '{TRANSFER_DAY}'",
    )
    assert moved == [(team,)]  # the week of the backdated transfer, built before it


def test_rebuild_range_rebuilds_exactly_those_weeks(nights):
    """rebuild_from/rebuild_to rebuild the weeks that overlap the range, nothing else."""
    paths = nights["paths"]
    warehouse = paths.warehouse
    before = _table(warehouse, "marts.fct_rto_compliance_weekly")[1]
    # corrupt every row, so that what the run rebuilds shows
    _query(warehouse, "update marts.fct_rto_compliance_weekly set office_days = -1")
    # Wed 2023-05-03 to Tue 2023-05-09: the weeks of May 1 and May 8
    vars_ = '{"badge_lookback_days": 0, "rebuild_from": "2023-05-03", "rebuild_to": "2023-05-09"}'
    _dbt(
        paths,
        ["run", "--select", "int_rebuild_scope", "fct_rto_compliance_weekly", "--vars", vars_],
    )
    after = _table(warehouse, "marts.fct_rto_compliance_weekly")[1]
    rebuilt = {date(2023, 5, 1), date(2023, 5, 8)}
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        if old[1] in rebuilt:
            assert new == old
        else:
            assert new[:6] + new[7:] == old[:6] + old[7:] and new[6] == -1
    assert sum(1 for r in after if r[1] in rebuilt) == sum(1 for r in before if r[1] in rebuilt) > 0
    # restore the table for the other tests of this module
    _dbt(
        paths,
        [
            "run",
            "--select",
            "int_rebuild_scope",
            "fct_rto_compliance_weekly",
            "--vars",
            json.dumps({"rebuild_from": COMPANY["start"].isoformat()}),
        ],
    )
    assert _table(warehouse, "marts.fct_rto_compliance_weekly")[1] == before


def test_a_retention_purge_keeps_the_history_of_the_marts(nights, tmp_path):
    """Raw events purged by the retention task: later builds keep the weeks they fed.

    The incremental warehouse is copied and its badge events before 2023-04-19 (two
    months back from the last night) purged; the retention floor is the Monday after,
    2023-04-24. A build asked to rebuild everything from the first day on must leave
    every mart and incremental model exactly as it was: the weeks before the floor are
    not rebuilt from the purged (now empty) raw rows, the weeks after it are rebuilt
    from the same events, and the covered period (attrition months, calendar) does not
    move.
    """
    from datetime import datetime

    from rto.config import resolve_paths
    from rto.retention import purge_badge_events, refuse_full_refresh_after_purge
    from rto.warehouse import connect

    copy = tmp_path / "data" / "warehouse" / "build.duckdb"
    copy.parent.mkdir(parents=True)
    _query(nights["paths"].warehouse, "checkpoint")
    shutil.copyfile(nights["paths"].warehouse, copy)
    paths = resolve_paths(str(nights["source"]), tmp_path / "data")
    before = {table: _table(copy, table) for table in TABLES}

    with connect(paths.warehouse) as con:
        purged = purge_badge_events(
            con, paths.landing, "retention_1", NIGHTS[-1], 2, datetime(2023, 6, 20, 3)
        )
        assert purged.cutoff == date(2023, 4, 19)
        assert purged.files > 0 and purged.rows > 0
        assert con.execute(
            "select count(*) from raw.badge_events where _delivery_date < date '2023-04-19'"
        ).fetchone() == (0,)
        # the staging table is a copy of the events: purged in the same transaction
        assert con.execute(
            "select count(*) from staging.stg_badge__events where delivery_date < '2023-04-19'"
        ).fetchone() == (0,)
        with duckdb.connect(str(nights["paths"].warehouse)) as original:  # dbt may hold it
            staged_in_purged_files = original.execute(
                "select count(*) from staging.stg_badge__events where source_path in "
                "(select unnest(?))",
                [purged.paths],
            ).fetchone()[0]
        assert staged_in_purged_files > 0
        assert con.execute(
            "select count(distinct source_path), sum(rows) from audit.purges "
            "where target = 'staging.stg_badge__events'"
        ).fetchone() == (purged.files, staged_in_purged_files)
        with pytest.raises(Exception, match="purged"):
            refuse_full_refresh_after_purge(con)

    vars_ = {"badge_lookback_days": 1, "rebuild_from": COMPANY["start"].isoformat()}
    _dbt(paths, ["run", "--vars", json.dumps(vars_)])
    scope = _query(copy, SCOPE_SQL)
    assert ("from", None, COMPANY["start"], "var rebuild_from") in scope  # asked for everything
    assert _query(
        copy, "select count(*) from marts.fct_rto_compliance_weekly where week_start < '2023-04-24'"
    ) > [(0,)]
    staged = "staging.stg_badge__events"
    columns, rows = before[staged]
    path = columns.index("source_path")
    before[staged] = (columns, [r for r in rows if r[path] not in set(purged.paths)])
    for table in TABLES:
        assert _table(copy, table) == before[table], table
