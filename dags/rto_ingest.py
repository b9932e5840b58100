"""
### Nightly pull of one RTO source (hr, badge, layoffs)

One DAG per source, all built by one factory. Each run:

0. **wait_for_delivery**: waits up to the source's grace window (Variable
   `rto_grace_minutes_<source>`, default 0) for the night's expected files, deferring to the
   triggerer between looks. A delivery still missing after the window is not a failure: it
   is recorded in `audit.freshness` and flagged in the report and the serving files.
1. **pull**: lists the source folder under the `rto_source_root` Variable (an fsspec
   URL), keeps the files dated up to the night's delivery date that the manifest
   (`audit.source_files`) has not seen, and copies them into the immutable landing zone
   with their sha256 and size. A backlog of several nights is caught up in one run; a
   backfill run takes only what was delivered up to its own night.
2. **load**: loads each landed file into its `raw.*` table; rows that do not parse or
   break a row rule go to `audit.quarantine` with line number, reason and raw text.
3. **check_raw**: Great Expectations suites of `expectations/raw/` on the rows this run
   loaded; a blocking failure fails the run.

On success the run updates the source's Asset, which schedules `rto_warehouse`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from rto.config import DUCKDB_POOL
from rto.ingest.sensor import DeliverySensor
from rto.ingest.sources import SOURCES
from rto.notify import on_dag_failure, on_task_failure
from rto.orchestration import raw_asset

SCHEDULE_TZ = os.environ.get("RTO_SCHEDULE_TZ", "UTC")
SCHEDULE_CRON = os.environ.get("RTO_INGEST_CRON", "30 1 * * *")

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    # notifies (when a notifier is configured) once a task has failed for good
    "on_failure_callback": on_task_failure,
}


def ingest_dag(source: str):
    """Build the ingest DAG of one source."""

    @dag(
        dag_id=f"rto_ingest_{source}",
        schedule=CronTriggerTimetable(SCHEDULE_CRON, timezone=SCHEDULE_TZ),
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        on_failure_callback=on_dag_failure,
        tags=["rto", "ingest", source],
        doc_md=__doc__,
    )
    def _ingest():
        # pull records each landed file in the manifest (audit.source_files, in the build
        # warehouse), so it shares the single-writer pool with every other writer.
        @task(retries=3, pool=DUCKDB_POOL)
        def pull(delivery: dict, **context) -> dict:
            """Land the new files of this source (retried with exponential backoff)."""
            from datetime import date

            from rto.config import resolve_paths
            from rto.nightly import pull as do_pull

            until = date.fromisoformat(delivery["delivery_date"])
            return do_pull(
                resolve_paths(), source, context["run_id"], until, delivery, context["dag"].dag_id
            )

        @task(pool=DUCKDB_POOL)
        def load(pulled: dict, **context) -> dict:
            """Load landed files into raw tables, quarantining bad rows with their reason."""
            from rto.config import resolve_paths
            from rto.nightly import load as do_load

            return do_load(resolve_paths(), source, context["run_id"])

        # A failed check is deterministic: retrying it only delays the alert.
        @task(pool=DUCKDB_POOL, outlets=[raw_asset(source)], retries=0)
        def check_raw(loaded: dict, **context) -> dict:
            """Validate this run's raw rows; a blocking failure stops the night."""
            from rto.config import resolve_paths
            from rto.nightly import check

            return check(resolve_paths(), "raw", context["run_id"], source=source)

        # waits outside the pool: it only lists the source root
        wait = DeliverySensor(task_id="wait_for_delivery", source=source)
        check_raw(load(pull(wait.output)))

    return _ingest()


for _source in SOURCES:
    globals()[f"rto_ingest_{_source}"] = ingest_dag(_source)
