"""
### Weekly retention of raw badge events

Badge events are personal data; the marts only need their weekly aggregates. Each
run (Sunday 03:00 in `RTO_SCHEDULE_TZ`, after the night's ingest):

1. **purge_badge_events**: every landed badge-event file whose site-day is older than
   the window (Variable `rto_retention_months`, default 25, counted back from the run's
   logical date) loses its rows in `raw.badge_events`, the text of its quarantined
   lines and its landing copy; `audit.source_files` marks it `purged` (the pull never
   takes it again) and `audit.purges` records run, file, target, rows, bytes and cutoff.

The marts keep the purged weeks (the incremental models never rebuild before the
retention floor); the task refuses to purge while any badge-derived model is rebuilt in
full from the raw events. See docs/DESIGN.md, "Retention". It runs in the one-slot
`rto_duckdb` pool; a failure notifies (when a notifier is configured) and is recorded
in `audit.pipeline_runs`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from rto.config import DUCKDB_POOL
from rto.notify import on_dag_failure, on_task_failure

SCHEDULE_TZ = os.environ.get("RTO_SCHEDULE_TZ", "UTC")

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    # notifies (when a notifier is configured) once the task has failed for good
    "on_failure_callback": on_task_failure,
}


@dag(
    dag_id="rto_retention",
    schedule=CronTriggerTimetable("0 3 * * 0", timezone=SCHEDULE_TZ),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=on_dag_failure,
    tags=["rto", "retention", "privacy"],
    doc_md=__doc__,
)
def rto_retention():
    @task(pool=DUCKDB_POOL)
    def purge_badge_events(**context) -> dict:
        """Purge raw badge events older than the window and record it in audit.purges."""
        from rto.config import resolve_paths
        from rto.nightly import _now
        from rto.retention import run_retention

        # the window ends at the run's logical date (a manual run has none: its run_after)
        as_of = context.get("logical_date") or context["dag_run"].run_after
        return run_retention(resolve_paths(), context["run_id"], as_of.date(), _now())

    purge_badge_events()


rto_retention()
