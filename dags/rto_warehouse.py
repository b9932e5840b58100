"""
### Nightly warehouse build: dbt, Great Expectations, publication

Scheduled on the raw Assets of the three ingest DAGs. Each run:

1. **start**: records the run in `audit.pipeline_runs`.
2. **dbt_seed**: the policy timeline and gate rules (seeds), edited by the compliance team.
   **dbt_staging** (Cosmos, one `dbt build` per model: the model plus its tests): staging
   views.
3. **check_staging**: Great Expectations suites of `expectations/staging/`.
4. **dbt_marts** (Cosmos): intermediate models and the marts with enforced contracts.
5. **check_marts**: suites of `expectations/marts/`; a blocking failure stops here.
6. **publish**: copies marts + audit to `serving/warehouse.duckdb` and pseudonymous marts
   to `serving/bi.duckdb`, each replaced atomically.
7. **reports**: dbt docs and the run's audit report under `<rto_data_dir>/reports/`.

Every task that opens the build warehouse runs in the one-slot `rto_duckdb` pool.

Params (trigger with config): `full_refresh` (rebuild the incremental models from
scratch) and `rebuild_from` / `rebuild_to` (YYYY-MM-DD: also rebuild that range).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from rto.config import DUCKDB_POOL
from rto.ingest.sources import SOURCES
from rto.notify import on_dag_failure, on_task_failure
from rto.orchestration import cosmos_setup, raw_asset, rebuild_params

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    # notifies (when a notifier is configured) once a task has failed for good
    "on_failure_callback": on_task_failure,
}


def _on_failure(context) -> None:
    """Record the failed run in audit.pipeline_runs (the failed task itself notifies)."""
    on_dag_failure(context)


@dag(
    dag_id="rto_warehouse",
    schedule=[raw_asset(s) for s in SOURCES],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=_on_failure,
    tags=["rto", "warehouse", "dbt", "great-expectations"],
    params=rebuild_params(),
    doc_md=__doc__,
)
def rto_warehouse():
    from cosmos import DbtTaskGroup

    dbt = cosmos_setup()

    @task(pool=DUCKDB_POOL)
    def start(**context) -> None:
        """Record the start of the run; refuse a full refresh that would lose purged weeks."""
        from rto.config import resolve_paths
        from rto.nightly import record_run
        from rto.retention import refuse_full_refresh_after_purge
        from rto.warehouse import connect

        paths = resolve_paths()
        params = context["params"]
        if params.get("full_refresh"):
            with connect(paths.warehouse) as con:
                refuse_full_refresh_after_purge(
                    con, force=bool(params.get("accept_purged_history_loss"))
                )
        record_run(paths, context["run_id"], "rto_warehouse", "running")

    @task(pool=DUCKDB_POOL)
    def dbt_seed() -> None:
        """Load the policy timeline and gate rules (dbt seeds) that the models read."""
        from rto.config import resolve_paths
        from rto.nightly import dbt_seed as do_seed

        do_seed(resolve_paths())

    dbt_staging = DbtTaskGroup(
        group_id="dbt_staging",
        project_config=dbt.project,
        profile_config=dbt.profile,
        execution_config=dbt.execution,
        render_config=dbt.render(["path:models/staging"]),
        operator_args=dbt.operator_args,
    )

    # A failed check is deterministic: retrying it only delays the alert.
    @task(pool=DUCKDB_POOL, retries=0)
    def check_staging(**context) -> dict:
        """Great Expectations on the staging models."""
        from rto.config import resolve_paths
        from rto.nightly import check

        return check(resolve_paths(), "staging", context["run_id"])

    dbt_marts = DbtTaskGroup(
        group_id="dbt_marts",
        project_config=dbt.project,
        profile_config=dbt.profile,
        execution_config=dbt.execution,
        render_config=dbt.render(["path:models/intermediate", "path:models/marts"]),
        operator_args=dbt.operator_args,
    )

    @task(pool=DUCKDB_POOL, retries=0)
    def check_marts(**context) -> dict:
        """Great Expectations on the marts; blocking failures stop publication."""
        from rto.config import resolve_paths
        from rto.nightly import check

        return check(resolve_paths(), "marts", context["run_id"])

    @task(pool=DUCKDB_POOL)
    def publish(**context) -> dict:
        """Replace the serving files atomically (only reached when every check passed)."""
        from rto.config import resolve_paths
        from rto.nightly import publish as do_publish

        return do_publish(resolve_paths(), context["run_id"])

    @task(pool=DUCKDB_POOL)
    def reports(**context) -> dict:
        """dbt docs and the audit report of this run."""
        from rto.config import resolve_paths
        from rto.nightly import build_reports, record_run

        paths = resolve_paths()
        out = build_reports(paths, context["run_id"])
        record_run(paths, context["run_id"], "rto_warehouse", "success")
        return out

    (
        start()
        >> dbt_seed()
        >> dbt_staging
        >> check_staging()
        >> dbt_marts
        >> check_marts()
        >> publish()
        >> reports()
    )


rto_warehouse()
