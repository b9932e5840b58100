"""What each Airflow task of the night does, as plain functions.

The DAG files only wire these together; every function takes the run id and
a ``Paths`` so it can be unit-tested without Airflow. Each function is
idempotent for a given run: a retry rewrites what the failed attempt wrote.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

from rto.config import Paths
from rto.ingest.pull import (
    FileTooLarge,
    LandedFile,
    discover,
    land,
    new_files,
    record_landed,
    record_refused,
)
from rto.ingest.sources import match
from rto.warehouse import connect

log = logging.getLogger(__name__)


def _now() -> datetime:
    """Wall-clock time for audit stamps only (never used in business logic)."""
    return datetime.now(UTC).replace(tzinfo=None)


def pull(
    paths: Paths,
    source: str,
    run_id: str,
    until: date | None = None,
    delivery: dict | None = None,
    dag_id: str | None = None,
) -> dict:
    """Land every file of ``source`` that the manifest has not seen; returns counts.

    Args:
        until: only files with a delivery date on or before this day are taken (the night's
            delivery date), so a backfill run replays the deliveries of its own night. A file
            dated earlier that arrives late is still taken the first night it is there.
        delivery: what the delivery sensor expected and found missing; recorded in
            ``audit.freshness`` (a missing file is a warning, never a failure).
        dag_id: the DAG recording the freshness rows.
    """
    with connect(paths.warehouse) as con:
        if delivery is not None:
            from rto.ingest.freshness import record_freshness

            record_freshness(con, delivery, run_id, dag_id or f"rto_ingest_{source}", _now())
        listed = discover(paths.source_root, source)
        later = [f for f in listed if until is not None and f.delivery_date > until]
        if later:
            log.info(
                "%s: %d file(s) dated after %s left for the nights they belong to",
                source,
                len(later),
                until,
            )
        fresh = new_files(con, [f for f in listed if f not in later])
        total_bytes = 0
        # The manifest rows are committed 500 files at a time, not one commit per file (a
        # commit per file was most of the pull's time at thousands of files). A failure
        # loses at most the uncommitted rows: their files are landed again, unchanged, by
        # the next pull (the landing zone accepts an identical copy).
        con.execute("begin")
        for i, f in enumerate(fresh, start=1):
            try:
                landed = land(paths.source_root, paths.landing, f)
            except FileTooLarge as exc:
                log.error("%s", exc)
                record_refused(con, f, str(exc), run_id, _now())
                continue
            record_landed(con, landed, run_id, _now())
            total_bytes += landed.bytes
            if i % 500 == 0 or i == len(fresh):
                con.execute("commit; begin")
                log.info("landed %d/%d %s files (%d bytes)", i, len(fresh), source, total_bytes)
        con.execute("commit")
    log.info("%s: %d new file(s) landed from %s", source, len(fresh), paths.source_root)
    return {
        "source": source,
        "files": len(fresh),
        "bytes": total_bytes,
        "until": until.isoformat() if until else None,
        "missing": list(delivery["missing"]) if delivery else [],
    }


def load_batch_bytes() -> int:
    """Landed bytes read by one ``read_csv`` in the loader (``RTO_LOAD_BATCH_BYTES``)."""
    import os

    return int(os.environ.get("RTO_LOAD_BATCH_BYTES", 64 * 1024 * 1024))


def load(paths: Paths, source: str, run_id: str) -> dict:
    """Load every landed-but-not-loaded file of ``source`` into its raw table.

    CSV files of one kind are read together, up to ``load_batch_bytes()`` landed bytes per
    read (one transaction each); JSON-lines files one by one.
    """
    from rto.ingest.load import load_file, load_files

    totals = {"source": source, "files": 0, "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0}
    limit = load_batch_bytes()
    with connect(paths.warehouse) as con:
        pending = con.execute(
            "select file_id, source_path, sha256, bytes from audit.source_files "
            "where source = ? and status = 'landed' order by delivery_date, source_path",
            [source],
        ).fetchall()
        batches: list[list[LandedFile]] = []
        batch_bytes = 0
        for file_id, source_path, sha, size in pending:
            spec, delivery = match(source_path)
            landed = LandedFile(
                file_id, source_path, spec, delivery, paths.landing / source_path, sha, size
            )
            batch = batches[-1] if batches else None
            if (
                batch
                and spec.fmt == "csv"
                and batch[0].spec == spec
                and batch_bytes + size <= limit
            ):
                batch.append(landed)
                batch_bytes += size
            else:
                batches.append([landed])
                batch_bytes = size
        done = 0
        work = paths.data_dir / "tmp"
        for batch in batches:
            if batch[0].spec.fmt == "csv":
                results = load_files(con, batch, run_id, work, _now())
            else:
                results = [load_file(con, f, run_id, work, _now()) for f in batch]
            for result in results:
                totals["files"] += 1
                for key in ("rows_in", "rows_loaded", "rows_quarantined"):
                    totals[key] += asdict(result)[key]
            done += len(batch)
            if len(batch) > 1 or done % 200 == 0 or done == len(pending):
                log.info("loaded %d/%d %s files: %s", done, len(pending), source, totals)
    return totals


def check(paths: Paths, step: str, run_id: str, source: str | None = None) -> dict:
    """Run the Great Expectations suites of a step on the night's increment.

    Staging and marts steps also rebuild this run's own Data Docs site under
    ``reports/runs/<run>/data_docs/``. Raises when a blocking expectation failed.
    """
    from rto.publish.report import run_folder
    from rto.quality.validate import run_step

    run_docs = None if step == "raw" else run_folder(paths, run_id) / "data_docs"
    with connect(paths.warehouse) as con:
        outcome = run_step(
            con, paths.gx_root, step, run_id, _now(), source=source, run_docs=run_docs
        )
    outcome.raise_if_blocked()
    window = outcome.window
    return {
        "step": step,
        "checked": outcome.checked,
        "warnings": outcome.failed_warning,
        "rows_checked": outcome.rows_checked,
        "night_files": outcome.night_files,
        "window_start": str(window.start) if window and window.start else None,
        "seconds": round(outcome.seconds, 2),
        "data_docs": str(outcome.data_docs) if outcome.data_docs else None,
        "run_data_docs": str(outcome.run_data_docs) if outcome.run_data_docs else None,
    }


def record_run(
    paths: Paths, run_id: str, dag_id: str, status: str, message: str | None = None
) -> None:
    """Upsert this run's row in ``audit.pipeline_runs``."""
    now = _now()
    with connect(paths.warehouse) as con:
        started = con.execute(
            "select min(started_at) from audit.pipeline_runs where run_id = ? and dag_id = ?",
            [run_id, dag_id],
        ).fetchone()[0]
        con.execute(
            "delete from audit.pipeline_runs where run_id = ? and dag_id = ?", [run_id, dag_id]
        )
        con.execute(
            "insert into audit.pipeline_runs values (?, ?, ?, ?, ?, ?)",
            [run_id, dag_id, started or now, None if status == "running" else now, status, message],
        )


