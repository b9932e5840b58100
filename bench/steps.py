"""The single steps ``bench/run.py`` measures, each run as its own process.

    python bench/steps.py warehouse-dag --source-root DIR --data-dir DIR
    python bench/steps.py lower-bound --landing DIR --out FILE.json
    python bench/steps.py compare-weekly --warehouse FILE --peer FILE.parquet --out FILE.json
    python bench/steps.py pg-copy --warehouse FILE --dbname NAME
    python bench/steps.py night --out DIR --employees N --start D --end D --seed S --night D

Each prints one JSON line with its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path


def warehouse_dag(source_root: str, data_dir: str) -> int:
    """Only the ``rto_warehouse`` DAG through ``dag.test``, set up exactly as ``rto.cli`` does."""
    import os

    from rto import cli
    from rto.config import (
        DATA_DIR_VARIABLE,
        PROJECT_ROOT,
        SOURCE_ROOT_VARIABLE,
        dbt_env,
        resolve_paths,
    )

    cli._set_default_env()
    os.environ[f"AIRFLOW_VAR_{SOURCE_ROOT_VARIABLE.upper()}"] = source_root
    os.environ[f"AIRFLOW_VAR_{DATA_DIR_VARIABLE.upper()}"] = str(Path(data_dir).resolve())
    os.environ.update(
        {k: v for k, v in dbt_env(resolve_paths()).items() if k != "RTO_WAREHOUSE_PATH"}
    )
    if cli._manifest_stale():
        cli.parse_manifest()
    cli.prepare_airflow()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        print(bag.import_errors, file=sys.stderr)
        return 1
    run = bag.dags[cli.WAREHOUSE_DAG].test(logical_date=datetime.now(UTC))
    state = str(getattr(run, "state", "unknown"))
    print(json.dumps({"state": state}))
    return 0 if state.endswith("success") else 1


LOWER_BOUND_SQL = """
with assignments as (
    select badge_id, employee_id, valid_from, valid_to
    from read_csv('{assignments}', header = true, all_varchar = true)
    where badge_type = 'EMPLOYEE' and coalesce(employee_id, '') <> ''
),
typed as (
    select badge_id, employee_id,
           cast(nullif(valid_from, '') as timestamp) as valid_from,
           cast(nullif(valid_to, '') as timestamp) as valid_to
    from assignments
),
events as (
    select badge_id, event_time
    from read_csv('{events}', header = true, union_by_name = false,
                  columns = {{'event_id': 'VARCHAR', 'badge_id': 'VARCHAR',
                             'site_id': 'VARCHAR', 'reader_id': 'VARCHAR',
                             'event_time': 'TIMESTAMP', 'direction': 'VARCHAR',
                             'result': 'VARCHAR'}})
    where result = 'GRANTED'
),
office_days as (
    select distinct a.employee_id, cast(e.event_time as date) as day
    from events as e
    inner join typed as a
        on e.badge_id = a.badge_id
        and (a.valid_from is null or a.valid_from <= e.event_time)
        and (a.valid_to is null or e.event_time < a.valid_to)
    where isodow(cast(e.event_time as date)) <= 5
)
select employee_id, date_trunc('week', day) as week_start, count(*) as office_days
from office_days
group by all
"""


def lower_bound(landing: Path, out: Path) -> int:
    """Scan every landed badge event file once; weekly office-day counts per employee."""
    import duckdb

    assignments = sorted((landing / "badge" / "assignments").glob("*.csv.gz"))[-1]
    events = landing / "badge" / "events" / "*" / "*.csv.gz"
    con = duckdb.connect()
    started = time.monotonic()
    rows, total = con.execute(
        "select count(*), sum(office_days) from ("
        + LOWER_BOUND_SQL.format(assignments=assignments, events=events)
        + ")"
    ).fetchone()
    result = {
        "rows": rows,
        "office_days": int(total or 0),
        "seconds": round(time.monotonic() - started, 1),
    }
    out.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


def compare_weekly(warehouse: Path, peer: Path, out: Path) -> int:
    """Do the pandas peer and the pipeline's mart hold the same rows (both directions)?"""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    cols = (
        "employee_id, week_start, org_unit_id, policy_id, available_days, required_days, "
        "office_days, status, has_exception"
    )
    mart = f"select {cols} from marts.fct_rto_compliance_weekly"
    peer_sql = (
        f"select employee_id, cast(week_start as date) as week_start, org_unit_id, policy_id, "
        f"cast(available_days as integer), cast(required_days as integer), "
        f"cast(office_days as integer), status, has_exception from read_parquet('{peer}')"
    )
    n_mart = con.execute(f"select count(*) from ({mart})").fetchone()[0]
    n_peer = con.execute(f"select count(*) from ({peer_sql})").fetchone()[0]
    only_mart = con.execute(f"select count(*) from ({mart} except all {peer_sql})").fetchone()[0]
    only_peer = con.execute(f"select count(*) from ({peer_sql} except all {mart})").fetchone()[0]
    sample = con.execute(
        f"select * from ({mart} except all {peer_sql}) order by 1, 2 limit 3"
    ).fetchall()
    result = {
        "mart_rows": n_mart,
        "peer_rows": n_peer,
        "only_in_mart": only_mart,
        "only_in_peer": only_peer,
        "same_rows": only_mart == 0 and only_peer == 0,
        "sample_only_in_mart": [[str(v) for v in r] for r in sample],
    }
    out.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0 if result["same_rows"] else 1


def pg_copy(warehouse: Path, dbname: str) -> int:
    from rto.postgres import connect, copy_warehouse

    con = connect(dbname=dbname)
    try:
        copied = copy_warehouse(warehouse, con)
    finally:
        con.close()
    print(json.dumps({"rows": sum(copied.values()), "tables": len(copied)}))
    return 0


def night(args: argparse.Namespace) -> int:
    """The files the simulator delivers on one more night (night mode), into ``--out``."""
    from rto.simulator import SimulatorConfig, generate_night

    config = SimulatorConfig(
        out=Path(args.out),
        employees=args.employees,
        start=args.start,
        end=args.end or args.night,
        seed=args.seed,
        workers=2,
    )
    summary = generate_night(config, args.night)
    print(json.dumps({"rows": summary.rows, "seconds": round(summary.seconds, 1)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("warehouse-dag")
    p.add_argument("--source-root", required=True)
    p.add_argument("--data-dir", required=True)
    p = sub.add_parser("lower-bound")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("compare-weekly")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--peer", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("pg-copy")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--dbname", required=True)
    p = sub.add_parser("night")
    p.add_argument("--out", required=True)
    p.add_argument("--employees", type=int, required=True)
    p.add_argument("--start", type=date.fromisoformat, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--night", type=date.fromisoformat, required=True)
    p.add_argument(
        "--end",
        type=date.fromisoformat,
        help="the last day the company is simulated to (as for the full data; default --night)",
    )
    args = parser.parse_args(argv)
    if args.step == "warehouse-dag":
        return warehouse_dag(args.source_root, args.data_dir)
    if args.step == "lower-bound":
        return lower_bound(args.landing, args.out)
    if args.step == "compare-weekly":
        return compare_weekly(args.warehouse, args.peer, args.out)
    if args.step == "pg-copy":
        return pg_copy(args.warehouse, args.dbname)
    return night(args)


if __name__ == "__main__":
    sys.exit(main())
