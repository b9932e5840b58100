"""The golden scenario: a hand-built source root and hand-computed marts.

``tests/fixtures/golden/source/`` is a small company written by hand (13 employees,
a contractor and a visitor badge, New York and Dublin, April to November 2023: the
switch from director discretion to three days on 2023-05-01, US and Irish holidays,
leave, employee and org-unit exceptions, team policies, a mid-week hire and a
mid-week resignation, a layoff and a rescinded RIF notice, nominations before and
after the promotion gate with valid and invalid VP approvals). The cast and what
each person exercises are in ``tests/fixtures/golden/README.md``.

``tests/fixtures/golden/expected/<mart>.csv`` hold every row of the four marts,
worked out by hand from DOMAIN.md section 2 and docs/DESIGN.md. File format:

- lines starting with ``#`` are comments;
- the header names the mart's columns (DOMAIN.md section 4) plus a last column
  ``why`` explaining the figures of the row (not compared);
- empty field = null; booleans ``true``/``false``; rates may be written as a
  fraction ``a/b`` (compared after division, to 9 decimals).

One whole night through Airflow runs once for the module and must publish exactly
these rows. The independent oracle (``tests/integration/oracle.py``) is checked
against the same files in a separate fast test, so a failure says which side is off.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.integration.oracle import MART_COLUMNS, compute_marts

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
SOURCE = GOLDEN / "source"
EXPECTED = GOLDEN / "expected"

KEYS = {
    "fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "fct_promotion_gate": ["nomination_id"],
    "fct_exits": ["employee_id"],
    "fct_attrition_monthly": ["month_start", "department_id", "compliance_band"],
}
MARTS = sorted(KEYS)

# how each column of the expected files is read (default: string)
TYPES = {
    "week_start": "date",
    "nominated_on": "date",
    "lookback_start": "date",
    "lookback_end": "date",
    "exit_date": "date",
    "notice_date": "date",
    "month_start": "date",
    "available_days": "int",
    "required_days": "int",
    "office_days": "int",
    "weeks_required": "int",
    "weeks_compliant": "int",
    "job_level": "int",
    "headcount_start": "int",
    "headcount_end": "int",
    "hires": "int",
    "exits_voluntary": "int",
    "exits_involuntary": "int",
    "exits_layoff": "int",
    "compliance_rate": "rate",
    "compliance_rate_13w": "rate",
    "attrition_rate": "rate",
    "has_exception": "bool",
    "gate_applies": "bool",
    "approval_valid": "bool",
}
COMMENT_COLUMN = "why"

# the rows the loader must quarantine (path -> count); every other row loads
QUARANTINED = {"badge/events/2023-05-11/NYC.csv": 1}


# ------------------------------------------------------------------------------ reading


def _parse(column: str, text: str):
    if text == "":
        return None
    kind = TYPES.get(column, "str")
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "int":
        return int(text)
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"{column}: not true/false: {text!r}")
        return text == "true"
    if kind == "rate":
        return round(float(Fraction(text)), 9)
    return text


def read_expected(mart: str) -> tuple[list[str], list[dict]]:
    """(mart columns, rows) of an expected file; each row keeps its ``why``."""
    path = EXPECTED / f"{mart}.csv"
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.DictReader(lines)
    columns = [c for c in reader.fieldnames or [] if c != COMMENT_COLUMN]
    rows = []
    for raw in reader:
        assert None not in raw, f"{mart}: a row has more fields than the header: {raw}"
        row = {c: _parse(c, raw[c]) for c in columns}
        row[COMMENT_COLUMN] = raw.get(COMMENT_COLUMN) or ""
        rows.append(row)
    return columns, rows


def _value(v):
    """A published or oracle value as the expected files spell it."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, datetime):  # also pandas Timestamps
        return v.date()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if isinstance(v, (bool, int, str, date)):
        return v
    if isinstance(v, (float, Decimal)):
        return None if v != v else round(float(v), 9)
    return v


def _key(row: dict, keys: list[str]) -> tuple:
    return tuple((row[k] is None, str(row[k])) for k in keys)


