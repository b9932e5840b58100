"""Retention of raw badge events: purge what is older than the window, and say so in audit.

Badge events are personal data; the marts need only their weekly aggregates. A
landed badge-event file (``badge/events/<site-day>/<site>.csv.gz``) whose
site-day is older than the retention window (default 25 months, Airflow
Variable ``rto_retention_months`` or ``AIRFLOW_VAR_RTO_RETENTION_MONTHS``) is
purged:

- its rows in ``raw.badge_events`` are deleted, and its rows in the incremental
  staging table ``staging.stg_badge__events`` once dbt has built it;
- the source text of its quarantined lines (``audit.quarantine.raw_text``) is
  cleared (the reason and line number stay: the audit trail is kept);
- its copy in the landing zone is deleted;
- its manifest row (``audit.source_files``) gets status ``purged``, so the pull
  never takes the file again, even while the source root still holds it;
- one row per file and target goes to ``audit.purges``: run id, path, target,
  rows, bytes, cutoff, window, when.

The window ends at the run's logical date, never at the wall clock. A rerun
purges nothing twice; a landing file left behind by a crash between the
database commit and the file deletion is deleted by the next run.

The marts keep their aggregates only if the next build does not rebuild them
from the purged raw rows. :func:`marts_keep_history` checks that the
badge-derived marts are incremental; :func:`run_retention` refuses to purge
otherwise, and :func:`refuse_full_refresh_after_purge` is what a
``--full-refresh`` must call (docs/DESIGN.md, "Retention").
"""

from __future__ import annotations

import calendar
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rto.warehouse import is_table

if TYPE_CHECKING:
    import duckdb

    from rto.config import Paths

log = logging.getLogger(__name__)

RETENTION_VARIABLE = "rto_retention_months"
DEFAULT_RETENTION_MONTHS = 25
# Marts whose history comes from raw badge events: they must be incremental (keep
# weeks that a rebuild could no longer compute) before raw events may be purged.
HISTORY_MODELS = (
    "int_office_presence_daily",
    "int_employee_days_available",
    "int_employee_days_required",
    "int_employee_weeks_aggregated",
    "fct_rto_compliance_weekly",
)
PURGED = "purged"


class RetentionRefused(RuntimeError):
    """A purge (or a full refresh after one) would lose history the marts must keep."""


@dataclass
class PurgeResult:
    cutoff: date
    months: int
    files: int = 0
    rows: int = 0
    bytes: int = 0
    quarantine_rows: int = 0
    paths: list[str] = field(default_factory=list)


def retention_months(configured: str | int | None = None) -> int:
    """The window in months: the argument, else the Variable/environment, else 25."""
    from rto.config import _setting

    raw = configured if configured is not None else _setting(RETENTION_VARIABLE, "")
    if raw in (None, ""):
        return DEFAULT_RETENTION_MONTHS
    try:
        months = int(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"{RETENTION_VARIABLE} must be a whole number of months, not {raw!r}"
        ) from None
    if months < 1:
        raise ValueError(f"{RETENTION_VARIABLE} must be at least 1 month, not {months}")
    return months


def cutoff_date(as_of: date, months: int) -> date:
    """The first site-day kept: ``as_of`` minus ``months`` (the day clamped to the month's end).

    Example: 2025-03-31 minus 25 months is 2023-02-28; files of 2023-02-27 and
    earlier are purged.
    """
    index = as_of.year * 12 + as_of.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(as_of.day, calendar.monthrange(year, month)[1]))


def marts_keep_history(manifest: Path) -> list[str]:
    """The history models of the dbt manifest that are *not* incremental (empty: safe)."""
    nodes = json.loads(Path(manifest).read_text())["nodes"].values()
    materialized = {
        n["name"]: n["config"].get("materialized") for n in nodes if n["resource_type"] == "model"
    }
    return [m for m in HISTORY_MODELS if materialized.get(m) != "incremental"]


def refuse_full_refresh_after_purge(con: duckdb.DuckDBPyConnection, force: bool = False) -> None:
    """Raise before a full refresh of the marts when raw events have been purged.

    A full refresh rebuilds every week from ``raw.badge_events``; the purged weeks are
    gone from there, so they would vanish from the marts. ``force`` accepts that loss.
    """
    purged = con.execute(
        "select count(distinct source_path), max(cutoff) from audit.purges "
        "where target = 'raw.badge_events'"
    ).fetchone()
    if purged[0] and not force:
        raise RetentionRefused(
            f"{purged[0]} badge-event file(s) before {purged[1]} were purged (audit.purges): "
            "a full refresh would drop their weeks from the marts for good. Run the normal "
            "incremental build, or force the full refresh knowing those weeks are lost."
        )


