"""The peer approach: ``fct_rto_compliance_weekly`` written by hand in pandas.

What a team without a warehouse would write from the landed files: read the
newest HR snapshot and badge assignment file, every badge event file, and the
policy timeline (the dbt seed CSV), then build an employee x working-day frame
and aggregate it per ISO week. Vectorised pandas throughout, no DuckDB, no
project code. It follows DOMAIN.md and the readings of docs/DESIGN.md for the
default policy timeline; ``min_presence_minutes`` (null in the default seed)
is not implemented, and the script refuses a timeline that sets it.

    python bench/pandas_peer.py --root <landing zone> --out weekly.parquet

Clean deliveries are assumed (the benchmark's simulated data has no
delivery quirks): no quarantine, every row parses.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEEDS = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds"
DAY = np.timedelta64(1, "D")
US = "datetime64[us]"  # one resolution for every date and time column: merge keys must match


def newest(root: Path, pattern: str) -> Path:
    """The file of the newest dated delivery (``<YYYY-MM-DD>`` sorts as text)."""
    found = sorted(glob.glob(str(root / pattern)))
    if not found:
        raise FileNotFoundError(f"no file matches {pattern} under {root}")
    return Path(found[-1])


def read_jsonl(path: Path, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.read_json(path, lines=True, dtype=False)
    df["_line"] = np.arange(len(df))
    for col in dates:
        df[col] = pd.to_datetime(df[col]).astype(US)
    return df


def read_events(root: Path) -> pd.DataFrame:
    """Every badge event file, GRANTED rows only, one row per event id."""
    frames = []
    for path in sorted(glob.glob(str(root / "badge" / "events" / "*" / "*.csv.gz"))):
        df = pd.read_csv(
            path,
            usecols=["event_id", "badge_id", "event_time", "result"],
            dtype={"event_id": str, "badge_id": str, "result": str},
        )
        frames.append(df.loc[df["result"] == "GRANTED", ["event_id", "badge_id", "event_time"]])
    ev = pd.concat(frames, ignore_index=True)
    ev["event_time"] = pd.to_datetime(ev["event_time"], format="%Y-%m-%d %H:%M:%S").astype(US)
    return ev.drop_duplicates("event_id")


def office_days(root: Path, assignments: pd.DataFrame) -> pd.DataFrame:
    """(employee_id, day) with at least one counting event."""
    ev = read_events(root)
    asg = assignments.loc[
        (assignments["badge_type"] == "EMPLOYEE") & assignments["employee_id"].notna(),
        ["badge_id", "employee_id", "valid_from", "valid_to"],
    ]
    m = ev.merge(asg, on="badge_id")
    t = m["event_time"]
    ok = (m["valid_from"].isna() | (m["valid_from"] <= t)) & (
        m["valid_to"].isna() | (t < m["valid_to"])
    )
    m = m.loc[ok]
    out = pd.DataFrame({"employee_id": m["employee_id"], "day": t[ok].dt.normalize()})
    return out.drop_duplicates().assign(office=1)


def explode_days(df: pd.DataFrame, start: str, end: str, lo, hi, inclusive_end: bool):
    """One row per day of each [start, end) (or [start, end]) interval, clipped to [lo, hi]."""
    s = df[start].fillna(lo).clip(lower=lo)
    e = df[end].fillna(hi + DAY)
    if inclusive_end:
        e = e + DAY
    e = e.clip(upper=hi + DAY)
    n = ((e - s) / DAY).astype("int64").clip(lower=0)
    rep = df.iloc[np.repeat(np.arange(len(df)), n)].reset_index(drop=True)
    offsets = np.concatenate([np.arange(k) for k in n]) if len(n) else np.array([], "int64")
    rep["day"] = (np.repeat(s.to_numpy(), n) + offsets.astype("timedelta64[D]")).astype(US)
    return rep


def pick_newest(df: pd.DataFrame, keys: list[str], id_col: str | None) -> pd.DataFrame:
    """Several valid on a day: newest valid_from, then greatest id (or later line)."""
    order = ["valid_from", id_col or "_line"]
    df = df.assign(valid_from=df["valid_from"].fillna(pd.Timestamp("1900-01-01")))
    return df.sort_values(keys + order).drop_duplicates(keys, keep="last")


def weekly(root: Path) -> pd.DataFrame:
    hr = newest(root, "hr/*/employees.jsonl").parent
    as_of = pd.Timestamp(hr.name)
    policies = pd.read_csv(SEEDS / "rto_policies.csv")
    for col in ("effective_from", "effective_to"):
        policies[col] = pd.to_datetime(policies[col]).astype(US)
    if policies["min_presence_minutes"].notna().any():
        raise SystemExit("this peer does not implement min_presence_minutes")
    employees = read_jsonl(hr / "employees.jsonl", ("hire_date", "termination_date"))
    employees = employees.drop_duplicates("employee_id")
    employees = employees.loc[
        (employees["worker_type"] == "employee") & employees["hire_date"].notna()
    ]
    jobs = read_jsonl(hr / "job_history.jsonl", ("effective_date",))
    org = read_jsonl(hr / "org_units.jsonl").drop_duplicates("org_unit_id")
    holidays = read_jsonl(hr / "holidays.jsonl", ("date",))
    leave = read_jsonl(hr / "leave.jsonl", ("start_date", "end_date"))
    exceptions = read_jsonl(hr / "exceptions.jsonl", ("valid_from", "valid_to"))
    team = read_jsonl(hr / "team_policies.jsonl", ("valid_from", "valid_to"))
    assignments = pd.read_csv(
        newest(root, "badge/assignments/*.csv.gz"),
        dtype=str,
        keep_default_na=False,
        na_values=[""],
    )
    for col in ("valid_from", "valid_to"):
        assignments[col] = pd.to_datetime(assignments[col], format="mixed").astype(US)

    office = office_days(root, assignments)
    first_event = office["day"].min() if len(office) else None
    # coverage: the first Monday on or after the earliest badge event date
    first_any = read_first_event_day(root)
    coverage = first_any + pd.Timedelta(days=(7 - first_any.weekday()) % 7)
    weeks = pd.date_range(coverage, as_of - pd.Timedelta(days=6), freq="7D")
    del first_event
    if not len(weeks):
        return empty_frame()
    lo, hi = weeks[0], weeks[-1] + pd.Timedelta(days=6)

    # employee x week: every week with at least one employed day
    emp = employees[["employee_id", "hire_date", "termination_date", "country"]]
    last_day = (emp["termination_date"] - DAY).fillna(hi).clip(upper=hi)
    first_day = emp["hire_date"].clip(lower=lo)
    ew = emp.assign(first=first_day, last=last_day).loc[lambda d: d["first"] <= d["last"]]
    wk_first = ew["first"] - pd.to_timedelta(ew["first"].dt.day_of_week, unit="D")
    n = ((ew["last"] - wk_first) / pd.Timedelta(days=7)).astype("int64") + 1
    rows = ew.iloc[np.repeat(np.arange(len(ew)), n)].reset_index(drop=True)
    rows["week_start"] = np.repeat(wk_first.to_numpy(), n) + (
        np.concatenate([np.arange(k) for k in n]) * 7
    ).astype("timedelta64[D]")
    rows["week_start"] = rows["week_start"].astype(US)
    rows = rows.loc[(rows["week_start"] >= lo) & (rows["week_start"] <= weeks[-1])]
    rows["week_last_employed"] = np.minimum(rows["week_start"] + pd.Timedelta(days=6), rows["last"])

    # employee x available day
    days = rows.iloc[np.repeat(np.arange(len(rows)), 5)].reset_index(drop=True)
    days["day"] = days["week_start"] + pd.to_timedelta(np.tile(np.arange(5), len(rows)), unit="D")
    days["day"] = days["day"].astype(US)
    days = days.loc[(days["day"] >= days["hire_date"]) & (days["day"] <= days["last"])]
    hol = holidays[["country", "date"]].drop_duplicates().assign(holiday=1)
    days = days.merge(hol, left_on=["country", "day"], right_on=["country", "date"], how="left")
    days = days.loc[days["holiday"].isna()].drop(columns=["date", "holiday"])
    lv = explode_days(leave, "start_date", "end_date", lo, hi, inclusive_end=True)
    lv = lv[["employee_id", "day"]].drop_duplicates().assign(on_leave=1)
    days = days.merge(lv, on=["employee_id", "day"], how="left")
    days = days.loc[days["on_leave"].isna()].drop(columns=["on_leave"])

    # org unit on each day (newest job_history row with effective_date <= day)
    jobs = jobs.loc[jobs["employee_id"].notna() & jobs["effective_date"].notna()]
    jobs = jobs.sort_values(["effective_date", "_line"])
    days = days.sort_values("day")
    days = pd.merge_asof(
        days,
        jobs[["employee_id", "effective_date", "org_unit_id"]],
        left_on="day",
        right_on="effective_date",
        by="employee_id",
    )

    # company policy on each day
    pol = policies.sort_values("effective_from")
    days = pd.merge_asof(
        days,
        pol[["effective_from", "effective_to", "policy_id", "kind", "required_days_per_week"]],
        left_on="day",
        right_on="effective_from",
    )
    gone = days["effective_to"].notna() & (days["day"] >= days["effective_to"])
    days.loc[gone, ["policy_id", "kind", "required_days_per_week"]] = np.nan

    # exceptions and team policies, resolved per (subject, day)
    exc = exceptions.loc[
        exceptions["required_days_per_week"].notna() & exceptions["subject_id"].notna()
    ]
    emp_exc = explode_days(
        exc.loc[exc["scope"] == "employee"], "valid_from", "valid_to", lo, hi, False
    )
    emp_exc = pick_newest(emp_exc, ["subject_id", "day"], "exception_id")
    ou_exc = explode_days(
        exc.loc[exc["scope"] == "org_unit"], "valid_from", "valid_to", lo, hi, False
    )
    ou_exc = pick_newest(ou_exc, ["subject_id", "day"], "exception_id")
    tp = team.loc[team["required_days_per_week"].notna() & team["org_unit_id"].notna()]
    tp = explode_days(tp, "valid_from", "valid_to", lo, hi, False)
    tp = pick_newest(tp.rename(columns={"org_unit_id": "subject_id"}), ["subject_id", "day"], None)

    days = days.merge(
        emp_exc[["subject_id", "day", "required_days_per_week"]].rename(
            columns={"subject_id": "employee_id", "required_days_per_week": "emp_exc"}
        ),
        on=["employee_id", "day"],
        how="left",
    )
    days["ou_exc"] = np.nan
    days["team"] = np.nan
    parent = org.set_index("org_unit_id")["parent_id"]
    level = days["org_unit_id"]
    ou_exc_s = ou_exc.set_index(["subject_id", "day"])["required_days_per_week"]
    tp_s = tp.set_index(["subject_id", "day"])["required_days_per_week"]
    for _ in range(len(org) + 1):  # self, then ancestors, nearest first
        if level.isna().all():
            break
        key = pd.MultiIndex.from_arrays([level, days["day"]])
        days["ou_exc"] = days["ou_exc"].fillna(
            pd.Series(ou_exc_s.reindex(key).to_numpy(), days.index)
        )
        days["team"] = days["team"].fillna(pd.Series(tp_s.reindex(key).to_numpy(), days.index))
        level = level.map(parent)

    has_policy = days["policy_id"].notna()
    company = np.where(
        days["kind"] == "weekly_days",
        days["required_days_per_week"].fillna(0),
        np.where(days["kind"] == "director_discretion", days["team"].fillna(0), 0),
    )
    from_exc = has_policy & (days["emp_exc"].notna() | days["ou_exc"].notna())
    req = days["emp_exc"].fillna(days["ou_exc"]).fillna(pd.Series(company, days.index))
    days["req"] = np.where(has_policy, req, 0).astype("int64")
    days["from_exc"] = from_exc
    days = days.merge(office, on=["employee_id", "day"], how="left")
    days["office"] = days["office"].fillna(0).astype("int64")

    agg = days.groupby(["employee_id", "week_start"], sort=False).agg(
        available_days=("day", "size"),
        req_sum=("req", "sum"),
        office_days=("office", "sum"),
        has_exception=("from_exc", "any"),
    )
    out = rows[["employee_id", "week_start", "week_last_employed"]].merge(
        agg.reset_index(), on=["employee_id", "week_start"], how="left"
    )
    for col in ("available_days", "req_sum", "office_days"):
        out[col] = out[col].fillna(0).astype("int64")
    out["has_exception"] = out["has_exception"].fillna(False).astype(bool)
    out["required_days"] = (out["req_sum"] + 4) // 5
    out["status"] = np.where(
        out["required_days"] == 0,
        "no_requirement",
        np.where(out["office_days"] >= out["required_days"], "compliant", "non_compliant"),
    )
    # org unit on the last employed day of the week; policy in force on the Friday
    out["week_last_employed"] = out["week_last_employed"].astype(US)
    out = out.sort_values("week_last_employed")
    out = pd.merge_asof(
        out,
        jobs[["employee_id", "effective_date", "org_unit_id"]],
        left_on="week_last_employed",
        right_on="effective_date",
        by="employee_id",
    )
    out["friday"] = (out["week_start"] + pd.Timedelta(days=4)).astype(US)
    out = pd.merge_asof(
        out.sort_values("friday"),
        pol[["effective_from", "effective_to", "policy_id"]],
        left_on="friday",
        right_on="effective_from",
    )
    out.loc[out["effective_to"].notna() & (out["friday"] >= out["effective_to"]), "policy_id"] = (
        None
    )
    out = out[COLUMNS].sort_values(["employee_id", "week_start"], ignore_index=True)
    out["week_start"] = out["week_start"].dt.date
    return out


COLUMNS = [
    "employee_id",
    "week_start",
    "org_unit_id",
    "policy_id",
    "available_days",
    "required_days",
    "office_days",
    "status",
    "has_exception",
]


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in COLUMNS})


def read_first_event_day(root: Path) -> pd.Timestamp:
    """The earliest local date of any badge event (from the per-day folders, then the rows)."""
    folders = sorted(glob.glob(str(root / "badge" / "events" / "*")))
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(folder, "*.csv.gz"))):
            df = pd.read_csv(path, usecols=["event_time"])
            if len(df):
                return pd.to_datetime(df["event_time"]).min().normalize()
    raise SystemExit("no badge events under the root")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="landing zone (source layout)")
    parser.add_argument("--out", type=Path, required=True, help="parquet file to write")
    args = parser.parse_args(argv)
    started = time.monotonic()
    df = weekly(args.root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out, index=False)
    print(json.dumps({"rows": len(df), "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
