"""Production mode, natively: the compose deployment's configuration without Docker.

Airflow runs with a PostgreSQL metadata database and the LocalExecutor; api-server,
scheduler, dag-processor and triggerer are separate processes, configured by
``rto.deploy.deployment_environment`` (the keys ``docker-compose.yml`` sets). The
ingest DAGs are unpaused and triggered through the REST API v2 with a JWT from the
SimpleAuthManager, the scheduler starts ``rto_warehouse`` from their Assets, and the
test awaits it, stops every process and checks what was published.

Needs PostgreSQL on 127.0.0.1:5432 (``.ci/run`` starts it), or a server URL in
``RTO_TEST_POSTGRES_URL``; creates and drops a database of its own. Select it alone
with ``pytest -m production``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from rto.config import DUCKDB_POOL, PROJECT_ROOT
from rto.deploy import (
    ADMIN_USER,
    COMPONENTS,
    AirflowApi,
    AirflowStack,
    deployment_environment,
    free_port,
    group_members,
)
from tests.integration.oracle import compute_marts

pytestmark = pytest.mark.production

# Small, but every mart has rows (nominations in the April cycle, a few exits).
COMPANY = dict(employees=60, start=date(2023, 4, 3), end=date(2023, 6, 30), seed=1)
INGEST_DAGS = ("rto_ingest_hr", "rto_ingest_badge", "rto_ingest_layoffs")
WAREHOUSE_DAG = "rto_warehouse"
MARTS = {
    "fct_rto_compliance_weekly": ["employee_id", "week_start"],
    "fct_promotion_gate": ["nomination_id"],
    "fct_exits": ["employee_id"],
    "fct_attrition_monthly": ["month_start", "department_id", "compliance_band"],
}
# The whole test (init, start, the night, stop) must end within this many seconds. It is a
# guard against a hung stack, not a speed goal: the night takes about 4 minutes on an idle
# 2-core machine and was seen past 10 on a loaded CI machine of the same size.
BUDGET = float(os.environ.get("RTO_TEST_PRODUCTION_BUDGET", 2400))
# After the last ingest run succeeded, the scheduler must start rto_warehouse within this.
ASSET_TRIGGER_WAIT = 300
SERVER_URL = os.environ.get("RTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
# Settings that only make a test quicker: polling and parsing intervals, not behaviour.
QUICK = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
    # LocalExecutor workers come from a forkserver that imported dbt and GX once, so a
    # task does not spend seconds importing them (tasks fork from the worker).
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": (
        "airflow.executors.local_executor,airflow.sdk.execution_time.task_runner,"
        "dbt.cli.main,dbt.adapters.duckdb,great_expectations,duckdb,pandas,cosmos"
    ),
}


@dataclass
class Night:
    """What the production night left: runs, task instances, exit codes, folders."""

    source: Path
    data: Path
    home: Path
    runs: dict[str, dict] = field(default_factory=dict)
    all_runs: dict[str, list[dict]] = field(default_factory=dict)
    warehouse_runs: list[dict] = field(default_factory=list)
    task_instances: dict[str, list[dict]] = field(default_factory=dict)
    asset_events: list[dict] = field(default_factory=list)
    refused: dict[str, int | None] = field(default_factory=dict)
    authorized: dict[str, int | None] = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    leftovers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _server_dsn(database: str) -> str:
    return f"{SERVER_URL.rstrip('/')}/{database}"


@pytest.fixture(scope="module")
def metadata_db():
    """A fresh PostgreSQL database for Airflow's metadata, dropped afterwards."""
    import importlib.util

    import psycopg2

    # Airflow 3 opens an async engine next to the sync one: postgresql+asyncpg, derived
    # from sql_alchemy_conn. Without the driver no component starts.
    assert importlib.util.find_spec("asyncpg"), (
        "asyncpg is not installed: Airflow 3 needs it for a PostgreSQL metadata database "
        "(add asyncpg to the project's dependencies)"
    )
    try:
        admin = psycopg2.connect(_server_dsn("postgres"), connect_timeout=5)
    except psycopg2.OperationalError as err:
        message = f"PostgreSQL is not reachable at {SERVER_URL} ({err}); start it (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"rto_prod_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield _server_dsn(name).replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture(scope="module")
