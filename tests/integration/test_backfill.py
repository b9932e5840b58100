"""Backfill: ``airflow backfill create`` over three nights gives the marts of one catch-up run.

A small company is simulated night by night (every night's HR snapshot, badge
assignments and site files under their own dates). Then, on the production
configuration (PostgreSQL metadata, LocalExecutor, scheduler, dag-processor,
triggerer and api-server as processes, see ``test_production.py``):

1. ``airflow backfill create`` for each ingest DAG over the last three nights, one run
   at a time (``--max-active-runs 1``); the scheduler executes the backfill runs, and
   each run's pull takes only the files delivered up to its own night;
2. one ``rto_warehouse`` run once every backfill run has succeeded (an
   asset-scheduled DAG cannot be backfilled; the marts are rebuilt from every raw row,
   so one run after the backfill is what the range needs). In production that is
   ``airflow dags trigger rto_warehouse``; here the stack is stopped and the run goes
   through ``dag.test`` on the same data folder (see the fixture for why).

Every published mart must equal, row for row, the marts of one catch-up night
(``dag.test``, every file at once) over the same source root.

The scheduler runs with ``use_job_schedule = False``: it then creates no scheduled run
(unpausing a ``catchup=False`` DAG would otherwise add the latest slot's run) and no
asset-triggered run (the backfill's asset events would start warehouse runs at moments
that depend on timing). Backfill and manual runs are executed as usual.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from rto.config import PROJECT_ROOT
from rto.deploy import ADMIN_USER, AirflowApi, AirflowStack, deployment_environment, free_port
from tests.integration.test_production import QUICK, metadata_db  # noqa: F401 - a fixture

pytestmark = pytest.mark.production

# After the DAGs' start_date (2024-01-01): dag.test runs no task before it.
COMPANY = dict(employees=40, start=date(2024, 4, 15), end=date(2024, 5, 31), seed=5)
# The backfilled nights: the runs at 01:30 UTC on these days process the deliveries of the
# day before (2024-05-29, -30, -31); the first one also catches up the backlog before it.
NIGHTS = [datetime(2024, 5, d, 1, 30, tzinfo=UTC) for d in (30, 31)] + [
    datetime(2024, 6, 1, 1, 30, tzinfo=UTC)
]
INGEST_DAGS = ("rto_ingest_hr", "rto_ingest_badge", "rto_ingest_layoffs")
WAREHOUSE_DAG = "rto_warehouse"
BUDGET = float(os.environ.get("RTO_TEST_BACKFILL_BUDGET", 2400))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from rto.simulator import SimulatorConfig, generate_nights

    root = tmp_path_factory.mktemp("backfill") / "source"
    generate_nights(SimulatorConfig(out=root, **COMPANY), until=COMPANY["end"])
    return root


@pytest.fixture(scope="module")
def backfilled(source, metadata_db, tmp_path_factory):  # noqa: F811 - the imported fixture
    """Backfill the three ingest DAGs on the native stack, then one warehouse run."""
    deadline = time.monotonic() + BUDGET
    data = tmp_path_factory.mktemp("backfill-data")
    home = PROJECT_ROOT / "var" / "test" / "backfill" / f"{os.getpid()}-{secrets.token_hex(3)}"
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
        pseudonym_key="backfill-test-key",
        var_dir=str(home / "var"),
        cosmos_cache_dir=str(home / "cosmos"),
    )
    env |= QUICK | {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    stack = AirflowStack(home=home, env=env, api_port=api_port)
    api = AirflowApi(stack.base_url)
    result: dict = {"data": data, "home": home}
    try:
        stack.init(timeout=300)
        stack.start()
        stack.wait_healthy(api, timeout=180, components=("metadatabase",))
        api.login(ADMIN_USER, password)
        _await_dags(stack, api, (*INGEST_DAGS, WAREHOUSE_DAG), deadline)
        for dag_id in (*INGEST_DAGS, WAREHOUSE_DAG):
            api.set_paused(dag_id, False)  # a paused DAG's backfill runs never start
        # the three CLI calls at once: each spends its time importing Airflow
        with ThreadPoolExecutor(max_workers=len(INGEST_DAGS)) as pool:
            futures = [
                pool.submit(
                    stack.run,
                    (
                        "airflow",
                        "backfill",
                        "create",
                        "--dag-id",
                        dag_id,
                        "--from-date",
                        NIGHTS[0].isoformat(),
                        "--to-date",
                        NIGHTS[-1].isoformat(),
                        "--max-active-runs",
                        "1",
                    ),
                    600,
                    f"backfill-{dag_id}",
                )
                for dag_id in INGEST_DAGS
            ]
            for future in futures:
                future.result()
        result["ingest_runs"] = _await(
            stack, api, INGEST_DAGS, deadline, lambda runs: len(runs) == 3 * len(INGEST_DAGS)
        )
        result["warehouse_runs"] = api.dag_runs(WAREHOUSE_DAG)
    except BaseException as err:
        err.add_note(f"Airflow home, process and task logs: {home}")
        raise
    finally:
        stack.stop(grace=20)
    # The final warehouse run (`airflow dags trigger rto_warehouse` in production) runs
    # through dag.test here: on this shared 2-core box each of its ~100 tasks costs tens of
    # seconds as a scheduled process, and how it is executed does not change its marts.
    from rto.cli import run_night

    assert run_night(
        str(source),
        str(data),
        logical_date=NIGHTS[-1] + timedelta(hours=1),
        dag_ids=(WAREHOUSE_DAG,),
    ), "the warehouse run after the backfill failed"
    yield result
    if not os.environ.get("RTO_KEEP_PRODUCTION_HOME"):
        shutil.rmtree(home, ignore_errors=True)


def _await_dags(stack: AirflowStack, api: AirflowApi, dag_ids, deadline: float) -> None:
    from rto.deploy import ApiError

    missing = list(dag_ids)
    while missing:
        stack.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"DAGs never parsed: {missing}")
        for dag_id in list(missing):
            try:
                api.dag(dag_id)
                missing.remove(dag_id)
            except ApiError as err:
                if err.status != 404:
                    raise
        time.sleep(1)


def _await(stack, api, dag_ids, deadline: float, complete) -> list[dict]:
    """Poll until ``complete(runs)`` holds and every run is finished; fail on a failed run."""
    while True:
        stack.check_alive()
        runs = api.all_dag_runs(dag_ids)
        failed = [r for r in runs if r["state"] == "failed"]
        assert not failed, f"failed runs: {failed}; logs under {stack.home}"
        if complete(runs) and all(r["state"] == "success" for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"not done within {BUDGET}s: {[(r['dag_run_id'], r['state']) for r in runs]}"
            )
        time.sleep(3)


@pytest.fixture(scope="module")
def caught_up(source, tmp_path_factory):
    """One catch-up night (``dag.test``) after the last backfilled night: every file at once."""
    from rto.cli import run_night

    data = tmp_path_factory.mktemp("catchup-data")
    assert run_night(str(source), str(data), logical_date=NIGHTS[-1]), "catch-up night failed"
    return data


def _marts(data) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(data / "serving" / "warehouse.duckdb"), read_only=True)
    try:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {
            t: con.execute(f'select * from marts."{t}" order by all').fetchall() for t in tables
        }
    finally:
        con.close()


def test_backfill_ran_one_run_per_night_as_backfill_runs(backfilled):
    runs = backfilled["ingest_runs"]
    for dag_id in INGEST_DAGS:
        mine = sorted((r for r in runs if r["dag_id"] == dag_id), key=lambda r: r["logical_date"])
        assert [r["run_type"] for r in mine] == ["backfill"] * 3
        assert [datetime.fromisoformat(r["logical_date"]) for r in mine] == NIGHTS
    # the scheduler started no warehouse run (use_job_schedule off): the final run did
    assert backfilled["warehouse_runs"] == []


def test_each_backfill_run_pulled_only_what_was_delivered_by_its_night(backfilled, source):
    con = duckdb.connect(str(backfilled["data"] / "serving" / "warehouse.duckdb"), read_only=True)
    try:
        pulled = con.execute(
            "select run_id, source, count(*), min(delivery_date), max(delivery_date) "
            "from audit.source_files group by all order by source, max(delivery_date)"
        ).fetchall()
        freshness = con.execute(
            "select source, delivery_date, status, count(*) from audit.freshness "
            "group by all order by all"
        ).fetchall()
        missing = con.execute("select count(*) from meta.missing_deliveries").fetchone()[0]
        files = con.execute("select count(*) from audit.source_files").fetchone()[0]
    finally:
        con.close()
    delivered = [p for p in source.rglob("*") if p.is_file()]
    assert files == len(delivered)
    by_source: dict[str, list[tuple]] = {}
    for run_id, src, n, first, last in pulled:
        assert run_id.startswith("backfill__"), run_id
        by_source.setdefault(src, []).append((n, first, last))
    days = [date(2024, 5, 29), date(2024, 5, 30), date(2024, 5, 31)]
    sites = len(list((source / "badge" / "events" / "2024-05-30").iterdir()))
    # the first backfill run caught up the backlog; each later run took one night
    hr = by_source["hr"]
    assert [(first, last) for _, first, last in hr] == [
        (COMPANY["start"], days[0]),
        (days[1], days[1]),
        (days[2], days[2]),
    ]
    assert [n for n, *_ in hr[1:]] == [10, 10]
    badge = by_source["badge"]
    assert [last for *_, last in badge] == days
    assert [n for n, *_ in badge[1:]] == [1 + sites, 1 + sites]
    # every expected file of every night was there: nothing flagged
    assert freshness == [("badge", d, "present", 1 + sites) for d in days] + [
        ("hr", d, "present", 10) for d in days
    ]
    assert missing == 0


def test_backfill_gives_the_same_marts_as_one_catch_up_run(backfilled, caught_up):
    backfill, catch_up = _marts(backfilled["data"]), _marts(caught_up)
    assert set(backfill) == set(catch_up)
    assert {"fct_rto_compliance_weekly", "fct_promotion_gate", "fct_exits"} <= set(backfill)
    assert len(backfill["fct_rto_compliance_weekly"]) > 0
    for mart, rows in catch_up.items():
        assert len(backfill[mart]) == len(rows), mart
        differ = [(a, b) for a, b in zip(backfill[mart], rows, strict=True) if a != b]
        assert not differ, f"{mart}: {len(differ)} rows differ, first {differ[:2]}"


def test_the_catch_up_night_pulled_everything_in_one_run(caught_up, source):
    con = duckdb.connect(str(caught_up / "serving" / "warehouse.duckdb"), read_only=True)
    try:
        runs = con.execute(
            "select source, count(distinct run_id), count(*), max(delivery_date) "
            "from audit.source_files group by all order by all"
        ).fetchall()
    finally:
        con.close()
    # no layoff round in 2024: nothing to pull for layoffs
    assert [(s, r) for s, r, *_ in runs] == [("badge", 1), ("hr", 1)]
    assert sum(n for _, _, n, _ in runs) == len([p for p in source.rglob("*") if p.is_file()])
    assert {s: d for s, *_, d in runs}["hr"] == NIGHTS[-1].date() - timedelta(days=1)
