"""The dbt project: it parses without a database, its marts honour the contract
of DOMAIN.md section 4, every model has a tested key, and a build on a small
hand-made company (``small_company``) passes its tests and gives the figures
worked out by hand below.

dbt runs in-process (``dbtRunner``), with target and logs under ``var/test``.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.dbt.small_company import write_raw

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "dbt_project"
VAR = Path(os.environ["RTO_TEST_VAR"]) / "dbt"  # per xdist worker (conftest)

# DOMAIN.md section 4: the columns every mart must have, by name.
MART_COLUMNS = {
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
    "dim_employee": [
        "employee_id",
        "valid_from",
        "valid_to",
        "job_level",
        "org_unit_id",
        "department_id",
        "home_site_id",
        "is_current",
    ],
    "dim_org_unit": ["org_unit_id", "department_id"],
    "dim_policy": ["policy_id"],
    "dim_date": ["date_day"],
}
KEY_TESTS = {"unique", "unique_combination_of_columns", "exactly_one_row"}


def _dbt(args: list[str], warehouse: Path, name: str):
    """Invoke dbt in-process on the project with its own target folder."""
    from dbt.cli.main import dbtRunner

    env = {
        "DBT_PROFILES_DIR": str(PROJECT),
        "DBT_TARGET_PATH": str(VAR / name / "target"),
        "DBT_LOG_PATH": str(VAR / name / "logs"),
        "RTO_WAREHOUSE_PATH": str(warehouse),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return dbtRunner().invoke([*args, "--project-dir", str(PROJECT)])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    missing = tmp_path_factory.mktemp("no_db") / "absent.duckdb"
    result = _dbt(["parse"], missing, "parse")
    assert result.success, result.exception
    assert not missing.exists(), "dbt parse must not create the warehouse"
    return json.loads((VAR / "parse" / "target" / "manifest.json").read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["package_name"] == "rto_warehouse"
    }


@pytest.mark.parametrize("mart", sorted(MART_COLUMNS))
def test_mart_honours_the_contract(manifest, mart):
    node = _models(manifest)[mart]
    assert node["schema"] == "marts"
    # the weekly fact is built incrementally (issue 4), every other mart is a table
    expected = "incremental" if mart == "fct_rto_compliance_weekly" else "table"
    assert node["config"]["materialized"] == expected
    assert node["config"]["contract"]["enforced"] is True
    columns = node["columns"]
    missing = [c for c in MART_COLUMNS[mart] if c not in columns]
    assert not missing, f"{mart} lacks {missing}"
    for name, column in columns.items():
        assert column["data_type"], f"{mart}.{name} has no data_type"
        assert column["description"].strip(), f"{mart}.{name} has no description"


def test_every_model_has_a_tested_key(manifest):
    tested: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and "test_metadata" in node:
            for parent in node["depends_on"]["nodes"]:
                tested.setdefault(parent.split(".")[-1], set()).add(node["test_metadata"]["name"])
    lacking = [m for m in _models(manifest) if not tested.get(m, set()) & KEY_TESTS]
    assert not lacking, f"models without a primary-key test: {lacking}"


def test_domain_examples_are_unit_tests(manifest):
    names = {n["name"] for n in manifest["unit_tests"].values()}
    assert {
        "required_days_three_day_policy_four_available_days",
        "required_days_five_day_policy_with_a_holiday",
        "required_days_week_of_2024_12_30_across_policy_change",
        "gate_status_and_audit_flag",
        "compliance_band_edges_at_month_start",
        "exit_type_notice_date_and_lookback",
    } <= names


def test_models_use_schemas_as_named(manifest):
    schemas = {n["name"]: n["schema"] for n in _models(manifest).values()}
    assert {s for m, s in schemas.items() if m.startswith("stg_")} == {"staging"}
    assert {s for m, s in schemas.items() if m.startswith("int_")} == {"intermediate"}
    seeds = {n["schema"] for n in manifest["nodes"].values() if n["resource_type"] == "seed"}
    assert seeds == {"reference"}


INCREMENTAL = {
    "int_office_presence_daily": ["employee_id", "office_date"],
    "int_employee_days_available": ["employee_id", "date_day"],
    "int_employee_days_required": ["employee_id", "date_day"],
    "int_employee_weeks": ["employee_id", "week_start"],
    "int_employee_weeks_aggregated": ["employee_id", "week_start"],
    "fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "int_employee_months_banded": ["employee_id", "month_start"],
}


def test_badge_derived_models_and_weekly_fact_are_incremental(manifest):
    models = _models(manifest)
    for name, key in INCREMENTAL.items():
        config = models[name]["config"]
        assert config["materialized"] == "incremental", name
        # the pre-hook deletes every row in scope, the query writes the scope again:
        # append (a delete+insert on the grain found nothing left to delete, at the
        # price of a scan of the whole table); the grain is still tested (scoped:
        # test_incremental compares the tables with a full build)
        assert config["incremental_strategy"] == "append", name
        assert config.get("unique_key") is None, name
        grain = [
            n["test_metadata"]["kwargs"]["combination_of_columns"]
            for n in manifest["nodes"].values()
            if n["resource_type"] == "test"
            and n.get("attached_node") == models[name]["unique_id"]
            and n.get("test_metadata", {}).get("name") == "unique_combination_of_columns"
        ]
        assert grain == [key], name
        # the pre-hook deletes the rebuild scope (rows that must disappear)
        assert len(config["pre-hook"]) == 1, name
        assert "rebuild_scope_delete" in config["pre-hook"][0]["sql"], name
        assert "model.rto_warehouse.int_rebuild_scope" in models[name]["depends_on"]["nodes"]
    # the staging events: incremental on the event id, ranking only the night's ids;
    # dbt's delete+insert with its delete narrowed to the new rows' id ranges
    config = models["stg_badge__events"]["config"]
    assert (config["materialized"], config["incremental_strategy"], config["unique_key"]) == (
        "incremental",
        "delete_insert_in_key_ranges",
        "event_id",
    )
    assert "badge_events_drop_removed_files" in config["pre-hook"][0]["sql"]
    # besides them only the two state models are incremental; the rest are views or tables
    incremental = {n for n, m in models.items() if m["config"]["materialized"] == "incremental"}
    assert incremental == set(INCREMENTAL) | {
        "stg_badge__events",
        "int_rebuild_state_files",
        "int_rebuild_state_builds",
    }
    others = {m["config"]["materialized"] for n, m in models.items() if n not in incremental}
    assert others == {"view", "table"}


def test_every_source_has_a_freshness(manifest):
    sources = {s["name"]: s for s in manifest["sources"].values()}
    # the 14 delivered files of DOMAIN.md section 3 and the loader's manifest (lineage)
    assert len(sources) == 15
    for name, source in sources.items():
        freshness = source["freshness"]
        assert source["loaded_at_field"], name
        assert (freshness["warn_after"] or {}).get("count") or (freshness["error_after"] or {}).get(
            "count"
        ), name
    # layoffs arrive only when a round is decided: a warning after a silent year, no error
    for name in ("layoffs_rif_rounds", "layoffs_rif_notices"):
        freshness = sources[name]["freshness"]
        assert freshness["warn_after"] == {"count": 365, "period": "day"}
        assert not (freshness["error_after"] or {}).get("count")


def test_exposures_name_owners_and_what_they_read(manifest):
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {"bi_dashboards", "audit_report"}
    for exposure in exposures.values():
        assert exposure["owner"]["name"]
    marts = {f"model.rto_warehouse.{m}" for m in MART_COLUMNS}
    assert set(exposures["bi_dashboards"]["depends_on"]["nodes"]) == marts
    assert exposures["bi_dashboards"]["type"] == "dashboard"
    audit = set(exposures["audit_report"]["depends_on"]["nodes"])
    assert "model.rto_warehouse.fct_promotion_gate" in audit
    assert "source.rto_warehouse.badge.badge_events" in audit


# --------------------------------------------------------------------------------------
# A build on the small company
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("small_company") / "warehouse.duckdb"
    write_raw(path)
    result = _dbt(["build"], path, "build")
    assert result.success, [
        (r.node.name, str(r.status), r.message)
        for r in (result.result or [])
        if str(r.status) not in ("success", "pass")
    ]
    # dbt-duckdb keeps its in-process connection to the file open: a second
    # connection in this process must use the same configuration (not read-only)
    con = duckdb.connect(str(path))
    yield con
    con.close()


def _week(con, employee_id: str, week_start: str) -> dict:
    cur = con.execute(
        "select * from marts.fct_rto_compliance_weekly where employee_id = ? and week_start = ?",
        [employee_id, week_start],
    )
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, (employee_id, week_start, rows)
    return dict(zip(names, rows[0], strict=True))


def test_covered_period(warehouse):
    bounds = warehouse.execute(
        "select as_of_date, coverage_start, coverage_end from intermediate.int_calendar_bounds"
    ).fetchone()
    assert bounds == (date(2025, 1, 15), date(2023, 4, 10), date(2025, 1, 12))
    weeks = warehouse.execute(
        "select min(week_start), max(week_start), count(distinct week_start) "
        "from marts.fct_rto_compliance_weekly"
    ).fetchone()
    assert weeks == (date(2023, 4, 10), date(2025, 1, 6), 92)


@pytest.mark.parametrize(
    ("employee_id", "week_start", "expected"),
    [
        # director discretion: the team policy of OU_T1 (2), nearer than OU_D1's (1): (10 + 4) // 5
        (
            "E001",
            "2023-04-24",
            dict(
                policy_id="director_discretion",
                available_days=5,
                required_days=2,
                office_days=3,
                status="compliant",
            ),
        ),
        # three days, US holiday on Monday (E001's office day): (12 + 4) // 5 = 3, two office days
        (
            "E001",
            "2023-05-29",
            dict(
                policy_id="three_days",
                available_days=4,
                required_days=3,
                office_days=2,
                status="non_compliant",
            ),
        ),
        # a whole week of leave: no available day, no requirement
        ("E001", "2023-08-07", dict(available_days=0, required_days=0, status="no_requirement")),
        # two days of leave: (9 + 4) // 5 = 2, only Wednesday counts
        (
            "E001",
            "2023-08-14",
            dict(available_days=3, required_days=2, office_days=1, status="non_compliant"),
        ),
        # three days on Mon/Tue, holiday Wed 2025-01-01, five days Thu/Fri: (16 + 4) // 5 = 4
        (
            "E001",
            "2024-12-30",
            dict(
                policy_id="five_days",
                available_days=4,
                required_days=4,
                office_days=2,
                status="non_compliant",
            ),
        ),
        # hired on Wednesday: 3 available days, (9 + 4) // 5 = 2, the badge works from hire day
        (
            "E002",
            "2023-05-01",
            dict(
                org_unit_id="OU_T1",
                available_days=3,
                required_days=2,
                office_days=1,
                status="non_compliant",
            ),
        ),
        # a re-sent file does not double the extra Wednesday
        (
            "E002",
            "2023-05-08",
            dict(available_days=5, required_days=3, office_days=3, status="compliant"),
        ),
        # terminated on Friday: 4 available days under the OU_D2 exception (2): (8 + 4) // 5 = 2
        (
            "E002",
            "2024-03-11",
            dict(
                org_unit_id="OU_T2",
                available_days=4,
                required_days=2,
                office_days=2,
                status="compliant",
                has_exception=True,
            ),
        ),
        # employee exception (1) from Thursday on, over the department's (2): (2+2+2+1+1 + 4) // 5
        (
            "E003",
            "2023-05-29",
            dict(
                available_days=5,
                required_days=2,
                office_days=1,
                status="non_compliant",
                has_exception=True,
            ),
        ),
        # GB bank holiday on E003's only office weekday
        (
            "E003",
            "2023-08-28",
            dict(available_days=4, required_days=1, office_days=0, status="non_compliant"),
        ),
        # the US holiday is a working day in GB
        ("E003", "2024-01-01", dict(available_days=5, required_days=2)),
        # employee exception of 0 days
        ("E009", "2024-06-03", dict(required_days=0, status="no_requirement", has_exception=True)),
    ],
)
def test_weekly_figures(warehouse, employee_id, week_start, expected):
    row = _week(warehouse, employee_id, week_start)
    assert {k: row[k] for k in expected} == expected


def test_contractors_and_people_gone_before_coverage_have_no_weeks(warehouse):
    ids = {
        r[0]
        for r in warehouse.execute(
            "select distinct employee_id from marts.fct_rto_compliance_weekly"
        ).fetchall()
    }
    assert ids == {"E001", "E002", "E003", "E006", "E007", "E008", "E009"}


def test_exits(warehouse):
    rows = warehouse.execute(
        "select employee_id, exit_type, rif_round_id, notice_date, policy_id, org_unit_id, "
        "job_level from marts.fct_exits order by employee_id"
    ).fetchall()
    assert rows == [
        ("E002", "voluntary", None, date(2024, 3, 15), "three_days", "OU_T2", 5),
        ("E005", "layoff", "R1", date(2023, 1, 18), "director_discretion", "OU_T1", 6),
        ("E006", "layoff", "R3", date(2024, 5, 15), "three_days", "OU_T2", 6),  # RIF wins
        ("E007", "involuntary", None, date(2024, 7, 1), "three_days", "OU_T1", 9),  # rescinded
    ]


def test_promotion_gate(warehouse):
    rows = warehouse.execute(
        "select nomination_id, gate_applies, weeks_required, weeks_compliant, gate_status, "
        "approval_id, approval_valid, audit_flag from marts.fct_promotion_gate "
        "order by nomination_id"
    ).fetchall()
    assert rows == [
        ("N1", True, 13, 12, "eligible", None, None, None),
        ("N2", False, 13, 3, "not_gated", None, None, None),
        ("N3", True, 13, 0, "eligible_vp_approved", "A1", True, None),
        ("N4", True, 13, 13, "eligible", "A2", False, "invalid_approval"),
        ("N5", True, 0, 0, "eligible", None, None, None),
    ]  # N6 nominates a contractor: out of scope


def test_attrition_month_of_the_comms_layoff(warehouse):
    rows = warehouse.execute(
        "select department_id, compliance_band, headcount_start, headcount_end, hires, "
        "exits_voluntary, exits_involuntary, exits_layoff, attrition_rate "
        "from marts.fct_attrition_monthly where month_start = date '2024-06-01' "
        "order by department_id nulls last, compliance_band"
    ).fetchall()
    assert rows == [
        ("OU_D1", "high", 2, 2, 0, 0, 0, 0, 0.0),
        ("OU_D1", "no_requirement", 1, 1, 0, 0, 0, 0, 0.0),
        ("OU_D2", "high", 1, 0, 0, 0, 0, 1, 2.0),
        ("OU_D2", "low", 1, 1, 0, 0, 0, 0, 0.0),
        (None, "low", 1, 1, 0, 0, 0, 0, 0.0),
    ]


def test_dim_employee_is_scd2(warehouse):
    rows = warehouse.execute(
        "select valid_from, valid_to, job_level, department_id, is_current "
        "from marts.dim_employee where employee_id = 'E001' order by valid_from"
    ).fetchall()
    assert rows == [
        (date(2020, 1, 1), date(2024, 4, 1), 7, "OU_D1", False),
        (date(2024, 4, 1), None, 8, "OU_D1", True),
    ]


def _copy_of(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> Path:
    """A copy of the module's built warehouse file, for a test that builds it again."""
    import shutil

    (source,) = warehouse.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()[0]
    warehouse.execute("checkpoint")
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(source, path)
    return path


