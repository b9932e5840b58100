"""``rto-pipeline``: run a night through Airflow from the command line.

    rto-pipeline run [--source-root URL] [--data-dir DIR]   one night, every DAG, via dag.test
    rto-pipeline demo [--employees N ...]                    simulate a company, run, summarise
    rto-pipeline summary [--data-dir DIR]                    print the published figures
    rto-pipeline parse                                       refresh the dbt manifest

Exit status is non-zero when the night failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from rto.config import (
    DATA_DIR_VARIABLE,
    DBT_PROJECT_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_SOURCE_ROOT,
    DUCKDB_POOL,
    PROJECT_ROOT,
    SOURCE_ROOT_VARIABLE,
    VAR_DIR,
    dbt_env,
    resolve_paths,
)

INGEST_DAGS = ("rto_ingest_hr", "rto_ingest_badge", "rto_ingest_layoffs")
WAREHOUSE_DAG = "rto_warehouse"


def airflow_environment() -> dict[str, str]:
    """Airflow settings that keep every artefact inside the project's ignored var/ folder."""
    return {
        "AIRFLOW_HOME": str(VAR_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(VAR_DIR / "cosmos"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }


def _set_default_env() -> None:
    for key, value in airflow_environment().items():
        os.environ.setdefault(key, value)


def parse_manifest() -> Path:
    """Run ``dbt parse`` so Cosmos can render the DAG from the manifest."""
    from dbt.cli.main import dbtRunner

    env = dbt_env(resolve_paths())
    for key, value in env.items():
        os.environ.setdefault(key, value)
    result = dbtRunner().invoke(["parse", "--project-dir", str(DBT_PROJECT_DIR), "--quiet"])
    if not result.success:
        raise SystemExit(f"dbt parse failed: {result.exception}")
    return Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json"


def _manifest_stale() -> bool:
    manifest = Path(os.environ.get("DBT_TARGET_PATH", VAR_DIR / "dbt" / "target")) / "manifest.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(
        p.stat().st_mtime > built
        for p in DBT_PROJECT_DIR.rglob("*")
        if p.is_file() and "target" not in p.parts
    )


def prepare_airflow() -> None:
    """Create or migrate the metadata database when needed, and the DuckDB pool."""
    import subprocess

    from airflow import settings
    from sqlalchemy import inspect

    if not inspect(settings.engine).has_table("slot_pool"):
        print("preparing the Airflow metadata database ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        Pool.create_or_update_pool(
            DUCKDB_POOL,
            slots=1,
            include_deferred=False,
            description="DuckDB build warehouse: a single writer",
            session=session,
        )


def run_night(
    source_root: str | None,
    data_dir: str | None,
    logical_date=None,
    dag_ids: tuple[str, ...] = (*INGEST_DAGS, WAREHOUSE_DAG),
) -> bool:
    """Run every DAG of one night (or only ``dag_ids``) in dependency order through ``dag.test``."""
    _set_default_env()
    if source_root:
        os.environ[f"AIRFLOW_VAR_{SOURCE_ROOT_VARIABLE.upper()}"] = source_root
    if data_dir:
        os.environ[f"AIRFLOW_VAR_{DATA_DIR_VARIABLE.upper()}"] = str(Path(data_dir).resolve())
    os.environ.update(
        {k: v for k, v in dbt_env(resolve_paths()).items() if k not in ("RTO_WAREHOUSE_PATH",)}
    )
    if _manifest_stale():
        print("parsing the dbt project ...", flush=True)
        parse_manifest()
    prepare_airflow()

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        return False
    if logical_date is None:
        # dag.test clears the task instances of the logical date it is given; without one it
        # would clear every earlier run of the DAG in the metadata database.
        from datetime import UTC, datetime

        logical_date = datetime.now(UTC)
    too_early = {
        d: bag.dags[d].start_date for d in dag_ids if logical_date < bag.dags[d].start_date
    }
    if too_early:
        # dag.test schedules no task before a DAG's start_date and still reports success
        print(
            f"logical date {logical_date} is before the start_date of {too_early}: "
            "dag.test would run nothing",
            file=sys.stderr,
        )
        return False
    ok = True
    for dag_id in dag_ids:
        started = time.monotonic()
        print(f"running {dag_id} ...", flush=True)
        dag_run = bag.dags[dag_id].test(logical_date=logical_date)
        state = str(getattr(dag_run, "state", "unknown"))
        print(f"  {dag_id}: {state} in {time.monotonic() - started:.1f}s", flush=True)
        if not state.endswith("success"):
            ok = False
            break
    return ok


def summary(data_dir: str | None) -> str:
    """The short summary the demo prints, read from the published serving file."""
    import duckdb

    paths = resolve_paths(data_dir=data_dir)
    serving = paths.serving_warehouse
    if not serving.exists():
        return f"nothing published yet under {paths.serving_dir}"
    con = duckdb.connect(str(serving), read_only=True)
    try:
        lines = [
            f"published marts:      {serving}",
            f"BI (pseudonymous):    {paths.serving_bi}",
            f"audit report:         {paths.reports / 'index.html'}",
            f"data docs (GX):       {paths.gx_root / 'gx/uncommitted/data_docs/local_site/index.html'}",
            f"dbt docs:             {paths.reports / 'dbt_docs' / 'index.html'}",
            "",
            "compliance rate per month (compliant weeks / weeks with a requirement):",
        ]
        for month, compliant, required, rate in con.execute(
            "select strftime(date_trunc('month', week_start), '%Y-%m'), "
            "count(*) filter (where status = 'compliant'), "
            "count(*) filter (where status <> 'no_requirement'), "
            "round(count(*) filter (where status = 'compliant') / "
            "nullif(count(*) filter (where status <> 'no_requirement'), 0), 3) "
            "from marts.fct_rto_compliance_weekly group by 1 order by 1"
        ).fetchall():
            lines.append(
                f"  {month}  {rate if rate is not None else '-':>6}  ({compliant}/{required})"
            )
        lines.append("promotion gate outcomes:")
        for status, flag, n in con.execute(
            "select gate_status, coalesce(audit_flag, ''), count(*) "
            "from marts.fct_promotion_gate group by 1, 2 order by 1, 2"
        ).fetchall():
            lines.append(f"  {status:<22} {flag:<24} {n}")
        lines.append("exits by type and compliance band (band at the month start):")
        for band, vol, invol, layoff in con.execute(
            "select compliance_band, sum(exits_voluntary), sum(exits_involuntary), "
            "sum(exits_layoff) from marts.fct_attrition_monthly group by 1 order by 1"
        ).fetchall():
            lines.append(
                f"  {band:<15} voluntary {vol:>5}  involuntary {invol:>5}  layoff {layoff:>5}"
            )
        files, rows_in, loaded, quarantined = con.execute(
            "select count(*), sum(rows_in), sum(rows_loaded), sum(rows_quarantined) "
            "from audit.source_files"
        ).fetchone()
        lines.append(
            f"source files: {files}; rows in {rows_in} = loaded {loaded} + "
            f"quarantined {quarantined}"
        )
        return "\n".join(lines)
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rto-pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one night through Airflow (dag.test)")
    demo = sub.add_parser("demo", help="simulate a company, run one night, print a summary")
    for p in (run, demo):
        p.add_argument(
            "--source-root", help=f"fsspec URL (default: Variable, else {DEFAULT_SOURCE_ROOT})"
        )
        p.add_argument(
            "--data-dir", help=f"local folder (default: Variable, else {DEFAULT_DATA_DIR})"
        )
        p.add_argument("--logical-date", type=date.fromisoformat, help="logical date of the runs")
    demo.add_argument("--employees", type=int, default=2000)
    demo.add_argument("--start", type=date.fromisoformat, default=date(2022, 10, 3))
    demo.add_argument("--end", type=date.fromisoformat, default=date(2025, 3, 30))
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument(
        "--messy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="inject the simulator's messy-delivery quirks (default: on)",
    )
    summ = sub.add_parser("summary", help="print the published figures")
    summ.add_argument("--data-dir")
    sub.add_parser("parse", help="refresh the dbt manifest Cosmos renders from")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    _set_default_env()
    if args.command == "parse":
        print(parse_manifest())
        return 0
    if args.command == "summary":
        print(summary(args.data_dir))
        return 0

    logical = None
    if args.logical_date:
        from datetime import datetime, timezone

        logical = datetime.combine(args.logical_date, datetime.min.time(), tzinfo=timezone.utc)
    started = time.monotonic()
    if args.command == "demo":
        from rto.simulator import QuirkRates, SimulatorConfig, generate

        source_root = Path(args.source_root or DEFAULT_SOURCE_ROOT)
        data_dir = Path(args.data_dir or DEFAULT_DATA_DIR)
        for folder in (source_root, data_dir):
            shutil.rmtree(folder, ignore_errors=True)
        print(
            f"simulating {args.employees} employees from {args.start} to {args.end} "
            f"into {source_root} ...",
            flush=True,
        )
        generated = generate(
            SimulatorConfig(
                out=source_root,
                employees=args.employees,
                start=args.start,
                end=args.end,
                seed=args.seed,
                quirks=QuirkRates.demo(args.start, args.end) if args.messy else QuirkRates(),
            )
        )
        print(generated.format(), flush=True)
        args.source_root, args.data_dir = str(source_root), str(data_dir)
    ok = run_night(args.source_root, args.data_dir, logical)
    print(f"night {'succeeded' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s")
    if ok:
        print(summary(args.data_dir))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
