"""Late and missing deliveries: what a night expects, how long it waits, what it records.

The night whose data interval ends at ``end`` (01:30 in the schedule's time zone) expects
the deliveries dated the local day before, ``D = local_date(end) - 1`` (DOMAIN.md
section 3):

- hr: the ten ``hr/<D>/<entity>.jsonl`` snapshot files;
- badge: ``badge/assignments/<D>.csv.gz`` and one ``badge/events/<D>/<site>.csv.gz`` per
  site of the newest ``hr/<d>/sites.jsonl`` with ``d <= D`` found under the source root;
- layoffs: nothing (rounds are delivered when decided, never nightly).

:class:`rto.ingest.sensor.DeliverySensor` waits for them up to a grace window per source (Variable
``rto_grace_minutes_<source>``, default 0), deferring to the triggerer between looks, and
never fails on a missing file: the pull records what is still missing in
``audit.freshness`` and the night goes on with what it has.

Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

GRACE_VARIABLE = "rto_grace_minutes_{source}"

# The snapshot files of one HR delivery, in DOMAIN.md order.
HR_ENTITIES = (
    "sites",
    "org_units",
    "employees",
    "job_history",
    "leave",
    "holidays",
    "team_policies",
    "exceptions",
    "nominations",
    "approvals",
)

# Deliveries still missing, as of now: what the latest check of each source found missing
# and has not arrived since. Serving files and the audit report show these.
OPEN_MISSING_SQL = """
    with latest as (
        select source, max(checked_at) as checked_at from audit.freshness group by source
    )
    select f.source, f.delivery_date, f.expected_path, f.run_id, f.grace_minutes, f.checked_at
    from audit.freshness f
    join latest using (source, checked_at)
    where f.status = 'missing'
      and not exists (
          select 1 from audit.source_files s where s.source_path = f.expected_path
      )
    order by f.source, f.expected_path
"""


def grace_minutes(source: str) -> float:
    """The grace window of a source in minutes (Variable, else environment, else 0)."""
    from rto.config import _setting

    name = GRACE_VARIABLE.format(source=source)
    raw = _setting(name, "0")
    try:
        minutes = float(raw)
    except ValueError:
        raise ValueError(
            f"the Variable {name} (or AIRFLOW_VAR_{name.upper()}) must be a number of minutes, "
            f"not {raw!r}"
        ) from None
    if minutes < 0:
        raise ValueError(f"the Variable {name} must not be negative (got {minutes})")
    return minutes


def schedule_timezone() -> str:
    return os.environ.get("RTO_SCHEDULE_TZ", "UTC")


def delivery_date_for(run_end: datetime, tz: str | None = None) -> date:
    """The delivery date a night processes: the local day before its data interval end."""
    from zoneinfo import ZoneInfo

    if run_end.tzinfo is None:
        run_end = run_end.replace(tzinfo=UTC)
    return run_end.astimezone(ZoneInfo(tz or schedule_timezone())).date() - timedelta(days=1)


def _site_ids(fs, root: str, day: date) -> list[str]:
    """Site ids of the newest HR sites snapshot dated on or before ``day`` (empty if none)."""
    hr = posixpath.join(root, "hr")
    if not fs.exists(hr):
        return []
    dated = []
    for entry in fs.ls(hr, detail=False):
        name = posixpath.basename(entry.rstrip("/"))
        try:
            d = date.fromisoformat(name)
        except ValueError:
            continue
        if d <= day and fs.exists(posixpath.join(hr, name, "sites.jsonl")):
            dated.append(name)
    if not dated:
        return []
    ids = []
    with fs.open(posixpath.join(hr, max(dated), "sites.jsonl"), "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                site_id = json.loads(line).get("site_id")
            except (ValueError, AttributeError):
                continue  # the loader quarantines it; the sensor only needs the good rows
            if isinstance(site_id, str) and site_id.isalnum():
                ids.append(site_id)
    return sorted(set(ids))


def expected_paths(source_root: str, source: str, day: date) -> list[str]:
    """The paths (relative to the source root) the night of delivery ``day`` expects."""
    if source == "hr":
        return [f"hr/{day.isoformat()}/{entity}.jsonl" for entity in HR_ENTITIES]
    if source == "badge":
        from rto.ingest.pull import _filesystem

        fs, root = _filesystem(source_root)
        events = [
            f"badge/events/{day.isoformat()}/{site}.csv.gz" for site in _site_ids(fs, root, day)
        ]
        return [f"badge/assignments/{day.isoformat()}.csv.gz", *events]
    return []  # layoffs: not nightly


def missing_paths(source_root: str, paths: list[str]) -> list[str]:
    """Those of ``paths`` not present under the source root."""
    if not paths:
        return []
    from rto.ingest.pull import _filesystem

    fs, root = _filesystem(source_root)
    return [p for p in paths if not fs.exists(posixpath.join(root, p))]


def record_freshness(
    con: duckdb.DuckDBPyConnection,
    check: dict,
    run_id: str,
    dag_id: str,
    checked_at: datetime,
) -> int:
    """Write one row per expected file of this run's check; returns how many are missing.

    A rerun of the same run replaces its rows.
    """
    con.execute("delete from audit.freshness where run_id = ? and dag_id = ?", [run_id, dag_id])
    missing = set(check["missing"])
    rows = [
        (
            run_id,
            dag_id,
            check["source"],
            check["delivery_date"],
            path,
            "missing" if path in missing else "present",
            check["grace_minutes"],
            checked_at,
        )
        for path in check["expected"]
    ]
    if rows:
        con.executemany("insert into audit.freshness values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if missing:
        log.warning(
            "%s: %d expected file(s) of delivery %s still missing after a grace window of "
            "%s min; the night goes on without them: %s",
            check["source"],
            len(missing),
            check["delivery_date"],
            check["grace_minutes"],
            ", ".join(sorted(missing)),
        )
    return len(missing)
