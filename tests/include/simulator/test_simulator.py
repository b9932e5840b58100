"""The source simulator: layout, determinism, referential sanity, behaviour bands."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from rto.simulator import QuirkRates, SimulatorConfig, generate, generate_night, generate_nights
from rto.simulator.hr import (
    ASSIGNMENT_COLUMNS,
    EVENT_COLUMNS,
    HR_COLUMNS,
    RIF_NOTICE_COLUMNS,
    RIF_ROUND_COLUMNS,
)

START, END = date(2023, 1, 2), date(2023, 6, 30)
SITES = ("SEA", "NYC", "DUB", "BLR")


def _config(out: Path, **kw) -> SimulatorConfig:
    base = dict(out=out, employees=300, start=START, end=END, seed=7)
    base.update(kw)
    return SimulatorConfig(**base)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "source"
    summary = generate(_config(out))
    return out, summary


@pytest.fixture(scope="module")
def db(run):
    out, _ = run
    con = duckdb.connect()
    con.execute(f"""
        create table events as select * from read_csv(
            '{out}/badge/events/*/*.csv.gz', header = true, all_varchar = true,
            filename = true)
    """)
    con.execute(f"""
        create table assignments as select * from read_csv(
            '{out}/badge/assignments/{END}.csv.gz', header = true, all_varchar = true)
    """)
    for name in HR_COLUMNS:
        path = out / "hr" / END.isoformat() / f"{name}.jsonl"
        if path.stat().st_size:
            con.execute(
                f"create table hr_{name} as select * from read_json('{path}',"
                " format = 'newline_delimited')"
            )
    return con


def test_layout_and_exact_columns(run):
    out, summary = run
    hr = out / "hr" / END.isoformat()
    for name, columns in HR_COLUMNS.items():
        rows = _jsonl(hr / f"{name}.jsonl")
        assert all(list(row) == columns for row in rows), name
    for name in (
        "sites",
        "org_units",
        "employees",
        "job_history",
        "leave",
        "holidays",
        "exceptions",
        "nominations",
    ):
        assert _jsonl(hr / f"{name}.jsonl"), f"{name} is empty"
    with gzip.open(out / "badge" / "assignments" / f"{END}.csv.gz", "rt") as fh:
        assert fh.readline().rstrip("\n").split(",") == ASSIGNMENT_COLUMNS
    days = (END - START).days + 1
    event_files = sorted((out / "badge" / "events").rglob("*.csv.gz"))
    assert len(event_files) == days * len(SITES)
    for d in (START, date(2023, 1, 7), END):  # a Saturday has a file too
        for s in SITES:
            with gzip.open(out / "badge" / "events" / d.isoformat() / f"{s}.csv.gz", "rt") as fh:
                assert fh.readline().rstrip("\n").split(",") == EVENT_COLUMNS
    layoffs = sorted(p.name for p in (out / "layoffs").iterdir())
    # RIF2023A announced 2023-01-18 and separated 2023-03-20 (same day RIF2023B is announced)
    assert layoffs == ["2023-01-18", "2023-03-20", "2023-05-22"]
    for day in layoffs:
        rounds = (out / "layoffs" / day / "rif_rounds.csv").read_text().splitlines()
        notices = (out / "layoffs" / day / "rif_notices.csv").read_text().splitlines()
        assert rounds[0].split(",") == RIF_ROUND_COLUMNS
        assert notices[0].split(",") == RIF_NOTICE_COLUMNS
    assert summary.files == len(list(p for p in out.rglob("*") if p.is_file()))
    assert summary.rows_by_kind["badge/events"] > 30_000


def test_same_seed_same_bytes_whatever_the_workers(run, tmp_path):
    """Two forked workers write the same bytes as one process.

    Run through the CLI in a fresh process, as users run it: forking this test process,
    which earlier tests left with native threads (dbt, DuckDB, Airflow), can deadlock a
    worker on a lock one of those threads held at fork time.
    """
    out, _ = run
    again = tmp_path / "again"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rto.simulator.cli",
            "--out",
            str(again),
            "--employees",
            "300",
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
            "--seed",
            "7",
            "--workers",
            "2",
            "--no-progress",
        ],
        check=True,
        timeout=600,
    )
    assert _digests(again) == _digests(out)


def test_other_seed_other_data(run, tmp_path):
    out, _ = run
    other = tmp_path / "other"
    generate(_config(other, seed=8, end=date(2023, 1, 8)))
    a = (out / "badge/events/2023-01-03/SEA.csv.gz").read_bytes()
    assert a != (other / "badge/events/2023-01-03/SEA.csv.gz").read_bytes()


def test_night_by_night_matches_the_full_run(run, tmp_path):
    out, _ = run
    nightly = tmp_path / "nightly"
    cfg = _config(nightly)
    generate_nights(cfg, START + timedelta(days=20))
    # each night has its own HR snapshot; events and RIF files equal the full run's
    assert (nightly / "hr" / "2023-01-05" / "employees.jsonl").exists()
    for path in sorted((nightly / "badge" / "events").rglob("*.csv.gz")):
        rel = path.relative_to(nightly)
        assert path.read_bytes() == (out / rel).read_bytes(), rel
    assert len(list((nightly / "badge" / "events").rglob("*.csv.gz"))) == 21 * len(SITES)
    assert (nightly / "layoffs/2023-01-18/rif_notices.csv").read_bytes() == (
        out / "layoffs/2023-01-18/rif_notices.csv"
    ).read_bytes()
    # a snapshot knows only the past: nobody hired after its night
    emp = _jsonl(nightly / "hr" / "2023-01-10" / "employees.jsonl")
    assert max(e["hire_date"] for e in emp) <= "2023-01-10"
    assert all(e["termination_date"] is None or e["termination_date"] <= "2023-01-10" for e in emp)


def test_a_run_until_a_day_is_continued_by_the_next_nights(run, tmp_path):
    """--until writes the deliveries up to a day of a company simulated further: the
    night after it (generate_night, same --end) continues that company, as a full run
    to --end would have it."""
    out, _ = run
    until = END - timedelta(days=3)
    part = tmp_path / "until"
    generate(_config(part), until=until)
    events = sorted(p.relative_to(part) for p in (part / "badge" / "events").rglob("*.csv.gz"))
    assert events and max(p.parts[2] for p in events) == until.isoformat()
    for rel in events:
        assert (part / rel).read_bytes() == (out / rel).read_bytes(), rel
    assert sorted(p.name for p in (part / "hr").iterdir()) == [until.isoformat()]
    night = until + timedelta(days=1)
    generate_night(_config(part), night)
    for rel in (part / "badge" / "events" / night.isoformat()).iterdir():
        assert rel.read_bytes() == (out / rel.relative_to(part)).read_bytes(), rel
    # the next night's HR snapshot is the same company one day on: nobody new but its hires
    before = {e["employee_id"] for e in _jsonl(part / "hr" / until.isoformat() / "employees.jsonl")}
    after = _jsonl(part / "hr" / night.isoformat() / "employees.jsonl")
    assert {e["employee_id"] for e in after if e["hire_date"] <= until.isoformat()} == before
    with pytest.raises(ValueError, match="outside"):
        generate(_config(tmp_path / "late"), until=END + timedelta(days=1))


def test_referential_sanity(db):
    unknown = db.execute("""
        select count(*) from events e
        where not exists (select 1 from assignments a where a.badge_id = e.badge_id)
    """).fetchone()[0]
    assert unknown == 0  # no unknown badges unless the quirk is on
    assert (
        db.execute("""
        select count(*) from hr_job_history j
        where j.org_unit_id not in (select org_unit_id from hr_org_units)
           or (j.manager_id is not null
               and j.manager_id not in (select employee_id from hr_employees))
    """).fetchone()[0]
        == 0
    )
    assert (
        db.execute("""
        select count(*) from hr_org_units o
        where (parent_id is not null and parent_id not in (select org_unit_id from hr_org_units))
           or head_employee_id not in (select employee_id from hr_employees)
    """).fetchone()[0]
        == 0
    )
    # every employee has exactly one hire row, on the hire date
    assert (
        db.execute("""
        select count(*) from hr_employees e
        where (select count(*) from hr_job_history j where j.employee_id = e.employee_id
               and j.event = 'hire' and j.effective_date = e.hire_date) != 1
    """).fetchone()[0]
        == 0
    )
    # "newest row with effective_date <= day" is unambiguous
    assert (
        db.execute("""
        select count(*) from (select employee_id, effective_date from hr_job_history
                              group by all having count(*) > 1)""").fetchone()[0]
        == 0
    )
    # terminated people have a termination row on their termination date
    assert (
        db.execute("""
        select count(*) from hr_employees e where termination_date is not null
        and not exists (select 1 from hr_job_history j where j.employee_id = e.employee_id
                        and j.event = 'termination' and j.effective_date = e.termination_date)
    """).fetchone()[0]
        == 0
    )
    tz = dict(db.execute("select site_id, timezone from hr_sites").fetchall())
    assert len(set(tz.values())) >= 3
    assert "Europe/Dublin" in tz.values()  # DST outside the US
    assert (
        db.execute("""
        select count(*) from hr_employees e join hr_sites s on e.home_site_id = s.site_id
        where e.country != s.country
    """).fetchone()[0]
        == 0
    )
    # event ids are unique, events sit in the file of their local day and site
    assert db.execute("select count(*) - count(distinct event_id) from events").fetchone()[0] == 0
    assert (
        db.execute("""
        select count(*) from events
        where filename not like '%/' || substr(event_time, 1, 10) || '/' || site_id || '.csv.gz'
    """).fetchone()[0]
        == 0
    )


def test_levels_and_vps(db):
    levels = dict(
        db.execute("""
        select job_level, count(*) from (
            select employee_id, arg_max(job_level, effective_date) as job_level
            from hr_job_history group by employee_id) group by 1
    """).fetchall()
    )
    assert min(levels) >= 4 and max(levels) <= 12
    total = sum(levels.values())
    high = sum(v for k, v in levels.items() if k >= 10)
    assert 0 < high / total < 0.03
    assert levels.get(5, 0) > levels.get(8, 0)  # a pyramid
    # every vp_org is headed by someone at level 10 or more
    assert (
        db.execute("""
        select count(*) from hr_org_units o
        join (select employee_id, max(job_level) as lvl from hr_job_history group by 1) j
          on j.employee_id = o.head_employee_id
        where o.kind = 'vp_org' and j.lvl < 10
    """).fetchone()[0]
        == 0
    )


def _office_days_per_week(db, first_monday: date, last_monday: date) -> float:
    """Average office days per employee-week of employees with no exception,
    employed and off leave the whole week, in weeks without a holiday."""
    return db.execute(f"""
        with weeks as (
            select unnest(generate_series(date '{first_monday}', date '{last_monday}',
                                          interval 7 day))::date as monday
        ),
        hol as (select country, date::date as d from hr_holidays),
        emp as (
            select e.employee_id, e.country from hr_employees e
            where e.worker_type = 'employee'
              and e.employee_id not in (select subject_id from hr_exceptions
                                        where scope = 'employee')
        ),
        ew as (
            select emp.employee_id, w.monday from emp
            join hr_employees e using (employee_id) cross join weeks w
            where e.hire_date::date <= w.monday
              and (e.termination_date is null or e.termination_date::date > w.monday + 6)
              and not exists (select 1 from hol where hol.country = emp.country
                              and hol.d between w.monday and w.monday + 4)
              and not exists (select 1 from hr_leave l where l.employee_id = emp.employee_id
                              and l.start_date::date <= w.monday + 4
                              and l.end_date::date >= w.monday)
        ),
        office as (
            select distinct a.employee_id, substr(e.event_time, 1, 10)::date as d
            from events e join assignments a on a.badge_id = e.badge_id
            where e.result = 'GRANTED' and a.badge_type = 'EMPLOYEE'
              and isodow(substr(e.event_time, 1, 10)::date) <= 5
        )
        select avg(coalesce(n, 0)) from ew left join (
            select employee_id, date_trunc('week', d)::date as monday, count(*) as n
            from office group by 1, 2) o using (employee_id, monday)
    """).fetchone()[0]


def test_attendance_responds_to_the_policy(db):
    three_days = _office_days_per_week(db, date(2023, 5, 8), date(2023, 6, 19))
    discretion = _office_days_per_week(db, date(2023, 1, 9), date(2023, 4, 17))
    assert 2.0 <= three_days <= 4.0
    assert 0.8 <= discretion <= 2.5
    assert three_days > discretion + 0.5


def test_swipe_mix(db):
    mix = dict(db.execute("select direction, count(*) from events group by 1").fetchall())
    total = sum(mix.values())
    assert 0.3 < mix["IN"] / total < 0.55
    assert 0.3 < mix["OUT"] / total < 0.55
    assert 0.05 < mix[None] / total < 0.35  # floor doors without direction
    denied = db.execute("select avg((result = 'DENIED')::int) from events").fetchone()[0]
    assert 0.002 < denied < 0.02
    visitors = db.execute("""
        select count(*) from events e join assignments a using (badge_id)
        where a.badge_type = 'VISITOR'""").fetchone()[0]
    contractors = db.execute("""
        select count(*) from events e join assignments a using (badge_id)
        where a.badge_type = 'CONTRACTOR'""").fetchone()[0]
    assert visitors > 100 and contractors > 100
    # forgotten badges: TEMP cards reused over days, swiped on the day they are assigned
    temp = db.execute("""
        select count(*), count(distinct badge_id) from assignments
        where badge_type = 'TEMP'""").fetchone()
    assert temp[0] > 2 * temp[1] > 0
    temp_swipes = db.execute("""
        select count(*) from events e join assignments a using (badge_id)
        where a.badge_type = 'TEMP' and e.event_time >= a.valid_from
          and e.event_time < a.valid_to""").fetchone()[0]
    assert temp_swipes > 20
    # typical arrival: median first swipe of an employee-day between 8:00 and 10:30
    median_first = db.execute("""
        select median(t) from (
            select badge_id, substr(event_time, 1, 10), min(substr(event_time, 12, 5)) as t
            from events where direction = 'IN' group by 1, 2)""").fetchone()[0]
    assert "08:00" <= median_first <= "10:30"


def test_layoffs_and_exits(db, run):
    out, _ = run
    notices = duckdb.sql(f"""
        select * from read_csv('{out}/layoffs/2023-05-22/rif_notices.csv', all_varchar = true)
    """).fetchall()
    final = {
        r[2]: r
        for r in duckdb.sql(f"""
        select * from read_csv('{out}/layoffs/2023-03-20/rif_notices.csv', all_varchar = true)
        where rif_round_id = 'RIF2023A'""").fetchall()
    }
    final.update({r[2]: r for r in notices})
    statuses = Counter(r[5] for r in final.values())
    assert statuses["separated"] > 0 and set(statuses) <= {"separated", "rescinded"}
    emp = {
        r[0]: r
        for r in db.execute(
            "select employee_id, termination_date::varchar, termination_reason from hr_employees"
        ).fetchall()
    }
    for notice in final.values():
        e = emp[notice[2]]
        if notice[5] == "separated":
            assert e[1] == notice[4] and e[2] == "layoff"
        else:
            assert e[2] != "layoff"
    headcount = db.execute("""select count(*) from hr_employees where worker_type = 'employee'
                              and hire_date <= date '2023-01-18'""").fetchone()[0]
    assert 0.04 <= statuses["separated"] / headcount <= 0.09  # two of the three rounds
    reasons = dict(
        db.execute("""select termination_reason, count(*) from hr_employees
                                 where termination_reason is not null group by 1""").fetchall()
    )
    assert reasons.get("voluntary_resignation", 0) >= 5


def test_promotions(db):
    noms = db.execute("select count(*), count(distinct cycle_id) from hr_nominations").fetchone()
    assert noms[0] >= 10 and noms[1] == 1  # 2023H1 only in this range
    outcomes = dict(
        db.execute("select outcome, count(*) from hr_nominations group by 1").fetchall()
    )
    assert outcomes.get("promoted", 0) > 0 and outcomes.get("not_promoted", 0) > 0
    # a promoted nomination has a promotion row on decided_on at to_level
    assert (
        db.execute("""
        select count(*) from hr_nominations n where outcome = 'promoted' and not exists (
            select 1 from hr_job_history j where j.employee_id = n.employee_id
            and j.event = 'promotion' and j.effective_date = n.decided_on
            and j.job_level = n.to_level)""").fetchone()[0]
        == 0
    )


def test_gate_cycles_have_vp_and_invalid_approvals(tmp_path):
    from rto.simulator import build_population
    from rto.simulator.hr import hr_tables

    pop = build_population(
        _config(tmp_path, employees=3000, start=date(2023, 10, 2), end=date(2024, 6, 30))
    )
    tables = hr_tables(pop, date(2024, 6, 30))
    levels: dict[str, list[tuple[str, int]]] = {}
    for row in tables["job_history"]:
        levels.setdefault(row[0], []).append((row[1], row[2]))
    noms = {n[0]: n for n in tables["nominations"]}
    approvals = tables["approvals"]
    assert len(approvals) >= 10

    def level_on(emp: str, day: str) -> int:
        return max((d, lvl) for d, lvl in levels[emp] if d <= day)[1]

    by_vp = sum(level_on(a[2], a[3]) >= 10 for a in approvals)
    late = sum(noms[a[1]][6] is not None and a[3] > noms[a[1]][6] for a in approvals)
    assert by_vp / len(approvals) > 0.75
    assert by_vp < len(approvals)  # some approvals by non-VPs
    assert late >= 1


def test_quirks_at_their_rates(tmp_path):
    rates = QuirkRates(
        duplicate_event_rate=0.01,
        resent_file_rate=0.05,
        unknown_badge_rate=0.01,
        bad_row_rate=0.01,
        vendor_column_from=date(2023, 3, 29),
        vendor_column_site="DUB",
        truncated_file_rate=0.03,
        late_file_rate=0.05,
        rif_correction=True,
    )
    out = tmp_path / "messy"
    summary = generate(
        _config(out, start=date(2023, 3, 15), end=date(2023, 4, 14), quirks=rates, workers=2)
    )
    q = summary.quirks
    rows = summary.rows_by_kind["badge/events"]
    files = 31 * len(SITES)
    for name, rate in (("duplicate_event_rows", 0.01), ("unknown_badge_rows", 0.01)):
        assert 0.5 * rate * rows <= q[name] <= 1.6 * rate * rows, (name, q[name], rows)
    bad = q["bad_row_timestamp"] + q["bad_row_columns"] + q["bad_row_encoding"]
    assert 0.5 * 0.01 * rows <= bad <= 1.6 * 0.01 * rows
    assert min(q["bad_row_timestamp"], q["bad_row_columns"], q["bad_row_encoding"]) > 0
    for name, rate in (("resent_files", 0.05), ("truncated_files", 0.03), ("late_files", 0.05)):
        assert 0.2 * rate * files <= q[name] <= 2.5 * rate * files, (name, q[name])
    assert q["vendor_column_files"] == 17  # DUB from 2023-03-29 to 2023-04-14
    assert q["rif_correction"] == 1  # RIF2023B announced 2023-03-20, corrected 2023-03-27
    assert (out / "layoffs/2023-03-27/rif_rounds.csv").exists()
    # the quirks are really in the files
    truncated = 0
    for path in sorted((out / "badge" / "events").rglob("*.csv.gz")):
        try:
            gzip.decompress(path.read_bytes())
        except (EOFError, gzip.BadGzipFile):
            truncated += 1
    assert truncated == q["truncated_files"]
    with gzip.open(out / "badge/events/2023-04-05/DUB.csv.gz", "rt", errors="replace") as fh:
        assert fh.readline().rstrip("\n").endswith(",door_name")
    # same quirks whatever the chunking
    again = tmp_path / "again"
    generate(
        _config(again, start=date(2023, 3, 15), end=date(2023, 4, 14), quirks=rates, workers=1)
    )
    assert _digests(again) == _digests(out)


def test_quirks_are_off_by_default(run):
    _, summary = run
    assert not summary.quirks


def test_night_patrol_swipes_in_the_dst_gap(db):
    # 2023-03-12 02:00-02:59 does not exist in Seattle; 2023-03-26 01:00-01:59 not in Dublin
    gap = db.execute("""
        select site_id, count(*) from events
        where (site_id = 'SEA' and event_time like '2023-03-12 02:%')
           or (site_id = 'DUB' and event_time like '2023-03-26 01:%')
        group by 1""").fetchall()
    assert {s for s, n in gap if n > 0} == {"SEA", "DUB"}


def test_late_files_arrive_late_at_night(tmp_path):
    from rto.simulator import build_population, generate_night
    from rto.simulator.events import DayGenerator
    from rto.simulator.messy import EventRenderer

    rates = QuirkRates(late_file_rate=0.3, late_days=3)
    cfg = _config(
        tmp_path / "n", employees=100, start=date(2023, 2, 1), end=date(2023, 2, 20), quirks=rates
    )
    pop = build_population(cfg)
    rnd = EventRenderer(pop, DayGenerator(pop))
    late = [
        (d, s)
        for d in (cfg.start + timedelta(days=k) for k in range(15))
        for s in range(len(SITES))
        if rnd.is_late(d, s)
    ]
    assert late
    day, site = late[0]
    rel = Path("badge/events") / day.isoformat() / f"{SITES[site]}.csv.gz"
    on_time = generate_night(cfg, day, pop)
    assert not (cfg.out / rel).exists()
    assert on_time.files == 10 + 1 + (len(SITES) - sum(1 for d, _ in late if d == day)) + sum(
        1 for d, _ in late if d == day - timedelta(days=3)
    )
    cfg2 = _config(
        tmp_path / "m", employees=100, start=date(2023, 2, 1), end=date(2023, 2, 20), quirks=rates
    )
    later = generate_night(cfg2, day + timedelta(days=3), pop)
    assert (cfg2.out / rel).exists() and later.quirks["late_files"] >= 1