def night(metadata_db, tmp_path_factory) -> Night:
    from rto.simulator import SimulatorConfig, generate

    started = time.monotonic()
    deadline = started + BUDGET
    base = tmp_path_factory.mktemp("production")
    source, data = base / "source", base / "data"
    generate(SimulatorConfig(out=source, **COMPANY))
    home = PROJECT_ROOT / "var" / "test" / "production" / f"{os.getpid()}-{secrets.token_hex(3)}"
    home.mkdir(parents=True)

    api_port = free_port()
    password = secrets.token_urlsafe(16)
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: password}) + "\n")
    passwords_file.chmod(0o600)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "RTO_", "DBT_", "GX_", "PG"))
    }
    env |= deployment_environment(
        airflow_home=str(home),
        dags_folder=str(PROJECT_ROOT / "dags"),
        sql_alchemy_conn=metadata_db,
        execution_api_url=f"http://127.0.0.1:{api_port}/execution/",
        passwords_file=str(passwords_file),
        jwt_secret=secrets.token_urlsafe(32),
        source_root=str(source),
        data_dir=str(data),
        pseudonym_key=secrets.token_hex(16),
        var_dir=str(home / "var"),
        cosmos_cache_dir=str(home / "cosmos"),
    )
    env |= QUICK | {
        # loopback only, and ports of their own so parallel runs do not collide
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    stack = AirflowStack(home=home, env=env, api_port=api_port)
    result = Night(source=source, data=data, home=home)
    api = AirflowApi(stack.base_url)
    try:
        stack.init(timeout=min(300, _left(deadline)))
        result.seconds["init"] = time.monotonic() - started
        stack.start()
        # the other components prove themselves by parsing and running the night; all
        # must report healthy at its end
        stack.wait_healthy(api, timeout=min(180, _left(deadline)), components=("metadatabase",))
        result.seconds["api"] = time.monotonic() - started
        result.refused = _refused_without_login(stack.base_url)
        api.login(ADMIN_USER, password)
        result.authorized = _answers_with_token(stack.base_url, api.token)
        _await_dags(stack, api, (*INGEST_DAGS, WAREHOUSE_DAG), deadline)
        for dag_id in INGEST_DAGS:
            # With catchup=False, unpausing makes the scheduler run the schedule's latest
            # past slot (last night). Triggering that very slot first replaces that run
            # (the scheduler skips a slot that already has a run), so the night runs once.
            slot = api.dag(dag_id)["next_dagrun_logical_date"]
            assert slot, f"{dag_id} has no next scheduled run"
            api.trigger(dag_id, run_id=f"production_{dag_id}", logical_date=slot)
        for dag_id in (*INGEST_DAGS, WAREHOUSE_DAG):
            api.set_paused(dag_id, False)
        result.seconds["triggered"] = time.monotonic() - started
        _await_night(stack, api, result, deadline)
        result.seconds["night"] = time.monotonic() - started
        result.health = api.health()
    except BaseException as err:
        err.add_note(f"Airflow home, process and task logs: {home}")
        raise
    finally:
        stop_started = time.monotonic()
        result.exit_codes = stack.stop(grace=20)
        result.seconds["stop"] = time.monotonic() - stop_started
        result.leftovers = {
            name: members
            for name, proc in stack.processes.items()
            if (members := group_members(proc.pid))
        }
    print(
        f"\nproduction night: seconds since start {result.seconds}, exit codes {result.exit_codes}",
        file=sys.stderr,
    )
    (home / "task_instances.json").write_text(json.dumps(result.task_instances, indent=1))
    yield result
    if not os.environ.get("RTO_KEEP_PRODUCTION_HOME"):
        shutil.rmtree(home, ignore_errors=True)


def _refused_without_login(base_url: str) -> dict[str, int | None]:
    """The status of API calls without a token, and of a login with a wrong password."""
    from rto.deploy import ApiError

    out: dict[str, int | None] = {}
    calls = {
        "list DAGs without a token": lambda api: api.request("GET", "/api/v2/dags"),
        "trigger without a token": lambda api: api.trigger(INGEST_DAGS[0]),
        "log in with a wrong password": lambda api: api.login(ADMIN_USER, "not-the-password"),
    }
    for name, call in calls.items():
        try:
            call(AirflowApi(base_url))
        except ApiError as err:
            out[name] = err.status
        else:
            out[name] = None
    return out


def _answers_with_token(base_url: str, token: str) -> dict[str, int | None]:
    """Issue 8: the status of an API call with the login's token, and with a forged one."""
    import urllib.error
    import urllib.request

    header, payload, signature = token.split(".")
    tokens = {
        "list DAGs with the login's token": token,
        "list DAGs with a forged signature": f"{header}.{payload}.{'A' * len(signature)}",
    }
    out: dict[str, int | None] = {}
    for name, bearer in tokens.items():
        request = urllib.request.Request(
            f"{base_url}/api/v2/dags", headers={"Authorization": f"Bearer {bearer}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                out[name] = response.status
        except urllib.error.HTTPError as err:
            out[name] = err.code
    return out


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"the production test ran out of its {BUDGET}s budget")
    return left


def _await_dags(stack: AirflowStack, api: AirflowApi, dag_ids, deadline: float) -> None:
    """Wait until the dag-processor has serialised every DAG."""
    from rto.deploy import ApiError

    missing = list(dag_ids)
    while missing:
        stack.check_alive()
        _left(deadline)
        for dag_id in list(missing):
            try:
                api.dag(dag_id)
            except ApiError as err:
                if err.status != 404:
                    raise
            else:
                missing.remove(dag_id)
        if missing:
            time.sleep(1)


def _await_night(stack: AirflowStack, api: AirflowApi, night: Night, deadline: float) -> None:
    """Poll the runs until the asset-triggered warehouse run has finished."""
    ingested_at = None
    while True:
        stack.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the night did not finish within {BUDGET}s: runs {night.runs}, warehouse "
                f"{night.warehouse_runs}; scheduler log:\n"
                + stack.tail(stack.log_path("scheduler"))
            )
        runs = api.all_dag_runs((*INGEST_DAGS, WAREHOUSE_DAG))
        for dag_id in INGEST_DAGS:
            night.all_runs[dag_id] = [r for r in runs if r["dag_id"] == dag_id]
            night.runs[dag_id] = next(
                r for r in night.all_runs[dag_id] if r["dag_run_id"] == f"production_{dag_id}"
            )
            if night.runs[dag_id]["state"] == "failed":
                _fail_with_logs(api, night, dag_id, night.runs[dag_id]["dag_run_id"])
        night.warehouse_runs = [r for r in runs if r["dag_id"] == WAREHOUSE_DAG]
        if all(r["state"] == "success" for r in night.runs.values()):
            ingested_at = ingested_at or time.monotonic()
            if not night.warehouse_runs and time.monotonic() - ingested_at > ASSET_TRIGGER_WAIT:
                raise AssertionError(
                    f"the three ingest runs succeeded but the scheduler did not start "
                    f"{WAREHOUSE_DAG} from their Assets within {ASSET_TRIGGER_WAIT}s"
                )
        done = [r for r in night.warehouse_runs if r["state"] in ("success", "failed")]
        if done:
            run = done[0]
            if run["state"] == "failed":
                _fail_with_logs(api, night, WAREHOUSE_DAG, run["dag_run_id"])
            for dag_id, r in (*night.runs.items(), (WAREHOUSE_DAG, run)):
                night.task_instances[dag_id] = api.task_instances(dag_id, r["dag_run_id"])
            night.asset_events = api.request(
                "GET",
                f"/api/v2/dags/{WAREHOUSE_DAG}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents",
            )["asset_events"]
            return
        time.sleep(4)


def _fail_with_logs(api: AirflowApi, night: Night, dag_id: str, run_id: str) -> None:
    """Fail with the failed tasks and the end of their logs."""
    lines = [f"{dag_id} run {run_id} failed"]
    for ti in api.task_instances(dag_id, run_id):
        if ti["state"] not in ("success", None):
            lines.append(f"  {ti['task_id']}: {ti['state']}")
            logs = sorted(
                (night.home / "logs").glob(
                    f"dag_id={dag_id}/run_id={run_id}/task_id={ti['task_id']}/*"
                )
            )
            for log in logs[-1:]:
                lines.append(AirflowStack.tail(log, 30))
    raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------------------


def test_every_run_succeeded(night: Night):
    for dag_id in INGEST_DAGS:
        assert night.runs[dag_id]["state"] == "success", night.runs[dag_id]
        assert night.runs[dag_id]["run_type"] == "manual"
        assert [r["dag_run_id"] for r in night.all_runs[dag_id]] == [f"production_{dag_id}"], (
            "unpausing started a second (scheduled) run of the same night"
        )
    assert [r["state"] for r in night.warehouse_runs] == ["success"], (
        "exactly one warehouse run, and it succeeded"
    )
    for dag_id, tis in night.task_instances.items():
        states = {ti["task_id"]: ti["state"] for ti in tis}
        assert set(states.values()) == {"success"}, (dag_id, states)
    # every dbt node ran as its own task (Cosmos), not one opaque dbt call
    warehouse = {ti["task_id"] for ti in night.task_instances[WAREHOUSE_DAG]}
    assert {"start", "dbt_seed", "check_staging", "check_marts", "publish", "reports"} <= warehouse
    assert sum(t.startswith("dbt_marts.") for t in warehouse) >= len(MARTS)


def test_warehouse_was_started_by_the_three_raw_assets(night: Night):
    (run,) = night.warehouse_runs
    assert run["run_type"] == "asset_triggered"
    sources = {(e["source_dag_id"], e["source_run_id"]) for e in night.asset_events}
    assert sources == {(d, f"production_{d}") for d in INGEST_DAGS}


def _span(item: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(item["start_date"]), datetime.fromisoformat(item["end_date"])


def test_ingest_runs_ran_together_and_the_pool_serialised_duckdb(night: Night):
    runs = sorted(_span(r) for r in night.runs.values())
    assert max(start for start, _ in runs) < min(end for _, end in runs), (
        f"the three ingest runs did not run at the same time: {runs}"
    )
    tis = [ti for tis in night.task_instances.values() for ti in tis]
    pooled = sorted(_span(ti) for ti in tis if ti["pool"] == DUCKDB_POOL)
    assert len(pooled) > 40
    for (a_start, a_end), (b_start, _) in pairwise(pooled):
        assert b_start >= a_end, (
            f"two {DUCKDB_POOL} tasks overlapped: {a_start}..{a_end}, {b_start}"
        )


def test_no_task_needed_a_retry(night: Night):
    retried = {
        (dag_id, ti["task_id"]): ti["try_number"]
        for dag_id, tis in night.task_instances.items()
        for ti in tis
        if ti["try_number"] != 1
    }
    # every task that writes build.duckdb (pull included) is in the one-slot pool, so no
    # task may meet DuckDB's file lock and need a retry
    assert not retried, f"tasks that failed first and were retried: {retried}"


def test_published_marts_match_the_oracle(night: Night):
    serving = night.data / "serving" / "warehouse.duckdb"
    assert serving.exists()
    expected = compute_marts(night.source)
    con = duckdb.connect(str(serving), read_only=True)
    try:
        for mart, key in MARTS.items():
            published = con.execute(f"select {', '.join(key)} from marts.{mart}").fetchall()
            assert len(published) == len(expected[mart]) > 0, mart
            assert {_key(row) for row in published} == {
                _key(row) for row in expected[mart][key].itertuples(index=False)
            }, mart
        (run,) = night.warehouse_runs
        published = con.execute(
            "select count(*) from audit.publications where run_id = ?", [run["dag_run_id"]]
        ).fetchone()[0]
        assert published == 1, "the serving file was not published by the scheduler's run"
        files, rows_in, accounted = con.execute(
            "select count(*), sum(rows_in), sum(rows_loaded + rows_quarantined) "
            "from audit.source_files"
        ).fetchone()
        assert files > 0 and rows_in == accounted
    finally:
        con.close()
    assert (night.data / "serving" / "bi.duckdb").exists()
    # the build warehouse recorded the scheduler's run from start to end
    build = duckdb.connect(str(night.data / "warehouse" / "build.duckdb"), read_only=True)
    try:
        statuses = build.execute(
            "select dag_id, status from audit.pipeline_runs where run_id = ?", [run["dag_run_id"]]
        ).fetchall()
    finally:
        build.close()
    assert statuses == [(WAREHOUSE_DAG, "success")]


def _key(row) -> tuple:
    """A grain key comparable across DuckDB rows and the oracle's frames (dates as ISO days)."""
    return tuple(v.isoformat()[:10] if hasattr(v, "isoformat") else v for v in row)


def test_every_component_was_healthy_at_the_end_of_the_night(night: Night):
    statuses = {name: (info or {}).get("status") for name, info in night.health.items()}
    assert statuses == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def test_api_refuses_anonymous_calls(night: Night):
    assert night.refused == {
        "list DAGs without a token": 401,
        "trigger without a token": 401,
        "log in with a wrong password": 401,
    }


def test_api_answers_with_a_token(night: Night):
    # Airflow answers 401 without a token and 403 for a token that fails validation
    assert night.authorized == {
        "list DAGs with the login's token": 200,
        "list DAGs with a forged signature": 403,
    }


def test_every_process_stopped_on_sigterm(night: Night):
    assert set(night.exit_codes) == set(COMPONENTS)
    killed = {n: c for n, c in night.exit_codes.items() if c is None or c == -9}
    assert not killed, f"components that needed SIGKILL: {killed}"
    assert not night.leftovers, f"processes left running: {night.leftovers}"
    assert night.seconds["stop"] < 30


def test_the_nights_missing_deliveries_are_flagged_not_fatal(night: Night):
    """The slot is last night, long after the simulated company: nothing of it was delivered.

    Expected: the ten HR files, the badge assignments and one event file per site (four
    sites in the simulator's newest sites.jsonl); layoffs expect nothing.
    """
    (run,) = night.warehouse_runs
    serving = duckdb.connect(str(night.data / "serving" / "warehouse.duckdb"), read_only=True)
    bi = duckdb.connect(str(night.data / "serving" / "bi.duckdb"), read_only=True)
    try:
        flagged = dict(
            serving.execute(
                "select source, count(*) from meta.missing_deliveries group by 1"
            ).fetchall()
        )
        recorded = serving.execute(
            "select dag_id, status, count(*) from audit.freshness group by all order by all"
        ).fetchall()
        bi_flagged = bi.execute("select count(*) from meta.missing_deliveries").fetchone()[0]
    finally:
        serving.close()
        bi.close()
    assert flagged == {"hr": 10, "badge": 5}
    assert recorded == [("rto_ingest_badge", "missing", 5), ("rto_ingest_hr", "missing", 10)]
    assert bi_flagged == 15
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run["dag_run_id"])  # as rto.publish.report names it
    page = (night.data / "reports" / "runs" / safe / "index.html").read_text()
    assert 'id="freshness-flag" class="warning"' in page
    assert "Published with 15 expected file(s) missing" in page
