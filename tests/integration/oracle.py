"""Independent test oracle for the four RTO marts.

Computes ``fct_rto_compliance_weekly``, ``fct_promotion_gate``, ``fct_exits`` and
``fct_attrition_monthly`` straight from the source files (DOMAIN.md section 3), in
plain Python + pandas, following the business rules of DOMAIN.md section 2 and the
readings of docs/DESIGN.md. It imports nothing from the project and runs no SQL, so
a disagreement with the dbt marts points at a real bug on one side.

Public API
----------
``compute_marts(source_root) -> dict[str, pandas.DataFrame]``
    Keys: ``fct_rto_compliance_weekly``, ``fct_promotion_gate``, ``fct_exits``,
    ``fct_attrition_monthly``; columns exactly as DOMAIN.md section 4; each frame
    sorted by its grain.

``load_sources(source_root) -> Sources``
    The parsed sources (newest snapshots, deduplicated events, resolved layoff
    deltas), ``as_of_date``, ``coverage_start`` and ``skipped`` (rows that did not
    parse, per relative path -- what the pipeline quarantines).

Value conventions of the returned frames
- dates (week_start, nominated_on, lookback_*, exit_date, notice_date, month_start)
  are ``datetime.date`` objects (object dtype), never Timestamps;
- counts are ``int64``; rates are ``float64`` with NaN for null;
- ``has_exception`` and ``gate_applies`` are ``bool``; ``approval_valid`` is object
  dtype holding True / False / None (None = no approval);
- nullable strings (policy_id, org_unit_id, department_id, approval_id,
  audit_flag, rif_round_id) are ``None`` when null; ``job_level`` of an exit is
  ``Int64`` (nullable) because an employee may lack job history.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import json
import math
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import pandas as pd

# --------------------------------------------------------------------------------------
# Seeds (the contract's timeline, DESIGN.md "Seeds"), hard-coded on purpose.
# --------------------------------------------------------------------------------------

DEFAULT_POLICIES: list[dict[str, Any]] = [
    {
        "policy_id": "director_discretion",
        "name": "Director discretion",
        "kind": "director_discretion",
        "effective_from": date(2021, 10, 11),
        "effective_to": date(2023, 5, 1),
        "required_days_per_week": None,
        "min_presence_minutes": None,
    },
    {
        "policy_id": "three_days",
        "name": "Three days",
        "kind": "weekly_days",
        "effective_from": date(2023, 5, 1),
        "effective_to": date(2025, 1, 2),
        "required_days_per_week": 3,
        "min_presence_minutes": None,
    },
    {
        "policy_id": "five_days",
        "name": "Five days",
        "kind": "weekly_days",
        "effective_from": date(2025, 1, 2),
        "effective_to": None,
        "required_days_per_week": 5,
        "min_presence_minutes": None,
    },
]

DEFAULT_GATE: dict[str, Any] = {
    "gate_id": "rto_gate_2023",
    "effective_from": date(2023, 11, 16),
    "lookback_weeks": 13,
    "threshold": 0.90,
}

BAND_HIGH = 0.90
BAND_MEDIUM = 0.50

MART_COLUMNS: dict[str, list[str]] = {
    "fct_rto_compliance_weekly": [
        "employee_id",
        "week_start",
        "org_unit_id",
        "policy_id",
        "available_days",
        "required_days",
        "office_days",
        "status",
        "has_exception",
    ],
    "fct_promotion_gate": [
        "nomination_id",
        "cycle_id",
        "employee_id",
        "nominated_on",
        "lookback_start",
        "lookback_end",
        "weeks_required",
        "weeks_compliant",
        "compliance_rate",
        "gate_applies",
        "gate_status",
        "approval_id",
        "approval_valid",
        "outcome",
        "audit_flag",
    ],
    "fct_exits": [
        "employee_id",
        "exit_date",
        "exit_type",
        "rif_round_id",
        "notice_date",
        "compliance_rate_13w",
        "policy_id",
        "org_unit_id",
        "job_level",
    ],
    "fct_attrition_monthly": [
        "month_start",
        "department_id",
        "compliance_band",
        "headcount_start",
        "headcount_end",
        "hires",
        "exits_voluntary",
        "exits_involuntary",
        "exits_layoff",
        "attrition_rate",
    ],
}

# --------------------------------------------------------------------------------------
# Source schemas: typed columns per entity (DESIGN.md raw tables). Untyped = varchar.
# --------------------------------------------------------------------------------------

HR_TABLES: dict[str, dict[str, str]] = {
    "sites": {},
    "org_units": {},
    "employees": {"hire_date": "date", "termination_date": "date"},
    "job_history": {"effective_date": "date", "job_level": "int"},
    "leave": {"start_date": "date", "end_date": "date"},
    "holidays": {"date": "date"},
    "team_policies": {"required_days_per_week": "int", "valid_from": "date", "valid_to": "date"},
    "exceptions": {"required_days_per_week": "int", "valid_from": "date", "valid_to": "date"},
    "nominations": {
        "from_level": "int",
        "to_level": "int",
        "nominated_on": "date",
        "decided_on": "date",
    },
    "approvals": {"approved_on": "date"},
}
HR_COLUMNS: dict[str, list[str]] = {
    "sites": ["site_id", "name", "city", "country", "timezone"],
    "org_units": ["org_unit_id", "name", "parent_id", "kind", "head_employee_id"],
    "employees": [
        "employee_id",
        "full_name",
        "email",
        "hire_date",
        "termination_date",
        "termination_reason",
        "worker_type",
        "home_site_id",
        "country",
    ],
    "job_history": [
        "employee_id",
        "effective_date",
        "job_level",
        "job_family",
        "org_unit_id",
        "manager_id",
        "event",
    ],
    "leave": ["leave_id", "employee_id", "start_date", "end_date", "leave_type"],
    "holidays": ["country", "date", "name"],
    "team_policies": [
        "org_unit_id",
        "required_days_per_week",
        "decided_by",
        "valid_from",
        "valid_to",
    ],
    "exceptions": [
        "exception_id",
        "scope",
        "subject_id",
        "required_days_per_week",
        "reason",
        "approved_by",
        "valid_from",
        "valid_to",
    ],
    "nominations": [
        "nomination_id",
        "cycle_id",
        "employee_id",
        "from_level",
        "to_level",
        "nominated_on",
        "decided_on",
        "outcome",
    ],
    "approvals": ["approval_id", "nomination_id", "approver_id", "approved_on"],
}
ASSIGNMENT_TYPES = {"valid_from": "timestamp", "valid_to": "timestamp"}
ASSIGNMENT_COLUMNS = ["badge_id", "employee_id", "badge_type", "valid_from", "valid_to"]
EVENT_COLUMNS = [
    "event_id",
    "badge_id",
    "site_id",
    "reader_id",
    "event_time",
    "direction",
    "result",
]
RIF_ROUND_TYPES = {"announced_on": "date", "planned_reductions": "int"}
RIF_ROUND_COLUMNS = [
    "rif_round_id",
    "name",
    "announced_on",
    "scope_org_unit_id",
    "planned_reductions",
]
RIF_NOTICE_TYPES = {"notified_on": "date", "separation_date": "date"}
RIF_NOTICE_COLUMNS = [
    "notice_id",
    "rif_round_id",
    "employee_id",
    "notified_on",
    "separation_date",
    "status",
]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$")
_EVENT_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?$")


class _BadRow(ValueError):
    pass


def _parse_date(v: Any) -> date | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _BadRow(f"not a date: {v!r}")
    v = v.strip()
    if v == "":
        return None
    if not _DATE_RE.match(v):
        raise _BadRow(f"not a date: {v!r}")
    try:
        return date.fromisoformat(v)
    except ValueError as exc:
        raise _BadRow(str(exc)) from exc


def _parse_ts(v: Any, regex: re.Pattern[str] = _TS_RE) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _BadRow(f"not a timestamp: {v!r}")
    v = v.strip()
    if v == "":
        return None
    if not regex.match(v):
        raise _BadRow(f"not a timestamp: {v!r}")
    try:
        return datetime.fromisoformat(v)
    except ValueError as exc:
        raise _BadRow(str(exc)) from exc


def _parse_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise _BadRow(f"not an int: {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v):
            return int(v)
        raise _BadRow(f"not an int: {v!r}")
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        if re.fullmatch(r"[+-]?\d+", s):
            return int(s)
    raise _BadRow(f"not an int: {v!r}")


def _parse_str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        raise _BadRow(f"not a scalar: {v!r}")
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    return None if s == "" else s


def _typed_row(raw: dict[str, Any], columns: list[str], types: dict[str, str]) -> dict[str, Any]:
    """Type one row (missing keys = null, extra keys ignored). Raises _BadRow."""
    out: dict[str, Any] = {}
    for col in columns:
        v = raw.get(col)
        t = types.get(col)
        if t == "date":
            out[col] = _parse_date(v)
        elif t == "timestamp":
            out[col] = _parse_ts(v)
        elif t == "int":
            out[col] = _parse_int(v)
        else:
            out[col] = _parse_str(v)
    return out


# --------------------------------------------------------------------------------------
# File reading
# --------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> tuple[bytes, bool]:
    """Return (decompressed content, truncated?). A gzip cut short keeps what decodes."""
    data = path.read_bytes()
    if not path.name.endswith(".gz"):
        return data, False
    try:
        return gzip.decompress(data), False
    except (EOFError, OSError, zlib.error):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = io.BytesIO()
        try:
            out.write(d.decompress(data))
        except zlib.error:
            pass
        return out.getvalue(), True


def _text_lines(path: Path) -> tuple[list[tuple[int, str | None]], int]:
    """[(1-based line number, text or None when the line is not valid UTF-8)] and the
    number of lost fragments: the unterminated last line of a file cut short is
    incomplete, so it is dropped and counted as a bad row even if it would parse."""
    data, truncated = _read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parts = data.split(b"\n")
    lost = 0
    if parts and parts[-1] == b"":
        parts.pop()
    elif truncated and parts:
        parts.pop()
        lost = 1
    out: list[tuple[int, str | None]] = []
    for i, raw in enumerate(parts, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            out.append((i, raw.decode("utf-8")))
        except UnicodeDecodeError:
            out.append((i, None))
    return out, lost


def _read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], int]:
    """Header, [(line_number, fields)] of the well-formed rows, number of bad rows
    (not UTF-8, wrong field count, lost fragment). One physical line = one row."""
    lines, bad = _text_lines(path)
    if not lines:
        return [], [], bad
    _, head = lines[0]
    if head is None:
        return [], [], bad + sum(1 for _, t in lines[1:] if t is None or t.strip() != "")
    header = [h.strip() for h in next(csv.reader([head]))]
    good: list[tuple[int, list[str]]] = []
    for line_no, text in lines[1:]:
        if text is None:
            bad += 1
            continue
        if text.strip() == "":
            continue  # blank line
        fields = next(csv.reader([text]))
        if len(fields) != len(header):
            bad += 1
            continue
        good.append((line_no, fields))
    return header, good, bad


def _read_csv_typed(
    path: Path, columns: list[str], types: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    header, rows, bad = _read_csv_rows(path)
    out = []
    for line_no, fields in rows:
        raw = {h: (f if f != "" else None) for h, f in zip(header, fields, strict=True)}
        try:
            rec = _typed_row(raw, columns, types)
        except _BadRow:
            bad += 1
            continue
        rec["_line_number"] = line_no
        out.append(rec)
    return out, bad


def _read_jsonl_typed(
    path: Path, columns: list[str], types: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    lines, bad = _text_lines(path)
    out = []
    for line_no, line in lines:
        if line is None:
            bad += 1
            continue
        if line.strip() == "":
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise _BadRow("not an object")
            rec = _typed_row(raw, columns, types)
        except (ValueError, _BadRow):
            bad += 1
            continue
        rec["_line_number"] = line_no
        out.append(rec)
    return out, bad


def _is_date_name(name: str) -> date | None:
    try:
        return _parse_date(name)
    except _BadRow:
        return None


def _find(folder: Path, stem: str, exts: Iterable[str]) -> Path | None:
    for ext in exts:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


@dataclass
class Sources:
    hr: dict[str, list[dict[str, Any]]]
    hr_delivery: dict[str, date | None]
    assignments: list[dict[str, Any]]
    events: pd.DataFrame  # deduplicated, parsed; columns EVENT_COLUMNS (+ lineage)
    rif_rounds: dict[str, dict[str, Any]]
    rif_notices: dict[str, dict[str, Any]]
    as_of_date: date | None
    coverage_start: date | None
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def load_sources(source_root: Path | str) -> Sources:
    root = Path(source_root)
    skipped: dict[str, int] = {}

    def note(path: Path, bad: int) -> None:
        if bad:
            skipped[_rel(root, path)] = skipped.get(_rel(root, path), 0) + bad

    # ---- HR: full snapshots, newest delivery (with at least one loaded row) per table
    hr_dirs = []
    if (root / "hr").is_dir():
        for d in (root / "hr").iterdir():
            dd = _is_date_name(d.name)
            if d.is_dir() and dd is not None:
                hr_dirs.append((dd, d))
    hr_dirs.sort()
    hr: dict[str, list[dict[str, Any]]] = {}
    hr_delivery: dict[str, date | None] = {}
    delivered_dates: set[date] = set()
    for table in HR_TABLES:
        hr[table] = []
        hr_delivery[table] = None
        loaded: list[tuple[date, list[dict[str, Any]]]] = []
        for dd, d in hr_dirs:
            p = _find(d, table, (".jsonl", ".jsonl.gz"))
            if p is None:
                continue
            rows, bad = _read_jsonl_typed(p, HR_COLUMNS[table], HR_TABLES[table])
            note(p, bad)
            if rows:
                loaded.append((dd, rows))
                delivered_dates.add(dd)
        if loaded:
            dd, rows = loaded[-1]
            hr[table] = rows
            hr_delivery[table] = dd
    as_of_date = max(delivered_dates) if delivered_dates else None

    # ---- badge assignments: full snapshot, newest delivery
    assignments: list[dict[str, Any]] = []
    adir = root / "badge" / "assignments"
    if adir.is_dir():
        cands = []
        for p in adir.iterdir():
            name = p.name
            for ext in (".csv.gz", ".csv"):
                if name.endswith(ext):
                    dd = _is_date_name(name[: -len(ext)])
                    if dd is not None and p.is_file():
                        cands.append((dd, p))
        cands.sort()
        for _dd, p in cands:
            rows, bad = _read_csv_typed(p, ASSIGNMENT_COLUMNS, ASSIGNMENT_TYPES)
            note(p, bad)
            if rows:
                assignments = rows

    # ---- badge events: all deliveries; parse; dedupe by event_id keeping the first
    # in order of (delivery date, path, line)
    edir = root / "badge" / "events"
    files: list[tuple[date, str, Path]] = []
    if edir.is_dir():
        for d in edir.iterdir():
            dd = _is_date_name(d.name)
            if not d.is_dir() or dd is None:
                continue
            for p in d.iterdir():
                if p.is_file() and (p.name.endswith(".csv.gz") or p.name.endswith(".csv")):
                    files.append((dd, _rel(root, p), p))
    files.sort(key=lambda t: (t[0], t[1]))
    cols: dict[str, list[Any]] = {c: [] for c in EVENT_COLUMNS}
    lineage_path: list[str] = []
    lineage_line: list[int] = []
    lineage_delivery: list[date] = []
    for dd, rel, p in files:
        header, rows, bad = _read_csv_rows(p)
        note(p, bad)
        if not rows:
            continue
        idx = {h: i for i, h in enumerate(header)}
        for line_no, fields in rows:
            for c in EVENT_COLUMNS:
                i = idx.get(c)
                v = fields[i] if i is not None else ""
                cols[c].append(v if v != "" else None)
            lineage_path.append(rel)
            lineage_line.append(line_no)
            lineage_delivery.append(dd)
    ev = pd.DataFrame(cols, columns=EVENT_COLUMNS, dtype=object)
    ev["_source_path"] = lineage_path
    ev["_line_number"] = lineage_line
    ev["_delivery_date"] = lineage_delivery
    if len(ev):
        ts_str = ev["event_time"].astype(object)
        ok_fmt = ts_str.map(lambda s: isinstance(s, str) and bool(_EVENT_TS_RE.match(s.strip())))
        parsed = pd.to_datetime(
            ts_str.where(ok_fmt).str.strip().str.replace("T", " "),
            format="ISO8601",
            errors="coerce",
        )
        good = parsed.notna() & ev["event_id"].notna()
        for path, n in ev.loc[~good, "_source_path"].value_counts().items():
            skipped[path] = skipped.get(path, 0) + int(n)
        ev = ev.loc[good].copy()
        ev["event_time"] = parsed[good].astype("datetime64[us]")
        ev = ev.drop_duplicates(subset="event_id", keep="first").reset_index(drop=True)
    else:
        ev["event_time"] = pd.Series([], dtype="datetime64[us]")

    coverage_start = None
    if len(ev):
        first = ev["event_time"].min().date()
        coverage_start = first + timedelta(days=(7 - first.weekday()) % 7)

    # ---- layoffs: deltas, newest delivery wins per id (later line wins on a tie)
    def load_deltas(
        stem: str, columns: list[str], types: dict[str, str], key: str
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        ldir = root / "layoffs"
        if not ldir.is_dir():
            return out
        dirs = sorted(
            (dd, d)
            for d in ldir.iterdir()
            if d.is_dir() and (dd := _is_date_name(d.name)) is not None
        )
        for dd, d in dirs:
            p = _find(d, stem, (".csv", ".csv.gz"))
            if p is None:
                continue
            rows, bad = _read_csv_typed(p, columns, types)
            note(p, bad)
            for r in rows:
                if r.get(key) is None:
                    continue
                r["_delivery_date"] = dd
                out[r[key]] = r
        return out

    rif_rounds = load_deltas("rif_rounds", RIF_ROUND_COLUMNS, RIF_ROUND_TYPES, "rif_round_id")
    rif_notices = load_deltas("rif_notices", RIF_NOTICE_COLUMNS, RIF_NOTICE_TYPES, "notice_id")

    return Sources(
        hr=hr,
        hr_delivery=hr_delivery,
        assignments=assignments,
        events=ev,
        rif_rounds=rif_rounds,
        rif_notices=rif_notices,
        as_of_date=as_of_date,
        coverage_start=coverage_start,
        skipped=skipped,
    )


# --------------------------------------------------------------------------------------
# Helpers for the rules
# --------------------------------------------------------------------------------------


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _valid_on(row: dict[str, Any], d: date) -> bool:
    vf, vt = row.get("valid_from"), row.get("valid_to")
    return (vf is None or vf <= d) and (vt is None or d < vt)


def _pick_newest(rows: list[dict[str, Any]], id_col: str | None) -> dict[str, Any]:
    """Tie-break of DESIGN.md: newest valid_from, then greatest id."""

    def key(r: dict[str, Any]) -> tuple:
        vf = r.get("valid_from") or date.min
        rid = r.get(id_col) if id_col else None
        return (vf, rid is not None, rid or "", r.get("_line_number", 0))

    return max(rows, key=key)


class _Policies:
    def __init__(self, policies: list[dict[str, Any]]):
        self.rows = sorted(policies, key=lambda p: p["effective_from"])

    def on(self, d: date) -> dict[str, Any] | None:
        for p in self.rows:
            if p["effective_from"] <= d and (
                p.get("effective_to") is None or d < p["effective_to"]
            ):
                return p
        return None


class _OrgTree:
    def __init__(self, org_units: list[dict[str, Any]]):
        self.units = {}
        for r in org_units:
            if r["org_unit_id"] is not None and r["org_unit_id"] not in self.units:
                self.units[r["org_unit_id"]] = r
        self._chain: dict[str | None, list[str]] = {}
        self._dept: dict[str | None, str | None] = {}

    def chain(self, ou: str | None) -> list[str]:
        """The org unit itself, then its ancestors (nearest first)."""
        if ou in self._chain:
            return self._chain[ou]
        out: list[str] = []
        seen: set[str] = set()
        cur = ou
        while cur is not None and cur not in seen:
            out.append(cur)
            seen.add(cur)
            u = self.units.get(cur)
            cur = u["parent_id"] if u is not None else None
        self._chain[ou] = out
        return out

    def department(self, ou: str | None) -> str | None:
        if ou not in self._dept:
            dept = None
            for u in self.chain(ou):
                row = self.units.get(u)
                if row is not None and row.get("kind") == "department":
                    dept = u
                    break
            self._dept[ou] = dept
        return self._dept[ou]


class _JobHistory:
    """As-of lookup: newest row with effective_date <= day (file order breaks ties)."""

    def __init__(self, rows: list[dict[str, Any]]):
        by_emp: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["employee_id"] is not None and r["effective_date"] is not None:
                by_emp[r["employee_id"]].append(r)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.dates: dict[str, list[date]] = {}
        for e, rs in by_emp.items():
            rs.sort(key=lambda r: (r["effective_date"], r["_line_number"]))
            self.rows[e] = rs
            self.dates[e] = [r["effective_date"] for r in rs]

    def on(self, emp: str, d: date) -> dict[str, Any] | None:
        ds = self.dates.get(emp)
        if not ds:
            return None
        i = bisect.bisect_right(ds, d)
        return self.rows[emp][i - 1] if i else None

    def org_unit(self, emp: str, d: date) -> str | None:
        r = self.on(emp, d)
        return r["org_unit_id"] if r is not None else None

    def job_level(self, emp: str, d: date) -> int | None:
        r = self.on(emp, d)
        return r["job_level"] if r is not None else None


def _employed(emp: dict[str, Any], d: date) -> bool:
    h, t = emp["hire_date"], emp["termination_date"]
    return h is not None and h <= d and (t is None or d < t)


def _to_utc(local: datetime, tz: ZoneInfo | None) -> datetime:
    """Site-local wall clock -> UTC. fold=0: an ambiguous time takes its first
    occurrence; a nonexistent time keeps the pre-gap offset, i.e. it is moved
    forward by the gap."""
    if tz is None:
        return local.replace(tzinfo=timezone.utc)
    return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def _counting_events(
    src: Sources, need_presence: bool
) -> dict[tuple[str, date], tuple[datetime | None, datetime | None]]:
    """(employee_id, local date) -> (first UTC, last UTC) of its counting events.

    Counting: result GRANTED, badge of type EMPLOYEE assigned to the employee at the
    event time (valid_from <= event_time < valid_to, null = open)."""
    ev = src.events
    if not len(ev) or not src.assignments:
        return {}
    ev = ev.loc[ev["result"] == "GRANTED", ["event_id", "badge_id", "site_id", "event_time"]]
    asg = pd.DataFrame(
        [
            (a["badge_id"], a["employee_id"], a["valid_from"], a["valid_to"])
            for a in src.assignments
            if a["badge_type"] == "EMPLOYEE"
            and a["employee_id"] is not None
            and a["badge_id"] is not None
        ],
        columns=["badge_id", "employee_id", "valid_from", "valid_to"],
    )
    if not len(asg) or not len(ev):
        return {}
    asg["valid_from"] = pd.to_datetime(asg["valid_from"]).astype("datetime64[us]")
    asg["valid_to"] = pd.to_datetime(asg["valid_to"]).astype("datetime64[us]")
    m = ev.merge(asg, on="badge_id", how="inner")
    t = m["event_time"]
    ok = (m["valid_from"].isna() | (m["valid_from"] <= t)) & (
        m["valid_to"].isna() | (t < m["valid_to"])
    )
    m = m.loc[ok, ["employee_id", "event_id", "site_id", "event_time"]]
    m = m.drop_duplicates(subset=["employee_id", "event_id"])
    m["local_date"] = m["event_time"].dt.normalize()
    out: dict[tuple[str, date], tuple[datetime | None, datetime | None]] = {}
    if not need_presence:
        for emp, d in set(zip(m["employee_id"], m["local_date"], strict=True)):
            out[(emp, d.date())] = (None, None)
        return out
    tzs: dict[str, ZoneInfo | None] = {}
    for s in src.hr["sites"]:
        try:
            tzs[s["site_id"]] = ZoneInfo(s["timezone"]) if s["timezone"] else None
        except Exception:  # unknown zone name
            tzs[s["site_id"]] = None
    utc = [
        _to_utc(ts.to_pydatetime(), tzs.get(site))
        for ts, site in zip(m["event_time"], m["site_id"], strict=True)
    ]
    for emp, d, u in zip(m["employee_id"], m["local_date"], utc, strict=True):
        k = (emp, d.date())
        cur = out.get(k)
        if cur is None:
            out[k] = (u, u)
        else:
            out[k] = (min(cur[0], u), max(cur[1], u))
    return out


# --------------------------------------------------------------------------------------
# Marts
# --------------------------------------------------------------------------------------


def _sort_key(v: Any) -> tuple:
    return (v is None, v if v is not None else "")


def compute_marts(
    source_root: Path | str,
    *,
    policies: list[dict[str, Any]] | None = None,
    gate: dict[str, Any] | None = None,
    sources: Sources | None = None,
) -> dict[str, pd.DataFrame]:
    src = sources if sources is not None else load_sources(source_root)
    pol = _Policies(policies if policies is not None else DEFAULT_POLICIES)
    gate = gate if gate is not None else DEFAULT_GATE
    tree = _OrgTree(src.hr["org_units"])
    jobs = _JobHistory(src.hr["job_history"])

    employees: dict[str, dict[str, Any]] = {}
    for r in src.hr["employees"]:
        if r["employee_id"] is not None and r["employee_id"] not in employees:
            employees[r["employee_id"]] = r
    scope = {e: r for e, r in employees.items() if r["worker_type"] == "employee"}

    holidays = {(h["country"], h["date"]) for h in src.hr["holidays"]}
    leave: dict[str, list[tuple[date | None, date | None]]] = defaultdict(list)
    for lv in src.hr["leave"]:
        if lv["employee_id"] is not None:
            leave[lv["employee_id"]].append((lv["start_date"], lv["end_date"]))

    emp_exc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ou_exc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in src.hr["exceptions"]:
        if x["subject_id"] is None or x["required_days_per_week"] is None:
            continue
        if x["scope"] == "employee":
            emp_exc[x["subject_id"]].append(x)
        elif x["scope"] == "org_unit":
            ou_exc[x["subject_id"]].append(x)
    team_pol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tp in src.hr["team_policies"]:
        if tp["org_unit_id"] is not None and tp["required_days_per_week"] is not None:
            team_pol[tp["org_unit_id"]].append(tp)

    need_presence = any(p.get("min_presence_minutes") is not None for p in pol.rows)
    counting = _counting_events(src, need_presence)

    def on_leave(emp: str, d: date) -> bool:
        for s, e in leave.get(emp, ()):
            if (s is None or s <= d) and (e is None or d <= e):
                return True
        return False

    def available(emp: dict[str, Any], d: date) -> bool:
        return (
            d.weekday() < 5
            and (emp["country"], d) not in holidays
            and _employed(emp, d)
            and not on_leave(emp["employee_id"], d)
        )

    def day_requirement(emp_id: str, d: date) -> tuple[int, bool]:
        """(day_requirement, taken from an exception?)"""
        p = pol.on(d)
        if p is None:
            return 0, False  # before the first policy: no requirement
        valid = [x for x in emp_exc.get(emp_id, ()) if _valid_on(x, d)]
        if valid:
            return _pick_newest(valid, "exception_id")["required_days_per_week"], True
        chain = tree.chain(jobs.org_unit(emp_id, d))
        for ou in chain:
            valid = [x for x in ou_exc.get(ou, ()) if _valid_on(x, d)]
            if valid:
                return _pick_newest(valid, "exception_id")["required_days_per_week"], True
        if p["kind"] == "director_discretion":
            for ou in chain:
                valid = [x for x in team_pol.get(ou, ()) if _valid_on(x, d)]
                if valid:
                    return _pick_newest(valid, None)["required_days_per_week"], False
            return 0, False
        if p["kind"] == "weekly_days":
            return int(p["required_days_per_week"] or 0), False
        return 0, False

    def is_office_day(emp_id: str, d: date) -> bool:
        hit = counting.get((emp_id, d))
        if hit is None:
            return False
        p = pol.on(d)
        mins = p.get("min_presence_minutes") if p is not None else None
        if mins is None or (isinstance(mins, float) and math.isnan(mins)):
            return True
        first, last = hit
        return (last - first) >= timedelta(minutes=float(mins))

    # ---------------- weekly compliance
    weeks: list[date] = []
    if src.coverage_start is not None and src.as_of_date is not None:
        w = src.coverage_start
        while w + timedelta(days=6) <= src.as_of_date:
            weeks.append(w)
            w += timedelta(days=7)

    weekly_rows: list[dict[str, Any]] = []
    status_by: dict[str, dict[date, str]] = defaultdict(dict)
    for emp_id in sorted(scope):
        emp = scope[emp_id]
        h, t = emp["hire_date"], emp["termination_date"]
        if h is None:
            continue
        for ws in weeks:
            we = ws + timedelta(days=6)
            first_emp = max(ws, h)
            last_emp = we if t is None else min(we, t - timedelta(days=1))
            if first_emp > last_emp:
                continue  # not employed on any day of the week
            avail = 0
            req_sum = 0
            office = 0
            has_exc = False
            for i in range(5):
                d = ws + timedelta(days=i)
                if not available(emp, d):
                    continue
                avail += 1
                r, from_exc = day_requirement(emp_id, d)
                req_sum += r
                has_exc = has_exc or from_exc
                if is_office_day(emp_id, d):
                    office += 1
            required = (req_sum + 4) // 5
            if required == 0:
                status = "no_requirement"
            elif office >= required:
                status = "compliant"
            else:
                status = "non_compliant"
            friday = pol.on(ws + timedelta(days=4))
            weekly_rows.append(
                {
                    "employee_id": emp_id,
                    "week_start": ws,
                    "org_unit_id": jobs.org_unit(emp_id, last_emp),
                    "policy_id": friday["policy_id"] if friday else None,
                    "available_days": avail,
                    "required_days": required,
                    "office_days": office,
                    "status": status,
                    "has_exception": has_exc,
                }
            )
            status_by[emp_id][ws] = status

    def rate_before(emp_id: str, d: date) -> tuple[int, int, float | None]:
        """13 complete ISO weeks before the ISO week of d."""
        mon = _monday(d)
        st = status_by.get(emp_id, {})
        req = comp = 0
        for k in range(int(gate["lookback_weeks"])):
            ws = mon - timedelta(days=7 * (k + 1))
            s = st.get(ws)
            if s is None or s == "no_requirement":
                continue
            req += 1
            comp += s == "compliant"
        return req, comp, (comp / req if req else None)

    def rate_13w(emp_id: str, d: date) -> float | None:
        mon = _monday(d)
        st = status_by.get(emp_id, {})
        req = comp = 0
        for k in range(13):
            s = st.get(mon - timedelta(days=7 * (k + 1)))
            if s is None or s == "no_requirement":
                continue
            req += 1
            comp += s == "compliant"
        return comp / req if req else None

    # ---------------- promotion gate
    approvals_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in src.hr["approvals"]:
        if a["nomination_id"] is not None:
            approvals_by[a["nomination_id"]].append(a)
    lookback_days = 7 * int(gate["lookback_weeks"])
    gate_rows: list[dict[str, Any]] = []
    seen_nom: set[str] = set()
    for n in src.hr["nominations"]:
        nid = n["nomination_id"]
        if nid is None or nid in seen_nom or n["employee_id"] not in scope:
            continue
        seen_nom.add(nid)
        nom_on = n["nominated_on"]
        if nom_on is None:
            continue
        mon = _monday(nom_on)
        req, comp, rate = rate_before(n["employee_id"], nom_on)
        applies = nom_on >= gate["effective_from"]

        def approval_valid(a: dict[str, Any], n: dict[str, Any] = n) -> bool:
            ap_on = a["approved_on"]
            if ap_on is None or a["approver_id"] is None:
                return False
            lvl = jobs.job_level(a["approver_id"], ap_on)
            if lvl is None or lvl < 10:
                return False
            return n["decided_on"] is None or ap_on <= n["decided_on"]

        approvals = approvals_by.get(nid, [])
        chosen = None
        chosen_valid = None
        if approvals:

            def akey(a: dict[str, Any]) -> tuple:
                return (
                    a["approved_on"] is None,
                    a["approved_on"] or date.max,
                    a["approval_id"] is None,
                    a["approval_id"] or "",
                )

            valids = [a for a in approvals if approval_valid(a)]
            if valids:
                chosen, chosen_valid = min(valids, key=akey), True
            else:
                chosen, chosen_valid = min(approvals, key=akey), False
        if not applies:
            status = "not_gated"
        elif rate is None or rate >= float(gate["threshold"]):
            status = "eligible"
        elif chosen_valid:
            status = "eligible_vp_approved"
        else:
            status = "blocked"
        if n["outcome"] == "promoted" and status == "blocked":
            flag = "promoted_while_blocked"
        elif chosen is not None and not chosen_valid:
            flag = "invalid_approval"
        else:
            flag = None
        gate_rows.append(
            {
                "nomination_id": nid,
                "cycle_id": n["cycle_id"],
                "employee_id": n["employee_id"],
                "nominated_on": nom_on,
                "lookback_start": mon - timedelta(days=lookback_days),
                "lookback_end": mon - timedelta(days=1),
                "weeks_required": req,
                "weeks_compliant": comp,
                "compliance_rate": rate,
                "gate_applies": applies,
                "gate_status": status,
                "approval_id": chosen["approval_id"] if chosen else None,
                "approval_valid": chosen_valid,
                "outcome": n["outcome"],
                "audit_flag": flag,
            }
        )

    # ---------------- exits
    separated: dict[str, dict[str, Any]] = {}
    for nt in src.rif_notices.values():
        if nt["status"] != "separated" or nt["employee_id"] is None:
            continue
        cur = separated.get(nt["employee_id"])
        k = (nt["notified_on"] or date.min, nt["notice_id"])
        if cur is None or k > (cur["notified_on"] or date.min, cur["notice_id"]):
            separated[nt["employee_id"]] = nt
    exit_rows: list[dict[str, Any]] = []
    exit_dept: dict[str, str | None] = {}
    for emp_id in sorted(scope):
        emp = scope[emp_id]
        t = emp["termination_date"]
        if t is None or src.as_of_date is None or t > src.as_of_date:
            continue
        notice = separated.get(emp_id)
        if notice is not None:
            etype = "layoff"
            notice_date = notice["notified_on"]
            round_id = notice["rif_round_id"]
        else:
            etype = (
                "voluntary"
                if emp["termination_reason"] in ("voluntary_resignation", "retirement")
                else "involuntary"
            )
            notice_date = t
            round_id = None
        last_day = t - timedelta(days=1)
        pnd = pol.on(notice_date) if notice_date is not None else None
        ou = jobs.org_unit(emp_id, last_day)
        exit_dept[emp_id] = tree.department(ou)
        exit_rows.append(
            {
                "employee_id": emp_id,
                "exit_date": t,
                "exit_type": etype,
                "rif_round_id": round_id,
                "notice_date": notice_date,
                "compliance_rate_13w": rate_13w(emp_id, notice_date) if notice_date else None,
                "policy_id": pnd["policy_id"] if pnd else None,
                "org_unit_id": ou,
                "job_level": jobs.job_level(emp_id, last_day),
            }
        )

    # ---------------- attrition monthly
    def band(emp_id: str, s: date) -> str:
        if not _employed(scope[emp_id], s):
            return "no_requirement"
        r = rate_13w(emp_id, s)
        if r is None:
            return "no_requirement"
        if r >= BAND_HIGH:
            return "high"
        if r >= BAND_MEDIUM:
            return "medium"
        return "low"

    months: list[date] = []
    if src.coverage_start is not None and src.as_of_date is not None:
        m = src.coverage_start.replace(day=1)
        if m < src.coverage_start:
            m = _add_month(m)
        while _add_month(m) - timedelta(days=1) <= src.as_of_date:
            months.append(m)
            m = _add_month(m)

    exits_by_emp = {r["employee_id"]: r for r in exit_rows}
    att_rows: list[dict[str, Any]] = []
    for ms in months:
        me = _add_month(ms) - timedelta(days=1)
        agg: dict[tuple[str | None, str], dict[str, int]] = defaultdict(
            lambda: {
                "headcount_start": 0,
                "headcount_end": 0,
                "hires": 0,
                "exits_voluntary": 0,
                "exits_involuntary": 0,
                "exits_layoff": 0,
            }
        )
        for emp_id, emp in scope.items():
            b = band(emp_id, ms)
            if _employed(emp, ms):
                agg[(tree.department(jobs.org_unit(emp_id, ms)), b)]["headcount_start"] += 1
            h = emp["hire_date"]
            if h is not None and ms <= h <= me:
                agg[(tree.department(jobs.org_unit(emp_id, h)), b)]["hires"] += 1
            if _employed(emp, me):
                agg[(tree.department(jobs.org_unit(emp_id, me)), b)]["headcount_end"] += 1
            x = exits_by_emp.get(emp_id)
            if x is not None and ms <= x["exit_date"] <= me:
                agg[(exit_dept[emp_id], b)][f"exits_{x['exit_type']}"] += 1
        for (dept, b), v in agg.items():
            if not any(v.values()):
                continue
            avg = (v["headcount_start"] + v["headcount_end"]) / 2
            ex = v["exits_voluntary"] + v["exits_involuntary"] + v["exits_layoff"]
            att_rows.append(
                {
                    "month_start": ms,
                    "department_id": dept,
                    "compliance_band": b,
                    **v,
                    "attrition_rate": (ex / avg) if avg else None,
                }
            )

    # ---------------- frames
    weekly_rows.sort(key=lambda r: (r["employee_id"], r["week_start"]))
    gate_rows.sort(key=lambda r: r["nomination_id"])
    exit_rows.sort(key=lambda r: (r["employee_id"], r["exit_date"]))
    att_rows.sort(
        key=lambda r: (r["month_start"], _sort_key(r["department_id"]), r["compliance_band"])
    )

    return {
        "fct_rto_compliance_weekly": _frame(
            weekly_rows,
            "fct_rto_compliance_weekly",
            ints=["available_days", "required_days", "office_days"],
            bools=["has_exception"],
        ),
        "fct_promotion_gate": _frame(
            gate_rows,
            "fct_promotion_gate",
            ints=["weeks_required", "weeks_compliant"],
            floats=["compliance_rate"],
            bools=["gate_applies"],
        ),
        "fct_exits": _frame(
            exit_rows, "fct_exits", floats=["compliance_rate_13w"], nullable_ints=["job_level"]
        ),
        "fct_attrition_monthly": _frame(
            att_rows,
            "fct_attrition_monthly",
            ints=[
                "headcount_start",
                "headcount_end",
                "hires",
                "exits_voluntary",
                "exits_involuntary",
                "exits_layoff",
            ],
            floats=["attrition_rate"],
        ),
    }


def _add_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _frame(
    rows: list[dict[str, Any]],
    name: str,
    *,
    ints: Iterable[str] = (),
    floats: Iterable[str] = (),
    bools: Iterable[str] = (),
    nullable_ints: Iterable[str] = (),
) -> pd.DataFrame:
    cols = MART_COLUMNS[name]
    data = {c: pd.Series([r[c] for r in rows], dtype=object) for c in cols}
    df = pd.DataFrame(data, columns=cols)
    for c in ints:
        df[c] = df[c].astype("int64")
    for c in floats:
        df[c] = pd.Series(
            [float("nan") if v is None else float(v) for v in df[c]],
            dtype="float64",
            index=df.index,
        )
    for c in bools:
        df[c] = df[c].astype(bool)
    for c in nullable_ints:
        df[c] = pd.array([v for v in df[c]], dtype="Int64")
    return df.reset_index(drop=True)


__all__ = [
    "compute_marts",
    "load_sources",
    "Sources",
    "DEFAULT_POLICIES",
    "DEFAULT_GATE",
    "MART_COLUMNS",
]