def assert_rows_equal(mart: str, actual: list[dict], side: str) -> None:
    """Every expected row, no other row, every column equal."""
    columns, expected = read_expected(mart)
    keys = KEYS[mart]
    assert expected, f"{mart}: the expected file holds no rows"
    if actual:
        missing_cols = set(columns) - set(actual[0])
        assert not missing_cols, f"{mart} ({side}) lacks columns {sorted(missing_cols)}"
    exp = {_key(r, keys): r for r in expected}
    assert len(exp) == len(expected), f"{mart}: duplicate keys in the expected file"
    act: dict[tuple, dict] = {}
    for r in actual:
        row = {c: _value(r[c]) for c in columns}
        k = _key(row, keys)
        assert k not in act, f"{mart} ({side}): duplicate key {k}"
        act[k] = row

    problems = []
    for k in sorted(exp.keys() - act.keys()):
        e = exp[k]
        problems.append(f"missing {[e[c] for c in keys]}  # {e[COMMENT_COLUMN]}")
    for k in sorted(act.keys() - exp.keys()):
        problems.append(f"unexpected {act[k]}")
    for k in sorted(exp.keys() & act.keys()):
        e, a = exp[k], act[k]
        diff = {c: (e[c], a[c]) for c in columns if e[c] != a[c]}
        if diff:
            problems.append(
                f"{[e[c] for c in keys]}: "
                + ", ".join(f"{c} expected {ev!r} got {av!r}" for c, (ev, av) in diff.items())
                + f"  # {e[COMMENT_COLUMN]}"
            )
    assert not problems, (
        f"{mart} ({side}): {len(problems)} difference(s) with {EXPECTED.name}/{mart}.csv\n"
        + "\n".join(problems[:40])
    )


def _frame_rows(frame) -> list[dict]:
    return frame.astype(object).to_dict("records")


# ------------------------------------------------------------------------------ the expected files


@pytest.mark.parametrize("mart", MARTS)
def test_expected_files_are_well_formed(mart):
    columns, rows = read_expected(mart)
    assert columns == MART_COLUMNS[mart], "expected files carry every column of DOMAIN.md §4"
    assert all(r[COMMENT_COLUMN].strip() for r in rows), "every expected row explains itself"


# ------------------------------------------------------------------------------ the oracle


@pytest.fixture(scope="module")
def oracle_marts():
    return compute_marts(SOURCE)


@pytest.mark.parametrize("mart", MARTS)
def test_oracle_reproduces_the_golden_marts(oracle_marts, mart):
    assert_rows_equal(mart, _frame_rows(oracle_marts[mart]), "oracle")


# ------------------------------------------------------------------------------ the pipeline


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One whole night through Airflow on a copy of the golden source root.

    Returns the four marts and the audit tables as lists of dicts, read once.
    """
    from rto.cli import run_night

    base = tmp_path_factory.mktemp("golden")
    source, data = base / "source", base / "data"
    shutil.copytree(SOURCE, source)
    assert run_night(str(source), str(data)), "the golden night failed; see the log above"
    con = duckdb.connect(str(data / "serving" / "warehouse.duckdb"), read_only=True)

    def fetch(sql: str) -> list[dict]:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    out = {m: fetch(f"select * from marts.{m}") for m in MARTS}
    out["source_files"] = fetch(
        "select source_path, rows_in, rows_loaded, rows_quarantined, status from audit.source_files"
    )
    out["quarantine"] = fetch("select * from audit.quarantine")
    con.close()
    return out


@pytest.mark.parametrize("mart", MARTS)
def test_pipeline_publishes_the_golden_marts(night, mart):
    assert_rows_equal(mart, night[mart], "pipeline")


def _data_rows(path: Path) -> int:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return len(lines) - 1 if path.suffix == ".csv" else len(lines)


def test_every_golden_file_is_accounted_for(night):
    delivered = {
        p.relative_to(SOURCE).as_posix(): p for p in sorted(SOURCE.rglob("*")) if p.is_file()
    }
    files = {f["source_path"]: f for f in night["source_files"]}
    assert sorted(files) == sorted(delivered)
    for path, f in files.items():
        assert f["status"] == "loaded", path
        assert f["rows_in"] == f["rows_loaded"] + f["rows_quarantined"], path
        assert f["rows_in"] == _data_rows(delivered[path]), path
    quarantined = {p: f["rows_quarantined"] for p, f in files.items() if f["rows_quarantined"]}
    assert quarantined == QUARANTINED
    rejected = [(q["source_path"], q["line_number"]) for q in night["quarantine"]]
    assert rejected == [("badge/events/2023-05-11/NYC.csv", 5)]


def test_golden_hr_files_are_valid_json_lines():
    """Guard against a typo in the hand-written HR files silently dropping a row."""
    for path in sorted((SOURCE / "hr").rglob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert isinstance(json.loads(line), dict), f"{path}:{n}"