def test_incremental_models_test_only_their_rebuild_scope(warehouse, tmp_path):
    """Data tests of an incremental model read tonight's rebuild scope (macros/testing.sql).

    A second build of the small company is incremental: its scope is the lookback window
    only. A duplicate week inside that window fails the weekly model's key test; one in
    a week the build did not rewrite is not read (it was tested the night it was written).
    The staging events' tests read the event ids of raw files the last build had not seen.
    """
    path = _copy_of(warehouse, tmp_path)
    result = _dbt(["build"], path, "scoped")
    assert result.success, result.exception
    con = duckdb.connect(str(path))
    try:
        kinds = {
            k
            for (k,) in con.execute(
                "select scope_kind from intermediate.int_rebuild_scope"
            ).fetchall()
        }
        assert "all" not in kinds and "from" in kinds
        (window_start,) = con.execute(
            "select min(week_start) from intermediate.int_rebuild_scope where scope_kind = 'from'"
        ).fetchone()
        table = "intermediate.int_employee_weeks_aggregated"
        (old, recent) = con.execute(
            f"select min(week_start), max(week_start) from {table} where employee_id = 'E001'"
        ).fetchone()
        assert old < window_start <= recent

        def duplicate(week) -> None:
            con.execute(
                f"insert into {table} select * from {table} "
                "where employee_id = 'E001' and week_start = ?",
                [week],
            )
            con.execute("checkpoint")

        def key_test_passes() -> bool:
            tested = _dbt(["test", "--select", "int_employee_weeks_aggregated"], path, "scoped")
            failed = [r.node.name for r in tested.result if str(r.status) == "fail"]
            assert all(n.startswith("unique_combination_of_columns") for n in failed), failed
            return tested.success

        duplicate(old)
        assert key_test_passes()  # outside the scope: not read tonight
        duplicate(recent)
        assert not key_test_passes()

        # staging events: the event ids of raw files the last build had not seen
        def event_test_passes() -> bool:
            tested = _dbt(["test", "--select", "stg_badge__events"], path, "scoped")
            failed = [r.node.name for r in tested.result if str(r.status) == "fail"]
            assert failed in ([], ["unique_stg_badge__events_event_id"]), failed
            return tested.success

        (event_id,) = con.execute("select min(event_id) from staging.stg_badge__events").fetchone()
        con.execute(
            "insert into staging.stg_badge__events select * from staging.stg_badge__events "
            "where event_id = ?",
            [event_id],
        )
        con.execute("checkpoint")
        assert event_test_passes()  # its file was seen by the last build
        con.execute(
            "insert into raw.badge_events select * replace ('new-file' as _file_id) "
            "from raw.badge_events where event_id = ? limit 1",
            [event_id],
        )
        con.execute("checkpoint")
        assert not event_test_passes()  # a new file brought that id again
    finally:
        con.close()


