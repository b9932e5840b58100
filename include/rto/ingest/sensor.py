"""The deferrable sensor of the ingest DAGs: wait for the night's delivery, up to a grace window.

What a night expects and how a missing file is recorded live in :mod:`rto.ingest.freshness`.
Only the standard library and ``airflow.sdk`` are imported at module level: the DAG files
import this module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

# How often a waiting sensor looks again while its grace window is open.
DEFAULT_POKE_INTERVAL = timedelta(minutes=5)


class DeliverySensor(BaseOperator):
    """Wait up to the source's grace window for the night's delivery, then go on regardless.

    Deferrable: between looks it hands a ``DateTimeTrigger`` to the triggerer (``dag.test``
    runs the trigger inline), so a waiting night holds no worker slot. It never fails for a
    missing file; it returns what it expected and what is missing (an XCom for ``pull``).
    A grace window of 0 looks once and never defers.
    """

    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        source: str,
        poke_interval: timedelta = DEFAULT_POKE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.poke_interval = poke_interval

    def execute(self, context) -> dict:
        return self._look(context)

    def execute_complete(self, context, event: Any = None) -> dict:
        """Called when the trigger fires: look again."""
        return self._look(context)

    def _look(self, context) -> dict:
        from rto.config import resolve_paths
        from rto.ingest.freshness import (
            delivery_date_for,
            expected_paths,
            grace_minutes,
            missing_paths,
        )

        end = context.get("data_interval_end") or context["dag_run"].run_after
        day = delivery_date_for(end)
        paths = resolve_paths()
        expected = expected_paths(paths.source_root, self.source, day)
        missing = missing_paths(paths.source_root, expected)
        grace = grace_minutes(self.source)
        deadline = end + timedelta(minutes=grace)
        # wall-clock time only decides whether to wait longer, never what is loaded
        now = datetime.now(UTC)
        if missing and now < deadline:
            wake = min(deadline, now + self.poke_interval)
            self.log.info(
                "%d of %d expected %s file(s) of %s missing; looking again at %s (grace ends %s)",
                len(missing),
                len(expected),
                self.source,
                day,
                wake.isoformat(),
                deadline.isoformat(),
            )
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=wake), method_name="execute_complete")
        if missing:
            self.log.warning(
                "grace window over: %d expected %s file(s) of %s missing: %s",
                len(missing),
                self.source,
                day,
                ", ".join(missing),
            )
        return {
            "source": self.source,
            "delivery_date": day.isoformat(),
            "expected": expected,
            "missing": missing,
            "grace_minutes": grace,
        }
