"""Great Expectations steps: suites in git, results in audit, blocking vs warning."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from rto.quality.suites import STEPS, SuiteError, load_suites
from rto.quality.validate import BlockingCheckFailed, run_step
from rto.warehouse import connect

NOW = datetime(2023, 5, 3, 2, 0)


def test_every_committed_suite_is_well_formed():
    names = [s.name for step in STEPS for s in load_suites(step)]
    assert len(names) == len(set(names))
    assert {s.table for s in load_suites("marts")} >= {
        "marts.fct_rto_compliance_weekly",
        "marts.fct_promotion_gate",
        "marts.fct_exits",
        "marts.fct_attrition_monthly",
    }
    # the raw step checks only the rows of the night
    assert all(s.increment for s in load_suites("raw"))
    assert {s.source for s in load_suites("raw")} == {"hr", "badge", "layoffs"}


def test_a_suite_without_severity_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.json").write_text(
        json.dumps(
            {
                "name": "x",
                "table": "raw.x",
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
                ],
            }
        )
    )
    with pytest.raises(SuiteError, match="meta.severity"):
        load_suites("raw", root=tmp_path)


def _suite(tmp_path, severity):
    (tmp_path / "suites" / "marts").mkdir(parents=True, exist_ok=True)
    (tmp_path / "suites" / "marts" / "t.json").write_text(
        json.dumps(
            {
                "name": "t",
                "table": "marts.t",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_unique",
                        "kwargs": {"column": "id"},
                        "meta": {"severity": severity},
                    },
                    {
                        "type": "expect_column_values_to_not_be_null",
                        "kwargs": {"column": "id"},
                        "meta": {"severity": "blocking"},
                    },
                ],
            }
        )
    )
    return tmp_path / "suites"


@pytest.mark.parametrize("severity", ["blocking", "warning"])
def test_failures_are_recorded_and_only_blocking_ones_block(tmp_path, severity):
    root = _suite(tmp_path, severity)
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute(
            "create schema marts; create table marts.t as "
            "select * from (values (1), (2), (2), (3)) v(id)"
        )
        outcome = run_step(con, tmp_path / "gx", "marts", "run1", NOW, expectations_root=root)
        rows = con.execute(
            "select expectation, severity, success, unexpected_count, element_count "
            "from audit.dq_results order by expectation"
        ).fetchall()
    assert rows == [
        ("expect_column_values_to_be_unique", severity, False, 2, 4),
        ("expect_column_values_to_not_be_null", "blocking", True, 0, 4),
    ]
    assert outcome.checked == 2
    assert outcome.data_docs.exists()
    if severity == "blocking":
        with pytest.raises(BlockingCheckFailed, match="Nothing will be published"):
            outcome.raise_if_blocked()
    else:
        outcome.raise_if_blocked()
        assert outcome.failed_warning == ["t.expect_column_values_to_be_unique(id)"]