def test_banded_months_rebuild_their_scope_and_equal_a_full_refresh(warehouse, tmp_path):
    """int_employee_months_banded is incremental: a night rebuilds the months of the
    employees in scope and the months whose window (lookback weeks to month end) holds a
    day in scope, and the table equals a rebuild of the whole table.

    A copy of the small company gets the HR snapshot of 2025-02-01: the same rows, except
    that E001 moved from OU_T1 (department OU_D1) to OU_T3 (OU_D2) on 2023-10-01, until
    the promotion of 2024-04-01 in OU_T1. The as-of date moves from 2025-01-15 to
    2025-02-01, so January 2025 is covered for the first time.
    """
    path = _copy_of(warehouse, tmp_path)
    table = "intermediate.int_employee_months_banded"
    con = duckdb.connect(str(path))
    try:
        before = con.execute(f"select * from {table} order by all").fetchall()
        assert max(r[1] for r in before) == date(2024, 12, 1)
        for (raw,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and (table_name like 'hr_%' or table_name = 'badge_assignments')"
        ).fetchall():
            con.execute(
                f"insert into raw.{raw} select * replace ("
                "'sha-2025-02-01-' || _source_path as _file_id, "
                "replace(_source_path, '2025-01-15', '2025-02-01') as _source_path, "
                "date '2025-02-01' as _delivery_date) "
                f"from raw.{raw} where _delivery_date = date '2025-01-15'"
            )
        con.execute(
            "insert into raw.hr_job_history select * replace ("
            "date '2023-10-01' as effective_date, 'OU_T3' as org_unit_id, "
            "'transfer' as event, 999 as _line_number) from raw.hr_job_history "
            "where employee_id = 'E001' and effective_date = date '2020-01-01' "
            "and _delivery_date = date '2025-02-01'"
        )
        con.execute("checkpoint")
    finally:
        con.close()

    result = _dbt(["build"], path, "months")
    assert result.success, result.exception
    con = duckdb.connect(str(path))
    try:
        scope = con.execute(
            "select scope_kind, employee_id, date_day from intermediate.int_rebuild_scope "
            "order by all"
        ).fetchall()
        assert scope == [
            ("employee", "E001", None),
            ("from", None, date(2025, 1, 1)),  # 2025-01-15 minus the 14-day lookback
        ]
        incremental = con.execute(f"select * from {table} order by all").fetchall()
    finally:
        con.close()
    months = sorted({r[1] for r in incremental})
    assert months[-1] == date(2025, 1, 1)  # covered for the first time
    # E001's months moved department from the transfer on; nobody else's changed
    department_at_start = {(r[0], r[1]): r[6] for r in incremental}
    assert department_at_start["E001", date(2023, 9, 1)] == "OU_D1"
    assert department_at_start["E001", date(2023, 10, 1)] == "OU_D2"
    assert department_at_start["E001", date(2024, 4, 1)] == "OU_D1"
    assert {r[6] for r in before if r[0] == "E001"} == {"OU_D1"}
    assert [r for r in incremental if r[0] != "E001" and r[1] < date(2025, 1, 1)] == [
        r for r in before if r[0] != "E001"
    ]

    def full_refresh_of_the_months(*vars_: str) -> list[tuple]:
        args = ["run", "--select", "int_employee_months_banded", "--full-refresh", *vars_]
        result = _dbt(args, path, "months")
        assert result.success, result.exception
        with duckdb.connect(str(path)) as con:
            return con.execute(f"select * from {table} order by all").fetchall()

    assert full_refresh_of_the_months() == incremental

    # The band settings: a state table older than the band_settings column (settings
    # unknown), then changed vars, rebuild every month once
    with duckdb.connect(str(path)) as con:
        con.execute("alter table intermediate.int_rebuild_state_builds drop column band_settings")
    for vars_ in ("{}", '{"band_high_min_rate_pct": 0}'):
        result = _dbt(["run", "--vars", vars_], path, "months")  # unit tests assume the defaults
        assert result.success, result.exception
        with duckdb.connect(str(path)) as con:
            scope = con.execute(
                "select scope_kind, reason from intermediate.int_rebuild_scope "
                "where scope_kind not in ('from') order by all"
            ).fetchall()
            assert scope == [("months", "band settings changed")], vars_
            incremental = con.execute(f"select * from {table} order by all").fetchall()
            (settings,) = con.execute(
                "select band_settings from intermediate.int_rebuild_state_builds "
                "order by build_number desc limit 1"
            ).fetchone()
        high = "0" if vars_ != "{}" else "90"
        assert settings == (
            f"compliance_lookback_weeks=13 band_high_min_rate_pct={high} "
            "band_medium_min_rate_pct=50"
        )
        assert full_refresh_of_the_months("--vars", vars_) == incremental
    # everyone with a requirement at the month start is high when high starts at 0 %
    assert {r[11] for r in incremental} == {"high", "no_requirement"}


