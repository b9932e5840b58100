"""What "tonight's increment" is for the staging and marts checks.

The ingest DAGs and the warehouse DAG have different run ids in production
(scheduled versus asset-triggered runs), so the warehouse run cannot select its
rows by ``_run_id``. Instead it *claims* a batch of files in
``audit.night_files``: every file the loader finished (loaded or rejected)
that no published warehouse run has claimed yet. A night that was blocked
does not publish, so its files are claimed again (and checked again) by the
next night. The claim is rewritten on a retry of the same run.

- Staging increment: the staging rows whose ``source_path`` is one of the
  night's files.
- Marts increment (the big weekly fact only): rows whose date column is on or
  after the Monday of (earliest badge-event day among the night's files minus
  the dbt var ``badge_lookback_days``): the weeks the night rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rto.config import DBT_PROJECT_DIR

if TYPE_CHECKING:
    import duckdb

NIGHT_FILES_DDL = """
create table if not exists audit.night_files (
    run_id varchar not null,
    file_id varchar not null,
    claimed_at timestamp not null
)
"""

# Used when dbt_project.yml does not set ``badge_lookback_days``: a site file may
# arrive "days late" (DOMAIN.md section 3), a week covers the usual delays.
DEFAULT_BADGE_LOOKBACK_DAYS = 7
PUBLISHED_STATUSES = ("published", "success")


def claim_night_files(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> int:
    """(Re)claim the night's batch of files for ``run_id``; returns how many files it holds."""
    con.execute(NIGHT_FILES_DDL)
    con.execute("delete from audit.night_files where run_id = ?", [run_id])
    con.execute(
        """
        insert into audit.night_files
        select ?, s.file_id, ?
        from audit.source_files s
        where s.status in ('loaded', 'rejected', 'refused')
          and not exists (
            select 1
            from audit.night_files n
            join audit.pipeline_runs p
              on p.run_id = n.run_id and p.dag_id = 'rto_warehouse'
             and p.status in ('published', 'success')
            where n.file_id = s.file_id and n.run_id <> ?
          )
        """,
        [run_id, now, run_id],
    )
    return night_file_count(con, run_id)


def night_file_count(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    con.execute(NIGHT_FILES_DDL)
    return con.execute(
        "select count(*) from audit.night_files where run_id = ?", [run_id]
    ).fetchone()[0]


def badge_lookback_days(project_dir: Path = DBT_PROJECT_DIR) -> int:
    """The dbt var ``badge_lookback_days`` (how far back the night rebuilds weeks)."""
    import yaml

    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    value = (config.get("vars") or {}).get("badge_lookback_days", DEFAULT_BADGE_LOOKBACK_DAYS)
    return int(value)


@dataclass(frozen=True)
class Window:
    """The dates the night rebuilt: ``start`` inclusive (a Monday), open end."""

    start: date | None  # None: nothing was rebuilt tonight (no file in the batch)
    earliest_event_day: date | None
    lookback_days: int


def marts_window(con: duckdb.DuckDBPyConnection, run_id: str, lookback_days: int) -> Window:
    """Monday of (earliest badge-event day among the night's files - lookback).

    Event files are named by their local day, which is also the office date of
    every event in them. A night without event files (HR snapshots only) uses
    the earliest delivery date among its files.
    """
    con.execute(NIGHT_FILES_DDL)
    events_day, any_day = con.execute(
        """
        select min(s.delivery_date) filter (where s.source = 'badge' and s.entity = 'events'),
               min(s.delivery_date)
        from audit.night_files n join audit.source_files s using (file_id)
        where n.run_id = ? and s.status = 'loaded'
        """,
        [run_id],
    ).fetchone()
    first = events_day or any_day
    if first is None:
        return Window(None, None, lookback_days)
    start = first - timedelta(days=lookback_days)
    return Window(start - timedelta(days=start.weekday()), events_day, lookback_days)
