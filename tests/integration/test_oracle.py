"""Unit tests of the independent oracle (tests/integration/oracle.py) on tiny,
hand-written source roots. Every expected number is worked out by hand from
DOMAIN.md section 2 and docs/DESIGN.md."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zlib
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.oracle import MART_COLUMNS, compute_marts, load_sources

# ------------------------------------------------------------------------------ builders

ORG_UNITS = [
    {
        "org_unit_id": "OU1",
        "name": "Company",
        "parent_id": None,
        "kind": "company",
        "head_employee_id": "E900",
    },
    {
        "org_unit_id": "OU2",
        "name": "VP org",
        "parent_id": "OU1",
        "kind": "vp_org",
        "head_employee_id": "E901",
    },
    {
        "org_unit_id": "OU3",
        "name": "Dept A",
        "parent_id": "OU2",
        "kind": "department",
        "head_employee_id": None,
    },
    {
        "org_unit_id": "OU4",
        "name": "Team A1",
        "parent_id": "OU3",
        "kind": "team",
        "head_employee_id": None,
    },
    {
        "org_unit_id": "OU5",
        "name": "Team A2",
        "parent_id": "OU3",
        "kind": "team",
        "head_employee_id": None,
    },
    {
        "org_unit_id": "OU6",
        "name": "Dept B",
        "parent_id": "OU2",
        "kind": "department",
        "head_employee_id": None,
    },
]
SITES = [
    {
        "site_id": "NYC",
        "name": "New York",
        "city": "New York",
        "country": "US",
        "timezone": "America/New_York",
    },
    {
        "site_id": "CAI",
        "name": "Cairo",
        "city": "Cairo",
        "country": "EG",
        "timezone": "Africa/Cairo",
    },
]


def emp(eid, hire="2020-01-06", term=None, reason=None, worker_type="employee", country="US"):
    return {
        "employee_id": eid,
        "full_name": f"Name {eid}",
        "email": f"{eid}@x.com",
        "hire_date": hire,
        "termination_date": term,
        "termination_reason": reason,
        "worker_type": worker_type,
        "home_site_id": "NYC",
        "country": country,
    }


def job(eid, eff="2020-01-06", level=6, ou="OU4", event="hire"):
    return {
        "employee_id": eid,
        "effective_date": eff,
        "job_level": level,
        "job_family": "eng",
        "org_unit_id": ou,
        "manager_id": None,
        "event": event,
    }


def badge(bid, eid, btype="EMPLOYEE", vf="2020-01-01", vt=""):
    return {
        "badge_id": bid,
        "employee_id": eid or "",
        "badge_type": btype,
        "valid_from": vf,
        "valid_to": vt,
    }


_ev_counter = [0]


def ev(bid, when, site="NYC", result="GRANTED", eid=None, direction="IN"):
    _ev_counter[0] += 1
    return {
        "event_id": eid or f"EV{_ev_counter[0]:07d}",
        "badge_id": bid,
        "site_id": site,
        "reader_id": "R1",
        "event_time": when,
        "direction": direction,
        "result": result,
    }


def _jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r if isinstance(r, (list, tuple)) else [r.get(h, "") or "" for h in header])
    return buf.getvalue()


def _csv(path: Path, header, rows, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _csv_text(header, rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")


EV_HEADER = ["event_id", "badge_id", "site_id", "reader_id", "event_time", "direction", "result"]


def make_root(
    tmp: Path,
    *,
    hr_date: str,
    employees,
    job_history,
    holidays=(),
    leave=(),
    team_policies=(),
    exceptions=(),
    nominations=(),
    approvals=(),
    badges=(),
    events=(),
    event_files=None,
    rif_deliveries=(),
) -> Path:
    root = tmp / "src"
    hd = root / "hr" / hr_date
    _jsonl(hd / "sites.jsonl", SITES)
    _jsonl(hd / "org_units.jsonl", ORG_UNITS)
    _jsonl(hd / "employees.jsonl", employees)
    _jsonl(hd / "job_history.jsonl", job_history)
    _jsonl(hd / "holidays.jsonl", list(holidays))
    _jsonl(hd / "leave.jsonl", list(leave))
    _jsonl(hd / "team_policies.jsonl", list(team_policies))
    _jsonl(hd / "exceptions.jsonl", list(exceptions))
    _jsonl(hd / "nominations.jsonl", list(nominations))
    _jsonl(hd / "approvals.jsonl", list(approvals))
    _csv(
        root / "badge" / "assignments" / f"{hr_date}.csv.gz",
        ["badge_id", "employee_id", "badge_type", "valid_from", "valid_to"],
        badges,
        gz=True,
    )
    # events: by default one file per (local day, site)
    files = dict(event_files or {})
    for e in events:
        key = (e["event_time"][:10], e["site_id"])
        files.setdefault(key, []).append(e)
    for (d, site), rows in files.items():
        _csv(root / "badge" / "events" / d / f"{site}.csv.gz", EV_HEADER, rows, gz=True)
    for d, rounds, notices in rif_deliveries:
        _csv(
            root / "layoffs" / d / "rif_rounds.csv",
            ["rif_round_id", "name", "announced_on", "scope_org_unit_id", "planned_reductions"],
            rounds,
        )
        _csv(
            root / "layoffs" / d / "rif_notices.csv",
            [
                "notice_id",
                "rif_round_id",
                "employee_id",
                "notified_on",
                "separation_date",
                "status",
            ],
            notices,
        )
    return root


def weekly_row(marts, eid, week_start):
    df = marts["fct_rto_compliance_weekly"]
    sel = df[(df.employee_id == eid) & (df.week_start == date.fromisoformat(week_start))]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def days(start: str, n: int):
    d0 = date.fromisoformat(start)
    return [(d0 + timedelta(days=i)).isoformat() for i in range(n)]


# ------------------------------------------------------------------------------ tests


def test_columns_and_sorting(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E2"), emp("E1")],
        job_history=[job("E2"), job("E1")],
        badges=[badge("B1", "E1"), badge("B2", "E2")],
        events=[ev("B1", "2023-05-29 09:00:00"), ev("B2", "2023-06-06 09:00:00")],
    )
    marts = compute_marts(root)
    assert set(marts) == set(MART_COLUMNS)
    for name, df in marts.items():
        assert list(df.columns) == MART_COLUMNS[name]
    w = marts["fct_rto_compliance_weekly"]
    assert list(zip(w.employee_id, w.week_start, strict=True)) == [
        ("E1", date(2023, 5, 29)),
        ("E1", date(2023, 6, 5)),
        ("E2", date(2023, 5, 29)),
        ("E2", date(2023, 6, 5)),
    ]
    assert w.available_days.dtype == "int64" and w.has_exception.dtype == bool
    assert isinstance(w.week_start.iloc[0], date)


def test_three_day_policy_four_available_days_requires_three(tmp_path):
    # Memorial Day (Mon 2023-05-29) is a US holiday: 4 available days, (12+4)//5 = 3.
    root = make_root(
        tmp_path,
        hr_date="2023-06-04",
        employees=[emp("E1")],
        job_history=[job("E1")],
        holidays=[
            {"country": "US", "date": "2023-05-29", "name": "Memorial Day"},
            {"country": "GB", "date": "2023-05-30", "name": "not ours"},
        ],
        badges=[badge("B1", "E1")],
        events=[
            ev("B1", "2023-05-29 09:00:00"),  # holiday: not an available day
            ev("B1", "2023-05-30 09:00:00"),
            ev("B1", "2023-05-30 17:00:00", direction=""),
            ev("B1", "2023-05-31 09:00:00"),
            ev("B1", "2023-06-03 10:00:00"),
        ],
    )  # Saturday: not a working day
    src = load_sources(root)
    assert src.as_of_date == date(2023, 6, 4)
    assert src.coverage_start == date(2023, 5, 29)
    marts = compute_marts(root)
    r = weekly_row(marts, "E1", "2023-05-29")
    assert (r.available_days, r.required_days, r.office_days) == (4, 3, 2)
    assert r.status == "non_compliant"
    assert r.policy_id == "three_days" and r.org_unit_id == "OU4"
    assert not r.has_exception
    assert len(marts["fct_rto_compliance_weekly"]) == 1


def test_five_day_policy_with_holiday_requires_four(tmp_path):
    # MLK day Mon 2025-01-20: (16+4)//5 = 4
    root = make_root(
        tmp_path,
        hr_date="2025-01-26",
        employees=[emp("E1")],
        job_history=[job("E1")],
        holidays=[{"country": "US", "date": "2025-01-20", "name": "MLK"}],
        badges=[badge("B1", "E1")],
        events=[ev("B1", f"{d} 09:00:00") for d in days("2025-01-20", 5)],
    )  # Mon: holiday
    r = weekly_row(compute_marts(root), "E1", "2025-01-20")
    assert (r.available_days, r.required_days, r.office_days, r.status) == (4, 4, 4, "compliant")
    assert r.policy_id == "five_days"


def test_week_of_policy_change_with_new_year_holiday(tmp_path):
    # 2024-12-30: Mon, Tue three days; Wed holiday; Thu, Fri five days -> (16+4)//5 = 4
    root = make_root(
        tmp_path,
        hr_date="2025-01-05",
        employees=[emp("E1")],
        job_history=[job("E1")],
        holidays=[{"country": "US", "date": "2025-01-01", "name": "New Year"}],
        badges=[badge("B1", "E1")],
        events=[
            ev("B1", "2024-12-30 09:00:00"),
            ev("B1", "2024-12-31 09:00:00"),
            ev("B1", "2025-01-02 09:00:00"),
        ],
    )
    r = weekly_row(compute_marts(root), "E1", "2024-12-30")
    assert (r.available_days, r.required_days, r.office_days, r.status) == (
        4,
        4,
        3,
        "non_compliant",
    )
    assert r.policy_id == "five_days"  # policy on the Friday


def test_leave_day_is_not_available_and_its_swipe_does_not_count(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        leave=[
            {
                "leave_id": "L1",
                "employee_id": "E1",
                "start_date": "2023-06-07",
                "end_date": "2023-06-08",
                "leave_type": "vacation",
            }
        ],  # Wed + Thu inclusive
        badges=[badge("B1", "E1")],
        events=[
            ev("B1", "2023-06-05 09:00:00"),
            ev("B1", "2023-06-06 09:00:00"),
            ev("B1", "2023-06-07 09:00:00"),
            ev("B1", "2023-06-09 09:00:00"),
        ],
    )
    r = weekly_row(compute_marts(root), "E1", "2023-06-05")
    # 3 available days: (9+4)//5 = 2; office: Mon, Tue, Fri = 3 (Wed is leave)
    assert (r.available_days, r.required_days, r.office_days, r.status) == (3, 2, 3, "compliant")


def test_employee_exception_beats_org_unit_exception(tmp_path):
    exceptions = [
        # org-unit exception on the department (nearest ancestor of team OU4)
        {
            "exception_id": "X1",
            "scope": "org_unit",
            "subject_id": "OU3",
            "required_days_per_week": 1,
            "reason": "lab",
            "approved_by": "E901",
            "valid_from": "2023-01-01",
            "valid_to": None,
        },
        # employee exception for E1: 0 days, valid from Wed 2023-06-07
        {
            "exception_id": "X2",
            "scope": "employee",
            "subject_id": "E1",
            "required_days_per_week": 0,
            "reason": "medical",
            "approved_by": "E901",
            "valid_from": "2023-06-07",
            "valid_to": "2023-07-01",
        },
        # older employee exception for E2, superseded by a newer one (newest valid_from)
        {
            "exception_id": "X3",
            "scope": "employee",
            "subject_id": "E2",
            "required_days_per_week": 5,
            "reason": "x",
            "approved_by": "E901",
            "valid_from": "2023-01-01",
            "valid_to": None,
        },
        {
            "exception_id": "X4",
            "scope": "employee",
            "subject_id": "E2",
            "required_days_per_week": 2,
            "reason": "y",
            "approved_by": "E901",
            "valid_from": "2023-02-01",
            "valid_to": None,
        },
    ]
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1"), emp("E2"), emp("E3"), emp("E4")],
        job_history=[job("E1"), job("E2"), job("E3"), job("E4", ou="OU6")],
        exceptions=exceptions,
        badges=[badge("B1", "E1"), badge("B3", "E3")],
        events=[ev("B1", "2023-06-05 09:00:00"), ev("B3", "2023-06-05 09:00:00")],
    )
    m = compute_marts(root)
    e1 = weekly_row(m, "E1", "2023-06-05")
    # Mon, Tue: org-unit exception 1 each; Wed-Fri: employee exception 0 -> (2+4)//5 = 1
    assert (e1.required_days, e1.office_days, e1.status, e1.has_exception) == (
        1,
        1,
        "compliant",
        True,
    )
    e2 = weekly_row(m, "E2", "2023-06-05")
    assert (e2.required_days, e2.status, e2.has_exception) == (2, "non_compliant", True)
    e3 = weekly_row(m, "E3", "2023-06-05")  # org-unit exception on the ancestor department
    assert (e3.required_days, e3.office_days, e3.status, e3.has_exception) == (
        1,
        1,
        "compliant",
        True,
    )
    e4 = weekly_row(m, "E4", "2023-06-05")  # other department: company policy
    assert (e4.required_days, e4.has_exception) == (3, False)


def test_director_discretion_team_policy_nearest_unit(tmp_path):
    team_policies = [
        {
            "org_unit_id": "OU3",
            "required_days_per_week": 2,
            "decided_by": "E901",
            "valid_from": "2022-01-01",
            "valid_to": None,
        },
        {
            "org_unit_id": "OU4",
            "required_days_per_week": 4,
            "decided_by": "E901",
            "valid_from": "2022-01-01",
            "valid_to": "2023-01-01",
        },
        {
            "org_unit_id": "OU4",
            "required_days_per_week": 1,
            "decided_by": "E901",
            "valid_from": "2023-01-01",
            "valid_to": None,
        },
    ]
    root = make_root(
        tmp_path,
        hr_date="2023-03-19",
        employees=[emp("E1"), emp("E2"), emp("E3")],
        job_history=[job("E1", ou="OU4"), job("E2", ou="OU5"), job("E3", ou="OU6")],
        team_policies=team_policies,
        badges=[badge("B1", "E1")],
        events=[ev("B1", "2023-03-13 09:00:00")],
    )
    m = compute_marts(root)
    assert weekly_row(m, "E1", "2023-03-13").required_days == 1
    assert weekly_row(m, "E2", "2023-03-13").required_days == 2  # ancestor OU3
    r3 = weekly_row(m, "E3", "2023-03-13")
    assert (r3.required_days, r3.status, r3.policy_id) == (
        0,
        "no_requirement",
        "director_discretion",
    )


def test_denied_visitor_contractor_and_unassigned_swipes_do_not_count(tmp_path):
    badges = [
        badge("B1", "E1", vf="2023-01-01", vt="2023-06-07 12:00:00"),
        badge("B9", "E1", btype="VISITOR"),
        badge("BC", "E1", btype="CONTRACTOR"),
        badge("V1", None, btype="VISITOR"),
    ]
    events = [
        ev("B1", "2023-06-05 09:00:00", result="DENIED"),  # denied
        ev("B9", "2023-06-06 09:00:00"),  # visitor badge
        ev("BC", "2023-06-06 10:00:00"),  # contractor badge
        ev("B1", "2023-06-07 11:59:59"),  # assigned: counts
        ev("B1", "2023-06-08 09:00:00"),  # assignment ended
        ev("ZZ", "2023-06-09 09:00:00"),  # unknown badge
        ev("V1", "2023-06-09 09:00:00"),
    ]
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=badges,
        events=events,
    )
    r = weekly_row(compute_marts(root), "E1", "2023-06-05")
    assert (r.office_days, r.required_days, r.status) == (1, 3, "non_compliant")


def test_duplicate_event_id_counts_once_first_delivery_wins(tmp_path):
    dup_tue = ev("B1", "2023-06-06 09:00:00", eid="EVDUP")
    # the same id re-sent later with different content: the first delivery is kept
    resent = dict(dup_tue, event_time="2023-06-07 09:00:00")
    files = {
        ("2023-06-06", "NYC"): [dup_tue, ev("B1", "2023-06-05 09:00:00")],
        ("2023-06-09", "NYC"): [dup_tue, resent],
    }
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        event_files=files,
    )
    src = load_sources(root)
    kept = src.events[src.events.event_id == "EVDUP"]
    assert len(src.events) == 2 and len(kept) == 1
    assert str(kept.event_time.iloc[0]) == "2023-06-06 09:00:00"
    r = weekly_row(compute_marts(root), "E1", "2023-06-05")
    assert r.office_days == 2  # Mon + Tue; the Wednesday copy is the same event


def test_unparseable_rows_are_skipped_and_counted(tmp_path):
    files = {
        ("2023-06-05", "NYC"): [
            ev("B1", "2023-06-05 09:00:00"),
            ev("B1", "2023-06-06 25:00:00"),  # bad timestamp
            ev("B1", "not a time"),  # bad timestamp
            ["EVX", "B1", "NYC", "R1", "2023-06-07 09:00:00", "IN"],  # wrong column count
        ]
    }
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        event_files=files,
    )
    # a bad HR row and a vendor-added column in the events
    with (root / "hr" / "2023-06-11" / "leave.jsonl").open("a") as fh:
        fh.write("{not json\n")
        fh.write(
            json.dumps(
                {
                    "leave_id": "L9",
                    "employee_id": "E1",
                    "start_date": "2023-13-01",
                    "end_date": None,
                    "leave_type": "x",
                }
            )
            + "\n"
        )
    _csv(
        root / "badge" / "events" / "2023-06-08" / "NYC.csv.gz",
        EV_HEADER + ["extra"],
        [["EVY", "B1", "NYC", "R1", "2023-06-08 09:00:00", "IN", "GRANTED", "v"]],
        gz=True,
    )
    src = load_sources(root)
    assert src.skipped == {"badge/events/2023-06-05/NYC.csv.gz": 3, "hr/2023-06-11/leave.jsonl": 2}
    r = weekly_row(compute_marts(root), "E1", "2023-06-05")
    assert r.office_days == 2


def test_truncated_gzip_keeps_complete_lines(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        events=[ev("B1", "2023-06-05 09:00:00")],
    )
    rows = [ev("B1", f"2023-06-0{d} 09:00:00") for d in (6, 7, 8)]
    blob = gzip.compress(_csv_text(EV_HEADER, rows).encode())
    p = root / "badge" / "events" / "2023-06-08" / "NYC.csv.gz"
    p.parent.mkdir(parents=True)
    p.write_bytes(blob[:-8])  # cut the gzip trailer (crc/size) off: EOF before the end
    r = weekly_row(compute_marts(root), "E1", "2023-06-05")
    assert r.office_days == 4
    assert load_sources(root).skipped == {}


def test_truncated_gzip_drops_the_cut_line_even_if_it_parses(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        events=[ev("B1", "2023-06-05 09:00:00")],
    )
    text = (
        _csv_text(
            EV_HEADER + ["door_name"],
            [
                ["EVA", "B1", "NYC", "R1", "2023-06-06 09:00:00", "IN", "GRANTED", "Main Lobby"],
                ["EVB", "B1", "NYC", "R1", "2023-06-07 09:00:00", "IN", "GRANTED", "Main Lobby"],
            ],
        )
        + "EVC,B1,NYC,R1,2023-06-08 09:00:00,IN,GRANTED,Main Lob"
    )  # cut inside door_name
    comp = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    data = comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)  # no end of stream
    p = root / "badge" / "events" / "2023-06-08" / "NYC.csv.gz"
    p.parent.mkdir(parents=True)
    p.write_bytes(data)
    src = load_sources(root)
    assert src.skipped == {"badge/events/2023-06-08/NYC.csv.gz": 1}
    assert sorted(src.events.event_id)[-2:] == ["EVA", "EVB"]
    assert weekly_row(compute_marts(root), "E1", "2023-06-05").office_days == 3


def test_row_that_is_not_utf8_is_skipped(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        events=[ev("B1", "2023-06-05 09:00:00")],
    )
    body = _csv_text(
        EV_HEADER, [["EVA", "B1", "NYC", "R1", "2023-06-06 09:00:00", "IN", "GRANTED"]]
    ).encode()
    body += b"EVB,B1,NYC,R1\xff\xfe,2023-06-07 09:00:00,IN,GRANTED\n"
    p = root / "badge" / "events" / "2023-06-06" / "NYC.csv.gz"
    p.parent.mkdir(parents=True)
    p.write_bytes(gzip.compress(body))
    assert load_sources(root).skipped == {"badge/events/2023-06-06/NYC.csv.gz": 1}
    assert weekly_row(compute_marts(root), "E1", "2023-06-05").office_days == 2


def test_min_presence_minutes_dst_readings(tmp_path):
    # Cairo springs forward on Fri 2023-04-28 at 00:00 -> 01:00. Local 00:30 does not exist:
    # moved forward by the gap it is 01:30 EEST (22:30Z), so 00:30 -> 01:45 is 15 minutes.
    # Cairo falls back on Thu 2023-10-26 at 24:00 -> 23:00: 23:10 is ambiguous, taken as
    # its first occurrence (EEST, 20:10Z): 22:45 -> 23:10 is 25 minutes (85 with fold=1).
    pols = [
        {
            "policy_id": "p_min",
            "name": "x",
            "kind": "weekly_days",
            "effective_from": date(2023, 1, 1),
            "effective_to": None,
            "required_days_per_week": 1,
            "min_presence_minutes": 30,
        }
    ]
    root = make_root(
        tmp_path,
        hr_date="2023-10-29",
        employees=[emp("E1", country="EG")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        events=[
            ev("B1", "2023-04-24 09:00:00", site="CAI"),
            ev("B1", "2023-04-28 00:30:00", site="CAI"),
            ev("B1", "2023-04-28 01:45:00", site="CAI"),
            ev("B1", "2023-04-27 09:00:00", site="CAI"),
            ev("B1", "2023-04-27 09:29:59", site="CAI"),
            ev("B1", "2023-10-23 09:00:00", site="CAI"),
            ev("B1", "2023-10-23 09:30:00", site="CAI"),  # exactly 30 min: office day
            ev("B1", "2023-10-26 22:45:00", site="CAI"),  # EEST: 19:45Z
            ev("B1", "2023-10-26 23:10:00", site="CAI"),
        ],
    )  # ambiguous, first: 20:10Z
    m = compute_marts(root, policies=pols)
    r = weekly_row(m, "E1", "2023-04-24")
    # Mon: one event (0 min) -> no; Thu: 29:59 -> no; Fri: 15 min -> no
    assert (r.office_days, r.required_days, r.policy_id) == (0, 1, "p_min")
    assert weekly_row(m, "E1", "2023-10-23").office_days == 1
    # without min_presence those are office days
    assert (
        weekly_row(
            compute_marts(root, policies=[dict(pols[0], min_presence_minutes=None)]),
            "E1",
            "2023-04-24",
        ).office_days
        == 3
    )


def test_weeks_coverage_and_org_unit_of_week(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-24",  # Saturday: week of 06-19 is not complete
        employees=[
            emp("E1", term="2023-06-08", reason="retirement"),
            emp("E2", hire="2023-06-10"),  # Saturday hire
            emp("C1", worker_type="contractor"),
        ],
        job_history=[
            job("E1"),
            job("E1", eff="2023-06-06", ou="OU5", event="transfer"),
            job("E1", eff="2023-06-08", ou="OU6", event="termination"),
            job("E2", eff="2023-06-10"),
            job("C1"),
        ],
        badges=[badge("B1", "E1"), badge("BC", "C1", btype="CONTRACTOR")],
        events=[ev("B1", "2023-05-31 09:00:00"), ev("BC", "2023-06-01 09:00:00")],
    )
    m = compute_marts(root)
    w = m["fct_rto_compliance_weekly"]
    assert load_sources(root).coverage_start == date(2023, 6, 5)
    assert list(zip(w.employee_id, w.week_start, strict=True)) == [
        ("E1", date(2023, 6, 5)),
        ("E2", date(2023, 6, 5)),
        ("E2", date(2023, 6, 12)),
    ]
    e1 = weekly_row(m, "E1", "2023-06-05")
    # employed Mon-Wed: (9+4)//5 = 2, org unit on Wed = OU5
    assert (e1.available_days, e1.required_days, e1.org_unit_id) == (3, 2, "OU5")
    e2 = weekly_row(m, "E2", "2023-06-05")
    assert (e2.available_days, e2.required_days, e2.status) == (0, 0, "no_requirement")


# ---------------------------------------------------------------- promotion gate


def _gate_root(tmp_path, nominations, approvals, n_compliant_weeks, exceptions=()):
    # coverage 2023-08-07 .. 2023-11-26; lookback for week of 2023-11-20 is
    # 2023-08-21 .. 2023-11-19 (13 weeks). Employee E1 swipes 3 days in the first
    # n_compliant_weeks of those 13 weeks; E2 never swipes.
    events = [ev("B1", "2023-08-07 09:00:00")]
    start = date(2023, 8, 21)
    for k in range(n_compliant_weeks):
        mon = start + timedelta(days=7 * k)
        for i in (1, 2, 3):  # Tue-Thu
            events.append(ev("B1", f"{(mon + timedelta(days=i)).isoformat()} 09:00:00"))
    return make_root(
        tmp_path,
        hr_date="2023-11-26",
        employees=[emp("E1"), emp("E2"), emp("V9"), emp("V10")],
        job_history=[
            job("E1"),
            job("E2"),
            job("V9", level=9, ou="OU2"),
            job("V10", level=9, ou="OU2"),
            job("V10", eff="2023-11-01", level=10, ou="OU2", event="promotion"),
        ],
        nominations=nominations,
        approvals=approvals,
        exceptions=exceptions,
        badges=[badge("B1", "E1")],
        events=events,
    )


def nom(nid, eid, on, decided=None, outcome="pending"):
    return {
        "nomination_id": nid,
        "cycle_id": "C2023H2",
        "employee_id": eid,
        "from_level": 6,
        "to_level": 7,
        "nominated_on": on,
        "decided_on": decided,
        "outcome": outcome,
    }


def appr(aid, nid, who, on):
    return {"approval_id": aid, "nomination_id": nid, "approver_id": who, "approved_on": on}


def gate_row(m, nid):
    g = m["fct_promotion_gate"]
    sel = g[g.nomination_id == nid]
    assert len(sel) == 1
    return sel.iloc[0]


def test_gate_level9_approval_is_invalid(tmp_path):
    noms = [
        nom("N1", "E2", "2023-11-22", "2023-11-24", "not_promoted"),
        nom("N2", "E2", "2023-11-22", "2023-11-24", "promoted"),
        nom("N3", "E2", "2023-11-22", "2023-11-24", "promoted"),
        nom("N5", "E2", "2023-11-22", "2023-11-24", "not_promoted"),
    ]
    apprs = [
        appr("A1", "N1", "V9", "2023-11-23"),
        appr("A2", "N2", "V9", "2023-11-23"),
        appr("A3", "N3", "V10", "2023-10-20"),  # V10 still level 9 then: invalid
        appr("A4", "N3", "V10", "2023-11-25"),  # after decided_on: invalid
        appr("A5", "N3", "V10", "2023-11-23"),  # valid
        appr("A6", "N5", "V10", "2023-11-25"),
    ]  # level 10 but after decided_on
    m = compute_marts(_gate_root(tmp_path, noms, apprs, 0))
    n1 = gate_row(m, "N1")
    assert n1.lookback_start == date(2023, 8, 21) and n1.lookback_end == date(2023, 11, 19)
    assert (n1.weeks_required, n1.weeks_compliant, n1.compliance_rate) == (13, 0, 0.0)
    assert n1.gate_applies and n1.gate_status == "blocked"
    assert (n1.approval_id, n1.approval_valid, n1.audit_flag) == ("A1", False, "invalid_approval")
    n2 = gate_row(m, "N2")
    assert (n2.gate_status, n2.audit_flag) == ("blocked", "promoted_while_blocked")
    n3 = gate_row(m, "N3")
    assert (n3.gate_status, n3.approval_id, n3.approval_valid, n3.audit_flag) == (
        "eligible_vp_approved",
        "A5",
        True,
        None,
    )
    n5 = gate_row(m, "N5")
    assert (n5.gate_status, n5.approval_id, n5.approval_valid, n5.audit_flag) == (
        "blocked",
        "A6",
        False,
        "invalid_approval",
    )


def test_gate_threshold_and_not_gated(tmp_path):
    noms = [
        nom("N1", "E1", "2023-11-22"),  # 12/13 = 0.923 -> eligible
        nom("N2", "E1", "2023-11-15", "2023-11-17", "promoted"),  # before the gate
        nom("N3", "E1", "2023-08-09"),  # no weeks in lookback -> null rate
        nom("N4", "E2", "2023-11-16"),
    ]  # gate day itself, rate 0, pending
    apprs = [appr("A9", "N4", "V10", "2024-01-05")]  # pending: any time, level 10: valid
    m = compute_marts(_gate_root(tmp_path, noms, apprs, 12))
    n1 = gate_row(m, "N1")
    assert (n1.weeks_required, n1.weeks_compliant) == (13, 12)
    assert n1.compliance_rate == pytest.approx(12 / 13) and n1.gate_status == "eligible"
    assert n1.approval_id is None and n1.approval_valid is None and n1.audit_flag is None
    n2 = gate_row(m, "N2")
    assert (bool(n2.gate_applies), n2.gate_status) == (False, "not_gated")
    # N2's lookback is 2023-08-14 .. 2023-11-12: 12 compliant weeks (08-21..11-06) + 1 blank
    assert (n2.weeks_required, n2.weeks_compliant) == (13, 12)
    n3 = gate_row(m, "N3")
    assert n3.weeks_required == 0 and math.isnan(n3.compliance_rate)
    assert n3.gate_status == "not_gated"
    n4 = gate_row(m, "N4")
    assert (n4.gate_status, n4.approval_valid) == ("eligible_vp_approved", True)


def test_gate_rate_exactly_at_threshold_is_eligible(tmp_path):
    # A 0-day employee exception makes 08-21, 08-28, 09-04 no_requirement: 10 weeks remain
    # in the lookback 08-21..11-13, of which 09-11..11-06 (9) are compliant -> 0.9.
    exc = [
        {
            "exception_id": "X1",
            "scope": "employee",
            "subject_id": "E1",
            "required_days_per_week": 0,
            "reason": "r",
            "approved_by": "V10",
            "valid_from": "2023-08-21",
            "valid_to": "2023-09-11",
        }
    ]
    m = compute_marts(_gate_root(tmp_path, [nom("N1", "E1", "2023-11-22")], [], 12, exc))
    n1 = gate_row(m, "N1")
    assert (n1.weeks_required, n1.weeks_compliant, n1.compliance_rate, n1.gate_status) == (
        10,
        9,
        0.9,
        "eligible",
    )


def test_gate_eleven_of_thirteen_is_blocked(tmp_path):
    m = compute_marts(_gate_root(tmp_path, [nom("N1", "E1", "2023-11-24")], [], 11))
    n1 = gate_row(m, "N1")
    assert (n1.weeks_required, n1.weeks_compliant, n1.gate_status, n1.audit_flag) == (
        13,
        11,
        "blocked",
        None,
    )


# ---------------------------------------------------------------- exits and attrition


def _exit_root(tmp_path):
    employees = [
        emp("E1", term="2023-07-14", reason="voluntary_resignation"),  # RIF separated
        emp("E2", term="2023-07-20", reason="voluntary_resignation"),  # rescinded notice
        emp("E3", term="2023-07-05", reason="layoff"),  # rescinded, HR says layoff
        emp("E4", term="2023-07-03", reason="retirement"),
        emp("E5", hire="2023-07-10"),
        emp("E6"),
        emp("E7", term="2023-09-01", reason="voluntary_resignation"),  # after as_of
        emp("E8", term="2023-05-15", reason="involuntary_other"),  # notice still notified
        emp("E9", term="2023-07-01", reason="voluntary_resignation"),  # leaves on the 1st
    ]
    jobs = [job(e) for e in ("E1", "E2", "E3", "E4", "E6", "E7", "E8", "E9")] + [
        job("E2", eff="2023-07-20", ou="OU6", event="termination"),
        job("E1", eff="2023-06-01", level=7, ou="OU6", event="promotion"),
        job("E5", eff="2023-07-10", ou="OU6"),
    ]
    events = [ev("B1", "2023-05-29 09:00:00")]
    # E1 compliant every week from 05-29 to 06-26 (5 weeks), E2 never
    for k in range(5):
        mon = date(2023, 5, 29) + timedelta(days=7 * k)
        for i in (1, 2, 3):
            events.append(ev("B1", f"{(mon + timedelta(days=i)).isoformat()} 09:00:00"))
    rif = [
        (
            "2023-06-20",
            [["R1", "Round 1", "2023-06-15", "OU1", "10"]],
            [
                ["N1", "R1", "E1", "2023-06-20", "2023-07-14", "notified"],
                ["N2", "R1", "E2", "2023-06-20", "2023-07-20", "notified"],
                ["N3", "R1", "E3", "2023-06-20", "2023-07-05", "notified"],
                ["N4", "R1", "E8", "2023-05-01", "2023-05-15", "notified"],
            ],
        ),
        (
            "2023-07-15",
            [],
            [
                ["N1", "R1", "E1", "2023-06-21", "2023-07-14", "separated"],
                ["N2", "R1", "E2", "2023-06-20", "", "rescinded"],
                ["N3", "R1", "E3", "2023-06-20", "", "rescinded"],
            ],
        ),
    ]
    return make_root(
        tmp_path,
        hr_date="2023-08-06",
        employees=employees,
        job_history=jobs,
        badges=[badge("B1", "E1")],
        events=events,
        rif_deliveries=rif,
    )


def test_exits_types_rif_wins_and_rescinded(tmp_path):
    m = compute_marts(_exit_root(tmp_path))
    x = m["fct_exits"].set_index("employee_id")
    assert list(x.index) == ["E1", "E2", "E3", "E4", "E8", "E9"]
    e1 = x.loc["E1"]
    assert (e1.exit_type, e1.rif_round_id, e1.notice_date, e1.exit_date) == (
        "layoff",
        "R1",
        date(2023, 6, 21),
        date(2023, 7, 14),
    )
    # 13 weeks before the week of 2023-06-19: covered weeks 05-29, 06-05, 06-12 -> 3/3
    assert e1.compliance_rate_13w == 1.0
    assert (e1.policy_id, e1.org_unit_id, e1.job_level) == ("three_days", "OU6", 7)
    e2 = x.loc["E2"]
    assert (e2.exit_type, e2.rif_round_id, e2.notice_date) == ("voluntary", None, date(2023, 7, 20))
    # org unit as of 07-19 (the termination row of 07-20 is not used)
    assert e2.org_unit_id == "OU4" and e2.job_level == 6
    # weeks 04-17..07-10 -> covered 05-29..07-10: 7 weeks, none compliant
    assert e2.compliance_rate_13w == 0.0
    assert x.loc["E3"].exit_type == "involuntary"
    assert x.loc["E4"].exit_type == "voluntary"
    e4 = x.loc["E4"]
    assert e4.notice_date == date(2023, 7, 3) and e4.compliance_rate_13w == 0.0
    e8 = x.loc["E8"]  # a notice that never reached `separated` is not a layoff
    assert (e8.exit_type, e8.rif_round_id, e8.notice_date) == (
        "involuntary",
        None,
        date(2023, 5, 15),
    )
    assert math.isnan(e8.compliance_rate_13w) and e8.policy_id == "three_days"
    assert x.loc["E9"].compliance_rate_13w == 0.0  # weeks 05-29..06-19


def test_attrition_monthly(tmp_path):
    m = compute_marts(_exit_root(tmp_path))
    a = m["fct_attrition_monthly"]
    assert list(a.columns) == MART_COLUMNS["fct_attrition_monthly"]
    assert a.headcount_start.dtype == "int64"
    # coverage_start 2023-05-29, as_of 2023-08-06: complete months June and July
    got = {
        (r.month_start, r.department_id, r.compliance_band): (
            r.headcount_start,
            r.headcount_end,
            r.hires,
            r.exits_voluntary,
            r.exits_involuntary,
            r.exits_layoff,
            None if math.isnan(r.attrition_rate) else r.attrition_rate,
        )
        for r in a.itertuples()
    }
    jun, jul = date(2023, 6, 1), date(2023, 7, 1)
    # June: no covered week before the week of 06-01 -> everyone no_requirement.
    # E1 is in OU6 (Dept B) from 06-01; E2, E3, E4, E6, E7, E9 in OU4 -> Dept A (OU3).
    # (E8 left before coverage and counts nowhere.)
    # July (band from weeks 05-29..06-19): E1 4/4 compliant -> high; the others 0/4 -> low.
    # E5 is hired 07-10 into OU6 (no_requirement). Exits: E1 layoff (OU6), E2 and E4
    # voluntary, E3 involuntary (OU3). End of July: E6, E7 in OU3, E5 in OU6.
    # E9 leaves on 07-01: not employed at the month start -> no_requirement, rate null.
    assert got == {
        (jun, "OU3", "no_requirement"): (6, 6, 0, 0, 0, 0, 0.0),
        (jun, "OU6", "no_requirement"): (1, 1, 0, 0, 0, 0, 0.0),
        (jul, "OU3", "low"): (5, 2, 0, 2, 1, 0, 3 / 3.5),
        (jul, "OU6", "high"): (1, 0, 0, 0, 0, 1, 2.0),
        (jul, "OU6", "no_requirement"): (0, 1, 1, 0, 0, 0, 0.0),
        (jul, "OU3", "no_requirement"): (0, 0, 0, 1, 0, 0, None),
    }
    assert list(zip(a.month_start, a.department_id, a.compliance_band, strict=True)) == sorted(got)


def test_compliance_band_boundaries(tmp_path):
    # coverage 2023-05-01 .. as_of 2023-09-03; band at 2023-08-01 from weeks 05-01..07-24.
    # 0-day exceptions make 05-01, 05-08, 05-15 no_requirement for E1-E3: 10 weeks remain
    # (05-22..07-24). E1 compliant in 9 -> 0.9 high; E2 in 5 -> 0.5 medium; E3 in 4 -> low;
    # E4 never (13 weeks) -> low; E5 has a permanent 0-day exception -> no_requirement.
    exc = [
        {
            "exception_id": f"X{e}",
            "scope": "employee",
            "subject_id": e,
            "required_days_per_week": 0,
            "reason": "r",
            "approved_by": None,
            "valid_from": "2023-05-01",
            "valid_to": "2023-05-22",
        }
        for e in ("E1", "E2", "E3")
    ]
    exc.append(
        {
            "exception_id": "X5",
            "scope": "employee",
            "subject_id": "E5",
            "required_days_per_week": 0,
            "reason": "r",
            "approved_by": None,
            "valid_from": "2023-01-01",
            "valid_to": None,
        }
    )
    events = [ev("B4", "2023-05-01 09:00:00")]
    for eid, n in (("E1", 9), ("E2", 5), ("E3", 4)):
        for k in range(n):
            mon = date(2023, 5, 22) + timedelta(days=7 * k)
            events += [
                ev(f"B{eid[1:]}", f"{(mon + timedelta(days=i)).isoformat()} 09:00:00")
                for i in (1, 2, 3)
            ]
    ids = ["E1", "E2", "E3", "E4", "E5"]
    root = make_root(
        tmp_path,
        hr_date="2023-09-03",
        employees=[emp(e) for e in ids] + [emp("E6", hire="2023-08-01")],
        job_history=[job(e) for e in ids] + [job("E6", eff="2023-08-01")],
        exceptions=exc,
        badges=[badge(f"B{e[1:]}", e) for e in ids],
        events=events,
    )
    m = compute_marts(root)
    a = m["fct_attrition_monthly"]
    assert sorted(set(a.month_start)) == [
        date(2023, 5, 1),
        date(2023, 6, 1),
        date(2023, 7, 1),
        date(2023, 8, 1),
    ]
    aug = a[a.month_start == date(2023, 8, 1)]
    got = {
        r.compliance_band: (
            r.department_id,
            r.headcount_start,
            r.headcount_end,
            r.hires,
            r.attrition_rate,
        )
        for r in aug.itertuples()
    }
    # E6 is hired on the month start itself: in headcount_start, hires and headcount_end
    assert got == {
        "high": ("OU3", 1, 1, 0, 0.0),
        "medium": ("OU3", 1, 1, 0, 0.0),
        "low": ("OU3", 2, 2, 0, 0.0),
        "no_requirement": ("OU3", 2, 2, 1, 0.0),
    }
    assert list(aug.compliance_band) == ["high", "low", "medium", "no_requirement"]
    assert weekly_row(m, "E5", "2023-07-24").has_exception


def test_newest_hr_snapshot_and_assignment_snapshot_win(tmp_path):
    root = make_root(
        tmp_path,
        hr_date="2023-06-11",
        employees=[emp("E1")],
        job_history=[job("E1")],
        badges=[badge("B1", "E1")],
        events=[ev("B1", "2023-06-05 09:00:00"), ev("B2", "2023-06-06 09:00:00")],
    )
    # an older snapshot with another employee and another badge: ignored
    _jsonl(root / "hr" / "2023-06-01" / "employees.jsonl", [emp("E1"), emp("E8")])
    _csv(
        root / "badge" / "assignments" / "2023-06-01.csv.gz",
        ["badge_id", "employee_id", "badge_type", "valid_from", "valid_to"],
        [badge("B1", "E1"), badge("B2", "E1")],
        gz=True,
    )
    m = compute_marts(root)
    w = m["fct_rto_compliance_weekly"]
    assert list(w.employee_id) == ["E1"]
    assert w.office_days.iloc[0] == 1


def test_300_employees_over_six_months_give_one_row_per_employee_week(tmp_path):
    import random

    rnd = random.Random(7)
    n = 300
    employees = [emp(f"E{i:04d}") for i in range(n)]
    jobs = [job(f"E{i:04d}", ou=rnd.choice(["OU4", "OU5", "OU6"])) for i in range(n)]
    badges = [badge(f"B{i:04d}", f"E{i:04d}") for i in range(n)]
    files: dict[tuple[str, str], list] = {}
    d0 = date(2023, 5, 1)
    for k in range(182):
        d = d0 + timedelta(days=k)
        if d.weekday() >= 5:
            continue
        rows = []
        for i in range(n):
            if rnd.random() < 0.6:
                rows.append(ev(f"B{i:04d}", f"{d.isoformat()} 08:{rnd.randint(10, 59)}:00"))
                rows.append(
                    ev(f"B{i:04d}", f"{d.isoformat()} 17:{rnd.randint(10, 59)}:00", direction="OUT")
                )
        files[(d.isoformat(), "NYC")] = rows
    root = make_root(
        tmp_path,
        hr_date="2023-10-31",
        employees=employees,
        job_history=jobs,
        badges=badges,
        event_files=files,
    )
    # speed is measured by bench/, not here: this checks the oracle at a larger size
    m = compute_marts(root)
    assert len(m["fct_rto_compliance_weekly"]) == n * 26
    assert isinstance(m["fct_rto_compliance_weekly"], pd.DataFrame)