def test_first_build_of_staging_events_ranks_only_files_whose_ids_can_repeat(tmp_path):
    """The first build keeps the rows of files whose ids cannot repeat without ranking
    them (the window over every event is what a large history cannot afford), and gives
    the same rows as ranking every row. Files, in the order the raw table holds them:

    - ``a`` ids increase, ``a2`` re-sends them two days later: both ranked, ``a`` wins;
    - ``c`` repeats an id inside the file; ``d`` has unique ids that decrease;
    - ``e`` comes in two runs with ``f`` between (its rows are not one run as scanned);
    - ``g`` and ``h`` share no id but their id ranges overlap;
    - ``j`` is scanned before ``k``, which delivered the same id earlier (``k`` wins);
    - ``f`` and ``m`` are clean: increasing ids, ranges of their own, one run each.
    """
    from rto.warehouse import raw_table_ddl

    files = {  # file: (delivery day of January 2024, ids in line order)
        "a": (3, ["A-001", "A-002", "A-003"]),
        "a2": (5, ["A-001", "A-002", "A-003"]),
        "c": (3, ["C-001", "C-002", "C-002", "C-003"]),
        "d": (3, ["D-003", "D-002", "D-001"]),
        "e": (3, ["E-001", "E-002", "E-003", "E-004"]),
        "f": (3, ["F-001", "F-002"]),
        "g": (3, ["G-001", "G-005"]),
        "h": (3, ["G-003", "G-004"]),
        "j": (6, ["J-001", "J-002"]),
        "k": (4, ["J-002", "J-003"]),
        "m": (3, ["M-001", "M-002", "M-003"]),
    }
    scan_order = [("a", 0, 3), ("a2", 0, 3), ("c", 0, 4), ("d", 0, 3), ("e", 0, 2)]
    scan_order += [("f", 0, 2), ("e", 2, 4), ("g", 0, 2), ("h", 0, 2), ("j", 0, 2)]
    scan_order += [("k", 0, 2), ("m", 0, 3)]
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(raw_table_ddl())
    for name, lo, hi in scan_order:
        day, ids = files[name]
        for index in range(lo, hi):
            con.execute(
                "insert into raw.badge_events values "
                "(?, 'B1', 'NYC', 'R1', timestamp '2024-01-02 09:00:00' + to_minutes(?), "
                "'IN', 'GRANTED', ?, ?, ?, make_date(2024, 1, ?), 'run')",
                [ids[index], index, f"sha-{name}", f"badge/events/{name}.csv.gz", index + 2, day],
            )
    con.close()

    result = _dbt(["run", "--select", "stg_badge__events"], path, "first_build")
    assert result.success, result.exception

    con = duckdb.connect(str(path))
    try:
        kept = con.execute(
            "select event_id, source_path, source_line_number from staging.stg_badge__events "
            "order by all"
        ).fetchall()
        ranked_all = con.execute(
            "select event_id, _source_path, _line_number from ("
            "  select *, row_number() over (partition by event_id "
            "    order by _delivery_date, _source_path, _line_number) as n "
            "  from raw.badge_events) where n = 1 order by all"
        ).fetchall()
        assert kept == ranked_all
        assert len(kept) == 25  # of 30 rows: a2's 3 copies, c's second C-002 and j's J-002 go
        assert ("A-001", "badge/events/a.csv.gz", 2) in kept
        assert ("C-002", "badge/events/c.csv.gz", 3) in kept
        assert ("J-002", "badge/events/k.csv.gz", 2) in kept

        # which files the build ranked: the model's files_to_rank over the same raw rows
        compiled = next(
            (VAR / "first_build" / "target" / "compiled").rglob("stg_badge__events.sql")
        )
        sql = compiled.read_text().rstrip()
        assert sql.endswith("select * from final")
        sql = sql.removesuffix("select * from final") + "select _file_id from files_to_rank"
        ranked = {f.removeprefix("sha-") for (f,) in con.execute(sql).fetchall()}
        assert ranked == set(files) - {"f", "m"}
    finally:
        con.close()


