"""Time one night's raw + staging + marts checks at the 350,000-employee scale.

    uv run python bench/checks_at_scale.py [--employees 350000] [--start 2024-01-08]
                                           [--end 2024-01-21] [--out var/bench]

1. The simulator writes a company for a short period (two ISO weeks by default).
2. Night 1 pulls and loads every file except the badge-event files of the last
   three days, dbt builds it (seeds, then every model from scratch), and it is
   marked published (its files claimed).
3. Night 2 pulls and loads those held-back files (the night's increment), dbt
   runs incrementally as a night does, then the three check steps run on
   night 2's increment exactly as the nightly tasks run them (``rto.nightly.check``).

Prints the figures and appends a dated section to ``bench/RESULTS-checks.md``
with ``--write``. Everything it writes stays under ``--out`` (ignored ``var/``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=350_000)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 8))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 1, 21))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep generated sources")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS-checks.md")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("RTO_VAR_DIR", str(args.out / "var"))

    from rto import nightly
    from rto.config import Paths
    from rto.ingest.sources import SOURCES
    from rto.quality.increment import claim_night_files
    from rto.simulator import SimulatorConfig, generate
    from rto.warehouse import connect, memory_limit

    source, data, held = args.out / "source", args.out / "data", args.out / "held"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not (args.reuse and source.exists()):
        shutil.rmtree(source, ignore_errors=True)
        summary = generate(
            SimulatorConfig(
                out=source,
                employees=args.employees,
                start=args.start,
                end=args.end,
                seed=args.seed,
                workers=2,
                compresslevel=1,
            )
        )
        print(summary.format(), flush=True)
    timings["generate"] = time.perf_counter() - t0
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(held, ignore_errors=True)

    # the night's increment: the event files of the last three days (with the default
    # end on a Sunday: the Monday-morning night that brings Friday and the weekend)
    night_days = sorted(p.name for p in (source / "badge" / "events").iterdir())[-3:]
    last_day = f"{night_days[0]}..{night_days[-1]}"
    held.mkdir(parents=True)
    for day in night_days:
        shutil.move(source / "badge" / "events" / day, held / day)
    paths = Paths(source_root=str(source), data_dir=data)
    now = datetime.now(UTC).replace(tzinfo=None)

    t0 = time.perf_counter()
    for src in SOURCES:
        nightly.pull(paths, src, "bench_night_1")
        nightly.load(paths, src, "bench_night_1")
    timings["load history"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nightly.dbt_seed(paths)
    nightly.run_dbt(paths, ["run"])
    timings["dbt seed + run of the history (not a check)"] = time.perf_counter() - t0
    with connect(paths.warehouse) as con:
        claim_night_files(con, "bench_night_1", now)
        con.execute(
            "insert into audit.pipeline_runs values "
            "('bench_night_1', 'rto_warehouse', ?, ?, 'published', 'bench history')",
            [now, now],
        )
    for day in night_days:
        shutil.move(held / day, source / "badge" / "events" / day)

    t0 = time.perf_counter()
    for src in SOURCES:
        nightly.pull(paths, src, "bench_night_2")
        nightly.load(paths, src, "bench_night_2")
    timings["load night 2"] = time.perf_counter() - t0

    # GX's import is paid once per task process (here about a minute: this machine sets
    # PYTHONDONTWRITEBYTECODE, so nothing is byte-compiled): timed apart from the checks
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401

    timings["import great_expectations (once per process)"] = time.perf_counter() - t0

    checks: dict[str, dict] = {}
    t0 = time.perf_counter()
    for src in SOURCES:
        checks[f"raw/{src}"] = nightly.check(paths, "raw", "bench_night_2", source=src)
    timings["checks raw"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nightly.run_dbt(paths, ["run"])
    timings["dbt run of night 2, incremental (not a check)"] = time.perf_counter() - t0

    for step in ("staging", "marts"):
        t0 = time.perf_counter()
        checks[step] = nightly.check(paths, step, "bench_night_2")
        timings[f"checks {step}"] = time.perf_counter() - t0

    with connect(paths.warehouse, read_only=False) as con:
        sizes = {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in (
                "raw.badge_events",
                "staging.stg_badge__events",
                "marts.fct_rto_compliance_weekly",
            )
        }
        failed = con.execute(
            "select step, suite, expectation, column_name, severity from audit.dq_results "
            "where run_id = 'bench_night_2' and not success"
        ).fetchall()
    check_seconds = sum(v for k, v in timings.items() if k.startswith("checks"))
    rows_checked = {k: v["rows_checked"] for k, v in checks.items()}
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {os.cpu_count()} cores ({_cpu()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; shared with other jobs while measured "
        f"(load average at the end {os.getloadavg()[0]:.1f})",
        f"- commit: {_commit()}",
        f"- company: {args.employees:,} employees, {args.start}..{args.end}, seed {args.seed}; "
        f"night 2 = the badge-event files of {last_day} "
        f"({checks['staging']['night_files']} files), marts window from "
        f"{checks['marts']['window_start']}",
        "- table sizes: " + ", ".join(f"{t} {n:,} rows" for t, n in sizes.items()),
        f"- **checks of one night (raw + staging + marts): {check_seconds:.1f} s**",
        f"- peak resident memory of this one process (generate, load, dbt, checks): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; "
        f"DuckDB memory_limit {memory_limit()}",
        "",
        "| stage | seconds |",
        "| --- | --- |",
        *(f"| {k} | {v:.1f} |" for k, v in timings.items()),
        "",
        "| step | expectations | rows checked (increment) |",
        "| --- | --- | --- |",
        *(f"| {k} | {v['checked']} | {rows_checked[k]:,} |" for k, v in checks.items()),
        "",
        f"- failed checks: {len(failed)} "
        + ("" if not failed else "(" + "; ".join(".".join(map(str, f)) for f in failed) + ")"),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = ROOT / "bench" / "RESULTS-checks.md"
        if not results.exists():
            results.write_text(
                "# Nightly checks at scale\n\nWritten by `bench/checks_at_scale.py --write`.\n\n"
            )
        with results.open("a") as f:
            f.write(text + "\n")
    return 0 if check_seconds <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