def purge_badge_events(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    run_id: str,
    as_of: date,
    months: int,
    purged_at: datetime,
) -> PurgeResult:
    """Purge every badge-event file whose site-day is before the cutoff; returns what went.

    Each file is one database transaction (rows, quarantine text, manifest status,
    audit rows); its landing copy is deleted after the commit.
    """
    cutoff = cutoff_date(as_of, months)
    result = PurgeResult(cutoff=cutoff, months=months)
    files = con.execute(
        "select file_id, source_path from audit.source_files "
        "where source = 'badge' and entity = 'events' and delivery_date < ? "
        "and status <> ? order by delivery_date, source_path",
        [cutoff, PURGED],
    ).fetchall()
    # a crash after an earlier commit can have left landing copies of purged files
    leftovers = con.execute(
        "select source_path from audit.source_files "
        "where source = 'badge' and entity = 'events' and status = ? order by source_path",
        [PURGED],
    ).fetchall()
    root = landing.resolve()
    # the staging copy of the events (an incremental table once dbt has built it)
    staged = is_table(con, "staging", "stg_badge__events")
    for file_id, source_path in files:
        target = _landing_file(root, source_path)
        size = target.stat().st_size if target.is_file() else 0
        con.execute("begin transaction")
        try:
            rows = con.execute(
                "delete from raw.badge_events where _file_id = ? or _source_path = ?",
                [file_id, source_path],
            ).fetchone()[0]
            staged_rows = None
            if staged:
                staged_rows = con.execute(
                    "delete from staging.stg_badge__events "
                    "where source_file_id = ? or source_path = ?",
                    [file_id, source_path],
                ).fetchone()[0]
            quarantined = con.execute(
                "update audit.quarantine set raw_text = null "
                "where (file_id = ? or source_path = ?) and raw_text is not null",
                [file_id, source_path],
            ).fetchone()[0]
            con.execute(
                "update audit.source_files set status = ?, message = ? where file_id = ?",
                [
                    PURGED,
                    f"raw rows and landed copy purged by {run_id}: site-day before {cutoff} "
                    f"({months}-month retention)",
                    file_id,
                ],
            )
            purged = [
                ("raw.badge_events", rows, None),
                ("audit.quarantine.raw_text", quarantined, None),
                ("landing", None, size),
            ]
            if staged:
                purged.append(("staging.stg_badge__events", staged_rows, None))
            for what, n_rows, n_bytes in purged:
                _record(con, run_id, source_path, what, n_rows, n_bytes, cutoff, months, purged_at)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        target.unlink(missing_ok=True)
        _remove_empty_parents(target, root)
        result.files += 1
        result.rows += rows
        result.bytes += size
        result.quarantine_rows += quarantined
        result.paths.append(source_path)
    for (source_path,) in leftovers:
        target = _landing_file(root, source_path)
        if target.is_file():
            size = target.stat().st_size
            _record(con, run_id, source_path, "landing", None, size, cutoff, months, purged_at)
            target.unlink()
            _remove_empty_parents(target, root)
            result.bytes += size
    log.info(
        "retention %d months, cutoff %s: purged %d file(s), %d raw rows, %d bytes",
        months,
        cutoff,
        result.files,
        result.rows,
        result.bytes,
    )
    return result


def _landing_file(root: Path, source_path: str) -> Path:
    """The landed copy of ``source_path``; never a path outside the landing zone."""
    target = (root / source_path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{source_path} points outside the landing zone {root}; not deleted")
    return target


def _remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the emptied site-day folders, up to (not including) the landing root."""
    parent = path.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()
        except OSError:  # not empty (or gone): stop
            return
        parent = parent.parent


def _record(con, run_id, source_path, target, rows, size, cutoff, months, purged_at) -> None:
    con.execute(
        "insert into audit.purges values (?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, source_path, target, rows, size, cutoff, months, purged_at],
    )


def run_retention(
    paths: Paths,
    run_id: str,
    as_of: date,
    purged_at: datetime,
    months: int | None = None,
    manifest: Path | None = None,
) -> dict:
    """The scheduled task: refuse when the marts would lose history, else purge.

    Args:
        as_of: the run's logical date; the window ends there.
        manifest: the dbt manifest the warehouse DAG runs (default: the Cosmos one).
    """
    from rto.orchestration import manifest_path
    from rto.warehouse import connect

    months = retention_months(months)
    rebuilt = marts_keep_history(manifest or manifest_path())
    if rebuilt:
        raise RetentionRefused(
            f"{', '.join(rebuilt)} {'are' if len(rebuilt) > 1 else 'is'} rebuilt in full "
            "from raw.badge_events every night: "
            f"purging events before {cutoff_date(as_of, months)} would drop those weeks from "
            "the marts at the next build. Make it incremental first (docs/DESIGN.md, Retention)."
        )
    with connect(paths.warehouse) as con:
        result = purge_badge_events(con, paths.landing, run_id, as_of, months, purged_at)
    return {
        "cutoff": result.cutoff.isoformat(),
        "months": result.months,
        "files": result.files,
        "rows": result.rows,
        "bytes": result.bytes,
        "quarantine_rows": result.quarantine_rows,
    }