def test_key_ranges_of_files_merges_the_files_ranges_in_the_database_order(tmp_path):
    """The night's id ranges that narrow the scans of every raw event (stg_badge__events,
    int_rebuild_scope, the scoped tests): one range per group of overlapping files, a
    null key ignored, quotes escaped; "false" for no key, "true" beyond max_ranges."""
    from rto.warehouse import raw_table_ddl

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(raw_table_ddl())
    rows = [("a", "A-001"), ("a", "A-003"), ("b", "A-003"), ("b", "A-005"), ("b", None)]
    rows += [("c", "C-002"), ("c", "C-001"), ("q", "Q'1"), ("n", None)]
    for line, (name, event_id) in enumerate(rows):
        con.execute(
            "insert into raw.badge_events values (?, 'B1', 'NYC', 'R1', "
            "timestamp '2024-01-02 09:00:00', 'IN', 'GRANTED', ?, ?, ?, date '2024-01-03', 'r')",
            [event_id, f"sha-{name}", f"badge/events/{name}.csv.gz", line + 2],
        )
    con.close()

    def ranges(files: list[str], **kw) -> str:
        listed = ", ".join(f"'sha-{f}'" for f in files) or "null"
        where = kw.pop("where", f"r._file_id in ({listed})")
        extra = "".join(f", {k}={v!r}" for k, v in kw.items())
        inline = (
            "select {{ key_ranges_of_files(source('badge', 'badge_events'), 'event_id', "
            f'"{where}"{extra}) }}}}'
        )
        result = _dbt(["compile", "--inline", inline], path, "key_ranges")
        assert result.success, result.exception
        return result.result.results[0].node.compiled_code.removeprefix("select ")

    assert ranges(["a", "b", "c"]) == (
        "(event_id between 'A-001' and 'A-005' or event_id between 'C-001' and 'C-002')"
    )
    assert ranges(["q"], column="e.event_id") == "(e.event_id between 'Q''1' and 'Q''1')"
    assert ranges(["n"]) == "false"  # the file holds no key
    assert ranges([]) == "false"
    assert ranges(["a", "c"], max_ranges=1) == "true"
    # the files as a predicate of their own: here, every file but a, b and q
    assert ranges([], where="r._file_id not in ('sha-a', 'sha-b', 'sha-q')") == (
        "(event_id between 'C-001' and 'C-002')"
    )