def publish(paths: Paths, run_id: str) -> dict:
    """Publish the serving files.

    The run is marked ``published`` and the publication recorded before the copy, so the
    audit schema in the serving file describes the night that produced it.
    """
    from rto.publish.serve import publish as do_publish

    record_run(paths, run_id, "rto_warehouse", "published")
    with connect(paths.warehouse) as con:
        counts = con.execute(
            "select count(*), coalesce(sum(estimated_size), 0) from duckdb_tables() "
            "where schema_name = 'marts'"
        ).fetchone()
        con.execute("delete from audit.publications where run_id = ?", [run_id])
        con.execute(
            "insert into audit.publications values (?, ?, ?, ?, ?)",
            [run_id, _now(), str(paths.serving_dir), counts[0], counts[1]],
        )
        result = do_publish(con, paths.serving_dir, paths.data_dir, run_id)
    return {name: {**v, "path": str(paths.serving_dir / name)} for name, v in result.items()}


def run_dbt(paths: Paths, args: list[str], target: str = "run-target") -> Path:
    """Run dbt in-process on the project in place; returns the target folder it wrote.

    Uses its own target folder so it never rewrites the manifest Cosmos renders from.
    Invocations with other ``--vars`` take a ``target`` of their own: dbt parses the
    whole project again when the vars differ from its last parse in that folder.
    """
    import os

    from dbt.cli.main import dbtRunner

    from rto.config import DBT_PROJECT_DIR, VAR_DIR, dbt_env

    env = dbt_env(paths) | {"DBT_TARGET_PATH": str(VAR_DIR / "dbt" / target)}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = dbtRunner().invoke([*args, "--project-dir", str(DBT_PROJECT_DIR)])
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if not result.success:
        raise RuntimeError(f"dbt {' '.join(args)} failed: {result.exception or result.result}")
    return Path(env["DBT_TARGET_PATH"])


def dbt_seed(paths: Paths) -> None:
    """Load the reference seeds (policy timeline, gate rules) in place.

    Seeds run outside Cosmos: dbt-duckdb reads a seed's CSV from the path recorded at
    parse time, which a cached partial parse would point at another task's deleted copy.
    """
    run_dbt(paths, ["seed"])


LINEAGE_VARS = ["--vars", "{lineage_views: true}"]
LINEAGE_TARGET = "lineage-target"  # the lineage vars keep their own partial parse


def dbt_lineage(paths: Paths) -> None:
    """(Re)create the lineage views (``dbt_project/models/lineage``): mart key -> files.

    Views over staging and ``audit.source_files``: nothing is copied, an auditor's query
    for one key reads only what it needs. Off in a bare ``dbt build`` (see the models).
    """
    run_dbt(paths, ["run", "--select", "path:models/lineage", *LINEAGE_VARS], LINEAGE_TARGET)


def dbt_docs(paths: Paths) -> Path:
    """Generate the static dbt docs site (one self-contained HTML file) into the reports."""
    import shutil

    target_dir = run_dbt(paths, ["docs", "generate", "--static", *LINEAGE_VARS], LINEAGE_TARGET)
    target = paths.reports / "dbt_docs" / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target_dir / "static_index.html", target)
    return target


def build_reports(paths: Paths, run_id: str) -> dict:
    """dbt docs, the lineage views and the static audit report of this run.

    The dbt docs are copied into the run's folder too, so an older run's report links
    to the docs of the models that produced it.
    """
    import shutil

    from rto.publish.report import run_folder, write_report

    dbt_lineage(paths)
    docs = dbt_docs(paths)
    run_docs = run_folder(paths, run_id) / "dbt_docs" / "index.html"
    run_docs.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(docs, run_docs)
    with connect(paths.warehouse) as con:
        report = write_report(con, paths, run_id, dbt_docs=run_docs)
    return {"report": str(report), "dbt_docs": str(run_docs)}
