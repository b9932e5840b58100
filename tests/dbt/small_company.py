"""A hand-made company written straight into the raw tables, for dbt tests.

Eight employees, a contractor, two HR snapshots (the older one wrong on
purpose), a holiday per country, leave, exceptions on an employee and on a
department, a team policy under director discretion, nominations with valid
and invalid VP approvals, a RIF round with a separated, a rescinded and a
corrected notice, and badge events from 2023-04-05 to 2025-01-15 including a
re-sent file, a denied swipe, an unknown badge and a contractor badge.

The raw tables are created with the loader's own DDL (``rto.warehouse``) so
that the dbt sources and the loader cannot drift apart unnoticed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

D, T = date, datetime
OLD, NEW = D(2024, 6, 1), D(2025, 1, 15)  # HR deliveries; as_of_date = 2025-01-15

SITES = [
    dict(
        site_id="NYC", name="New York", city="New York", country="US", timezone="America/New_York"
    ),
    dict(site_id="LON", name="London", city="London", country="GB", timezone="Europe/London"),
]
ORG_UNITS = [
    dict(
        org_unit_id="OU_C", name="Company", parent_id=None, kind="company", head_employee_id="E008"
    ),
    dict(
        org_unit_id="OU_V1", name="VP org", parent_id="OU_C", kind="vp_org", head_employee_id="E008"
    ),
    dict(
        org_unit_id="OU_D1",
        name="Dept 1",
        parent_id="OU_V1",
        kind="department",
        head_employee_id=None,
    ),
    dict(
        org_unit_id="OU_D2",
        name="Dept 2",
        parent_id="OU_V1",
        kind="department",
        head_employee_id=None,
    ),
    dict(org_unit_id="OU_T1", name="Team 1", parent_id="OU_D1", kind="team", head_employee_id=None),
    dict(org_unit_id="OU_T2", name="Team 2", parent_id="OU_D2", kind="team", head_employee_id=None),
    dict(org_unit_id="OU_T3", name="Team 3", parent_id="OU_T2", kind="team", head_employee_id=None),
]


def _emp(employee_id: str, **kw: Any) -> dict[str, Any]:
    row = dict(
        employee_id=employee_id,
        full_name=f"Name {employee_id}",
        email=f"{employee_id}@x",
        termination_date=None,
        termination_reason=None,
        worker_type="employee",
        home_site_id="NYC",
        country="US",
    )
    return row | kw


EMPLOYEES = [
    _emp("E001", hire_date=D(2020, 1, 1)),
    _emp(
        "E002",
        hire_date=D(2023, 5, 3),
        termination_date=D(2024, 3, 15),
        termination_reason="voluntary_resignation",
    ),
    _emp("E003", hire_date=D(2021, 6, 1), home_site_id="LON", country="GB"),
    _emp("E004", hire_date=D(2022, 1, 1), worker_type="contractor"),
    _emp(
        "E005",
        hire_date=D(2019, 1, 1),
        termination_date=D(2023, 3, 31),
        termination_reason="layoff",
    ),
    _emp(
        "E006",
        hire_date=D(2019, 1, 1),
        termination_date=D(2024, 6, 28),
        termination_reason="involuntary_other",
    ),
    _emp(
        "E007", hire_date=D(2019, 1, 1), termination_date=D(2024, 7, 1), termination_reason="layoff"
    ),
    _emp("E008", hire_date=D(2015, 1, 1)),
    _emp("E009", hire_date=D(2022, 1, 1), home_site_id=None),
]


def _job(
    e: str, d: date, level: int, ou: str, event: str, mgr: str | None = "E008"
) -> dict[str, Any]:
    return dict(
        employee_id=e,
        effective_date=d,
        job_level=level,
        job_family="eng",
        org_unit_id=ou,
        manager_id=mgr,
        event=event,
    )


JOB_HISTORY = [
    _job("E001", D(2020, 1, 1), 7, "OU_T1", "hire"),
    _job("E001", D(2024, 4, 1), 8, "OU_T1", "promotion"),
    _job("E002", D(2023, 5, 3), 5, "OU_T1", "hire"),
    _job("E002", D(2023, 9, 1), 5, "OU_T2", "transfer"),
    _job("E002", D(2024, 3, 15), 5, "OU_T2", "termination"),
    _job("E003", D(2021, 6, 1), 6, "OU_T3", "hire"),
    _job("E004", D(2022, 1, 1), 5, "OU_T1", "hire"),
    _job("E005", D(2019, 1, 1), 6, "OU_T1", "hire"),
    _job("E005", D(2023, 3, 31), 6, "OU_T1", "termination"),
    _job("E006", D(2019, 1, 1), 6, "OU_T2", "hire"),
    _job("E006", D(2024, 6, 28), 6, "OU_T2", "termination"),
    _job("E007", D(2019, 1, 1), 9, "OU_T1", "hire"),
    _job("E007", D(2024, 7, 1), 9, "OU_T1", "termination"),
    _job("E008", D(2015, 1, 1), 10, "OU_V1", "hire", None),
    _job("E009", D(2022, 1, 1), 4, "OU_D1", "hire"),
]
LEAVE = [
    dict(
        leave_id="L1",
        employee_id="E001",
        start_date=D(2023, 8, 7),
        end_date=D(2023, 8, 11),
        leave_type="vacation",
    ),
    dict(
        leave_id="L2",
        employee_id="E001",
        start_date=D(2023, 8, 14),
        end_date=D(2023, 8, 15),
        leave_type="sick",
    ),
]
HOLIDAYS = [
    dict(country="US", date=D(2023, 5, 29), name="Memorial Day"),
    dict(country="US", date=D(2023, 7, 4), name="Independence Day"),
    dict(country="US", date=D(2024, 1, 1), name="New Year"),
    dict(country="US", date=D(2025, 1, 1), name="New Year"),
    dict(country="GB", date=D(2023, 8, 28), name="Summer bank holiday"),
    dict(country="GB", date=D(2025, 1, 1), name="New Year"),
]
TEAM_POLICIES = [
    dict(
        org_unit_id="OU_D1",
        required_days_per_week=1,
        decided_by="E008",
        valid_from=D(2021, 10, 11),
        valid_to=None,
    ),
    dict(
        org_unit_id="OU_T1",
        required_days_per_week=2,
        decided_by="E008",
        valid_from=D(2022, 1, 1),
        valid_to=None,
    ),
]
EXCEPTIONS = [
    dict(
        exception_id="X1",
        scope="employee",
        subject_id="E003",
        required_days_per_week=1,
        reason="care",
        approved_by="E008",
        valid_from=D(2023, 6, 1),
        valid_to=D(2023, 9, 1),
    ),
    dict(
        exception_id="X2",
        scope="org_unit",
        subject_id="OU_D2",
        required_days_per_week=2,
        reason="lab",
        approved_by="E008",
        valid_from=D(2023, 5, 1),
        valid_to=None,
    ),
    dict(
        exception_id="X3",
        scope="employee",
        subject_id="E009",
        required_days_per_week=0,
        reason="remote",
        approved_by="E008",
        valid_from=D(2022, 1, 1),
        valid_to=None,
    ),
]


def _nom(
    nid: str, cycle: str, emp: str, lv: int, on: date, decided: date | None, outcome: str
) -> dict:
    return dict(
        nomination_id=nid,
        cycle_id=cycle,
        employee_id=emp,
        from_level=lv,
        to_level=lv + 1,
        nominated_on=on,
        decided_on=decided,
        outcome=outcome,
    )


NOMINATIONS = [
    _nom("N1", "C2024H1", "E001", 7, D(2024, 2, 1), D(2024, 3, 1), "promoted"),
    _nom("N2", "C2023H2", "E002", 5, D(2023, 10, 1), D(2023, 11, 1), "not_promoted"),
    _nom("N3", "C2024H1", "E003", 6, D(2024, 2, 1), D(2024, 3, 1), "promoted"),
    _nom("N4", "C2024H1", "E002", 5, D(2024, 2, 1), D(2024, 3, 1), "promoted"),
    _nom("N5", "C2025H1", "E009", 4, D(2025, 1, 10), None, "pending"),
    _nom("N6", "C2024H1", "E004", 5, D(2024, 2, 1), D(2024, 3, 1), "promoted"),  # contractor
]
APPROVALS = [
    dict(approval_id="A1", nomination_id="N3", approver_id="E008", approved_on=D(2024, 2, 20)),
    dict(
        approval_id="A2", nomination_id="N4", approver_id="E001", approved_on=D(2024, 2, 20)
    ),  # level 7
    dict(
        approval_id="A3", nomination_id="N4", approver_id="E008", approved_on=D(2024, 3, 5)
    ),  # too late
]
ASSIGNMENTS = [
    dict(
        badge_id="B001",
        employee_id="E001",
        badge_type="EMPLOYEE",
        valid_from=T(2020, 1, 1),
        valid_to=None,
    ),
    dict(
        badge_id="B002",
        employee_id="E002",
        badge_type="EMPLOYEE",
        valid_from=T(2023, 5, 3),
        valid_to=T(2024, 3, 15),
    ),
    dict(
        badge_id="B003",
        employee_id="E003",
        badge_type="EMPLOYEE",
        valid_from=T(2021, 6, 1),
        valid_to=None,
    ),
    dict(
        badge_id="B004",
        employee_id="E004",
        badge_type="CONTRACTOR",
        valid_from=T(2022, 1, 1),
        valid_to=None,
    ),
    dict(
        badge_id="B006",
        employee_id="E006",
        badge_type="EMPLOYEE",
        valid_from=T(2019, 1, 1),
        valid_to=None,
    ),
    dict(
        badge_id="B007",
        employee_id="E007",
        badge_type="EMPLOYEE",
        valid_from=T(2019, 1, 1),
        valid_to=None,
    ),
    dict(
        badge_id="V1",
        employee_id=None,
        badge_type="VISITOR",
        valid_from=T(2020, 1, 1),
        valid_to=None,
    ),
]
# ISO weekdays on which each badge swipes in (09:00) and out (17:00)
PATTERNS = {
    "B001": {1, 2, 3},
    "B002": {2, 4},
    "B003": {1},
    "B004": {1, 2, 3, 4, 5},
    "B006": {1, 2, 3, 4},
    "B007": {1, 2, 3},
}
BADGE_SITE = {"B003": "LON"}
FIRST_EVENT_DAY = D(2023, 4, 5)  # a Wednesday: coverage_start = 2023-04-10

ROUNDS = [
    dict(
        rif_round_id="R1",
        name="Round 1",
        announced_on=D(2023, 1, 10),
        scope_org_unit_id="OU_C",
        planned_reductions=100,
    ),
    dict(
        rif_round_id="R3",
        name="Comms",
        announced_on=D(2024, 5, 1),
        scope_org_unit_id="OU_D2",
        planned_reductions=5,
    ),
]
NOTICE_RN1 = dict(
    notice_id="RN1",
    rif_round_id="R1",
    employee_id="E005",
    notified_on=D(2023, 1, 18),
    separation_date=D(2023, 3, 31),
    status="notified",
)
NOTICES_LATER = [
    NOTICE_RN1 | {"status": "separated"},  # the later delivery of RN1 wins
    dict(
        notice_id="RN2",
        rif_round_id="R3",
        employee_id="E006",
        notified_on=D(2024, 5, 15),
        separation_date=D(2024, 6, 28),
        status="separated",
    ),
    dict(
        notice_id="RN3",
        rif_round_id="R3",
        employee_id="E007",
        notified_on=D(2024, 5, 15),
        separation_date=D(2024, 7, 1),
        status="rescinded",
    ),
]


def _events() -> dict[date, list[dict[str, Any]]]:
    by_day: dict[date, list[dict[str, Any]]] = {}
    day, n = FIRST_EVENT_DAY, 0
    while day <= NEW:
        for badge, weekdays in PATTERNS.items():
            if day.isoweekday() in weekdays:
                for hour, direction in ((9, "IN"), (17, "OUT")):
                    n += 1
                    by_day.setdefault(day, []).append(
                        dict(
                            event_id=f"EV{n:07d}",
                            badge_id=badge,
                            site_id=BADGE_SITE.get(badge, "NYC"),
                            reader_id="R1",
                            event_time=T(day.year, day.month, day.day, hour),
                            direction=direction,
                            result="GRANTED",
                        )
                    )
        day += timedelta(days=1)
    extra = [  # denied swipe, unknown badge, and E002 coming in on Wednesday 2023-05-10 too
        dict(
            event_id="EVD1",
            badge_id="B002",
            site_id="NYC",
            reader_id="R1",
            event_time=T(2023, 4, 12, 9),
            direction="IN",
            result="DENIED",
        ),
        dict(
            event_id="EVU1",
            badge_id="BXXX",
            site_id="NYC",
            reader_id="R1",
            event_time=T(2023, 4, 12, 9),
            direction="IN",
            result="GRANTED",
        ),
        dict(
            event_id="EVX1",
            badge_id="B002",
            site_id="NYC",
            reader_id="R1",
            event_time=T(2023, 5, 10, 10),
            direction="IN",
            result="GRANTED",
        ),
    ]
    for e in extra:
        by_day[e["event_time"].date()].append(e)
    return by_day


def write_raw(path: Path) -> None:
    """Create ``path`` with the loader's raw tables and fill them with the company."""
    import duckdb
    import pyarrow

    from rto.warehouse import raw_table_ddl

    con = duckdb.connect(str(path))
    con.execute(raw_table_ddl())

    pending: dict[str, list[dict[str, Any]]] = {}

    def insert(table: str, rows: list[dict[str, Any]], delivery: date, source_path: str) -> None:
        lineage = dict(
            _file_id=f"sha-{source_path}", _source_path=source_path, _delivery_date=delivery
        )
        pending.setdefault(table, []).extend(
            row | lineage | dict(_line_number=line, _run_id="test_run")
            for line, row in enumerate(rows, start=2)
        )

    def flush() -> None:
        # one set-based insert per table (row-by-row inserts made this fixture slow)
        for table, records in pending.items():
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
            ]
            batch = pyarrow.Table.from_pylist([{c: r.get(c) for c in columns} for r in records])
            names = ", ".join(f'"{c}"' for c in columns)
            con.register("batch", batch)
            con.execute(f"insert into raw.{table} ({names}) select {names} from batch")
            con.unregister("batch")

    hr = dict(
        sites=SITES,
        org_units=ORG_UNITS,
        job_history=JOB_HISTORY,
        leave=LEAVE,
        holidays=HOLIDAYS,
        team_policies=TEAM_POLICIES,
        exceptions=EXCEPTIONS,
        nominations=NOMINATIONS,
        approvals=APPROVALS,
    )
    for delivery in (OLD, NEW):
        for entity, rows in hr.items():
            insert(f"hr_{entity}", rows, delivery, f"hr/{delivery}/{entity}.jsonl")
        employees = EMPLOYEES
        if delivery == OLD:  # an older snapshot that staging must ignore
            employees = [
                e | {"hire_date": D(2023, 1, 1)} if e["employee_id"] == "E001" else e
                for e in EMPLOYEES
                if e["employee_id"] != "E007"
            ]
        insert("hr_employees", employees, delivery, f"hr/{delivery}/employees.jsonl")
        insert("badge_assignments", ASSIGNMENTS, delivery, f"badge/assignments/{delivery}.csv.gz")

    events = _events()
    for day, rows in sorted(events.items()):
        for site in sorted({r["site_id"] for r in rows}):
            insert(
                "badge_events",
                [r for r in rows if r["site_id"] == site],
                day,
                f"badge/events/{day}/{site}.csv.gz",
            )
    # the vendor re-sends the NYC file of 2023-05-10 three days later: same event ids
    insert(
        "badge_events",
        [r for r in events[D(2023, 5, 10)] if r["site_id"] == "NYC"],
        D(2023, 5, 13),
        "badge/events/2023-05-13/NYC.csv.gz",
    )

    insert("layoffs_rif_rounds", ROUNDS, D(2023, 1, 10), "layoffs/2023-01-10/rif_rounds.csv")
    insert(
        "layoffs_rif_notices", [NOTICE_RN1], D(2023, 1, 20), "layoffs/2023-01-20/rif_notices.csv"
    )
    insert("layoffs_rif_rounds", ROUNDS, D(2024, 7, 2), "layoffs/2024-07-02/rif_rounds.csv")
    insert(
        "layoffs_rif_notices", NOTICES_LATER, D(2024, 7, 2), "layoffs/2024-07-02/rif_notices.csv"
    )
    flush()
    con.close()
