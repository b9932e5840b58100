"""One invocation: every measurement of issue 7, side by side, appended to bench/RESULTS.md.

    uv run python bench/run.py                  # full scale: L = 350,000, M = 20,000 employees
    uv run python bench/run.py --scale smoke    # tiny sizes, to try the script
    uv run python bench/run.py --deadline 21:05 # stop what still runs at that UTC time

Data (simulated sources) is generated under ``var/bench/data/<scale>-<size>/``
once and reused while its parameters are unchanged; generation is not part of
any measured figure. Every measured step runs as its own process (see
``bench/measure.py``: wall seconds, peak resident memory of the process tree),
with its own Airflow home, dbt target and data folder under
``var/bench/runs/``, recreated on each invocation. The Airflow metadata
database is migrated and the dbt manifest parsed before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
sys.path.insert(0, str(BENCH))

from measure import Measurement, run_measured  # noqa: E402

VAR = ROOT / "var" / "bench"
PY = sys.executable
BIN = Path(PY).parent


@dataclass(frozen=True)
class Size:
    name: str
    employees: int
    start: date
    end: date
    seed: int = 1

    @property
    def night(self) -> date:
        return self.end + timedelta(days=1)

    @property
    def horizon(self) -> date:
        """The company is simulated to here; the full build gets the deliveries to ``end``
        and each increment the next night of the same company (up to a week of them)."""
        return self.end + timedelta(days=7)

    def company_args(self) -> list[str]:
        """The simulator's arguments that fix the company (full data and every night)."""
        return [
            "--employees",
            str(self.employees),
            "--start",
            self.start.isoformat(),
            "--end",
            self.horizon.isoformat(),
            "--seed",
            str(self.seed),
        ]

    def params(self) -> dict:
        return {
            "employees": self.employees,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "horizon": self.horizon.isoformat(),
            "seed": self.seed,
            "messy": False,
        }


# Two years from 2023-02-06 (Monday) to 2025-02-02 (Sunday), 104 whole ISO weeks: the
# three-day rule (2023-05-01), the promotion gate (2023-11-16) and the five-day rule
# (2025-01-02) all fall inside. The increment is the night of Monday 2025-02-03, a
# working day's badge files (about 780,000 events at L), not a weekend's (about 9,000:
# the runs of 2026-12-07 in RESULTS.md ended on a Friday and measured a Saturday).
FULL = {
    "L": Size("L", 350_000, date(2023, 2, 6), date(2025, 2, 2)),
    "M": Size("M", 20_000, date(2023, 2, 6), date(2025, 2, 2)),
}
# Smoke: a few weeks around the five-day rule, a handful of people.
SMOKE = {
    "L": Size("L", 120, date(2024, 12, 2), date(2025, 1, 19)),
    "M": Size("M", 60, date(2024, 12, 2), date(2025, 1, 19)),
}

GOALS = {
    "full_build_wall_s": 600,
    "full_build_peak_mb": 8 * 1024,
    "increment_wall_s": 90,
    "postgres_over_duckdb": 10,
    "pandas_over_duckdb": 5,
    "full_over_lower_bound": 3,
    "orchestration_over_dbt": 1.5,
}


class Bench:
    def __init__(self, scale: str, deadline: datetime | None, reuse_night: bool = False):
        self.scale = scale
        self.reuse_night = reuse_night
        self.sizes = SMOKE if scale == "smoke" else FULL
        self.deadline = deadline
        self.data = VAR / "data"
        self.runs = VAR / "runs" / scale
        self.results: dict[str, Measurement] = {}
        self.extra: dict[str, object] = {}
        self.notes: list[str] = []
        self.started = datetime.now(UTC)
        self.load_start = os.getloadavg()

    # ------------------------------------------------------------------ helpers

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - datetime.now(UTC)).total_seconds()

    def env(self, var_dir: Path, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "DBT_", "RTO_")) or k.startswith("RTO_PG_")
        }
        env.update(
            {
                "RTO_VAR_DIR": str(var_dir),
                "UV_PYTHON_DOWNLOADS": "never",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def measure(self, key: str, cmd: list[str], env: dict, cap_s: float | None = None, **kw):
        left = self.remaining()
        if left is not None and left < 30:
            self.notes.append(f"{key}: not measured, the deadline had passed")
            print(f"-- {key}: skipped (deadline)", flush=True)
            return None
        timeout = min(x for x in (cap_s, left) if x is not None) if (cap_s or left) else None
        print(f"-- {key}: {' '.join(Path(c).name if '/' in c else c for c in cmd)}", flush=True)
        m = run_measured(
            key, cmd, env=env, log_path=self.runs / "logs" / f"{key}.log", timeout_s=timeout, **kw
        )
        print(
            f"   {m.status} in {m.wall_s:.1f}s, peak tree {m.peak_tree_rss_mb:.0f} MB, "
            f"load {m.load_avg_end}",
            flush=True,
        )
        self.results[key] = m
        return m

    # ------------------------------------------------------------------ data

    def prepare(self, size: Size) -> Path:
        """Generate the sources once per parameter set (not measured)."""
        folder = self.data / f"{self.scale}-{size.name}"
        marker = folder / "params.json"
        source = folder / "source"
        while (folder / "generating").exists():  # a generation started by hand is finishing
            print(f"-- waiting for {folder.name} to be generated", flush=True)
            time.sleep(30)
        if not (marker.exists() and json.loads(marker.read_text()) == size.params()):
            shutil.rmtree(folder, ignore_errors=True)
            source.mkdir(parents=True)
            print(f"-- generating {size.name}: {size.params()} (not measured)", flush=True)
            t0 = time.monotonic()
            subprocess.run(
                [
                    str(BIN / "rto-simulate"),
                    "--out",
                    str(source),
                    *size.company_args(),
                    "--until",
                    size.end.isoformat(),
                    "--workers",
                    "2",
                    "--no-progress",
                ],
                check=True,
                stdout=open(folder / "generate.log", "w"),  # noqa: SIM115
            )
            (folder / "generate_seconds").write_text(f"{time.monotonic() - t0:.0f}")
            marker.write_text(json.dumps(size.params()))
        self.extra[f"{size.name}.data"] = data_summary(folder)
        return folder

    def reusable(self, run: Path) -> bool:
        """``--reuse-night`` and ``run`` holds a published build of an earlier invocation."""
        return self.reuse_night and (run / "data" / "serving" / "warehouse.duckdb").exists()

    def setup_run(self, name: str) -> tuple[Path, dict]:
        """A fresh run folder; Airflow DB migrated and dbt manifest parsed (not measured)."""
        run = self.runs / name
        shutil.rmtree(run, ignore_errors=True)
        (run / "var").mkdir(parents=True)
        env = self.env(run / "var")
        subprocess.run(
            [
                PY,
                "-c",
                "from rto import cli; cli._set_default_env(); cli.parse_manifest(); "
                "cli.prepare_airflow()",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return run, env

    # ------------------------------------------------------------------ phases

    def night(self, key: str, source: Path, run: Path, env: dict, cap_s=None):
        cmd = [
            str(BIN / "rto-pipeline"),
            "run",
            "--source-root",
            str(source),
            "--data-dir",
            str(run / "data"),
        ]
        since = datetime.now(UTC)
        m = self.measure(key, cmd, env, cap_s)
        if m is not None:
            self.extra[f"{key}.tasks"] = task_breakdown(run / "var", since)
        return m

    def dbt(self, key: str, args: list[str], run: Path, env: dict, cap_s=None, **kw):
        dbt_env = env | {
            "DBT_PROFILES_DIR": str(ROOT / "dbt_project"),
            "DBT_TARGET_PATH": str(run / "var" / "dbt" / f"plain-{key}"),
            "DBT_LOG_PATH": str(run / "var" / "dbt" / "plain-logs"),
            "RTO_WAREHOUSE_PATH": str(run / "data" / "warehouse" / "build.duckdb"),
        }
        cmd = [str(BIN / "dbt"), *args, "--project-dir", str(ROOT / "dbt_project")]
        return self.measure(key, cmd, dbt_env, cap_s, **kw)

    def lower_bound(self, key: str, files: Path, run: Path, env: dict):
        """Scan the delivered badge files (the bytes the pull lands, unchanged)."""
        out = run / f"{key}.json"
        m = self.measure(
            key,
            [
                PY,
                str(BENCH / "steps.py"),
                "lower-bound",
                "--landing",
                str(files),
                "--out",
                str(out),
            ],
            env,
        )
        if m is not None and m.ok:
            self.extra[f"{key}.result"] = json.loads(out.read_text())

    def medium(self) -> None:
        size = self.sizes["M"]
        folder = self.prepare(size)
        run = self.runs / "M"
        if self.reusable(run):
            # the night of an earlier invocation (its figures are in its own section)
            env = self.env(run / "var")
            self.notes.append("M: the full build of the previous invocation was reused")
            self.extra["M.night.tasks"] = task_breakdown(run / "var", datetime(2000, 1, 1))
        else:
            run, env = self.setup_run("M")
            self.lower_bound("M.lower_bound", folder / "source", run, env)
            night = self.night("M.night", folder / "source", run, env)
            if night is None or not night.ok:
                self.notes.append("M: the night failed or did not finish; M comparisons skipped")
                return
        # cheapest first, so that a deadline cuts the longest steps
        self.dbt("M.dbt_seed", ["seed"], run, env)
        self.dbt("M.dbt_build", ["build"], run, env)
        # the pipeline's own weekly mart from its raw tables, then the pandas peer
        self.dbt("M.dbt_weekly", ["run", "--select", "+fct_rto_compliance_weekly"], run, env)
        self.pandas_peer(run, env)
        # orchestration: the warehouse DAG through Airflow + Cosmos (vs the plain dbt above)
        since = datetime.now(UTC)
        m = self.measure(
            "M.warehouse_dag",
            [
                PY,
                str(BENCH / "steps.py"),
                "warehouse-dag",
                "--source-root",
                str(folder / "source"),
                "--data-dir",
                str(run / "data"),
            ],
            env,
        )
        if m is not None:
            self.extra["M.warehouse_dag.tasks"] = task_breakdown(run / "var", since)
        self.postgres(run, env)
        self.increment("M.increment", size, folder, run, env)

    def pandas_peer(self, run: Path, env: dict) -> None:
        peer = run / "pandas_weekly.parquet"
        m = self.measure(
            "M.pandas_peer",
            [
                PY,
                str(BENCH / "pandas_peer.py"),
                "--root",
                str(run / "data" / "landing"),
                "--out",
                str(peer),
            ],
            env,
        )
        if m is not None and m.ok:
            out = run / "compare.json"
            subprocess.run(
                [
                    PY,
                    str(BENCH / "steps.py"),
                    "compare-weekly",
                    "--warehouse",
                    str(run / "data" / "warehouse" / "build.duckdb"),
                    "--peer",
                    str(peer),
                    "--out",
                    str(out),
                ],
                env=env,
                check=False,
            )
            if out.exists():
                self.extra["M.pandas_vs_mart"] = json.loads(out.read_text())

    def night_files(self, size: Size, folder: Path, night: date) -> Path:
        """The files the simulator delivers on ``night`` (generated once, not measured)."""
        out = folder / ("night" if night == size.night else f"night-{night}")
        if not (out / "done").exists():
            shutil.rmtree(out, ignore_errors=True)
            print(f"-- generating night {night} for {size.name} (not measured)", flush=True)
            subprocess.run(
                [
                    PY,
                    str(BENCH / "steps.py"),
                    "night",
                    "--out",
                    str(out),
                    *size.company_args(),
                    "--night",
                    night.isoformat(),
                ],
                check=True,
            )
            (out / "done").write_text(night.isoformat())
        return out

    def increment(self, key: str, size: Size, folder: Path, run: Path, env: dict) -> None:
        """One more night: the source root as it is the next night (hard links + new files).

        The next night is the day after the newest delivery the warehouse holds, so a
        reused run folder (``--reuse-night``) gets a night it has not seen yet.
        """
        import duckdb

        with duckdb.connect(
            str(run / "data" / "warehouse" / "build.duckdb"), read_only=True
        ) as con:
            (newest,) = con.execute("select max(delivery_date) from audit.source_files").fetchone()
        # every night the warehouse already took (their files stay in the source), and one more
        count = max(0, (newest - size.end).days) + 1
        nights = [size.night + timedelta(days=i) for i in range(count)]
        if nights[-1] > size.horizon:
            raise SystemExit(
                f"{size.name}: the warehouse already holds the deliveries to {newest}; the "
                f"simulated company ends on {size.horizon}: build it again (no --reuse-night)"
            )
        self.extra[f"{key}.night"] = nights[-1].isoformat()
        root = run / "source_next_night"
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["cp", "-al", str(folder / "source"), str(root)], check=True)
        for night in nights:
            new = [str(p) for p in self.night_files(size, folder, night).iterdir() if p.is_dir()]
            subprocess.run(["cp", "-a", *new, str(root)], check=True)
        self.night(key, root, run, env)

    def postgres(self, run: Path, env: dict) -> None:
        from rto.postgres import connect

        dbname = f"rto_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        try:
            admin = connect(dbname="postgres", connect_timeout=5)
        except Exception as exc:  # noqa: BLE001 - no server: say so in the results
            self.notes.append(f"PostgreSQL not reachable: {exc}")
            return
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f"create database {dbname} template template0 encoding 'UTF8'")
            self.extra["M.postgres.server"] = server_version(admin)
            pg_env = env | {"RTO_PG_DBNAME": dbname}

            def backend(cmdline: list[str], name=dbname) -> bool:
                return bool(cmdline) and cmdline[0].startswith("postgres:") and name in cmdline[0]

            m = self.measure(
                "M.pg_copy",
                [
                    PY,
                    str(BENCH / "steps.py"),
                    "pg-copy",
                    "--warehouse",
                    str(run / "data" / "warehouse" / "build.duckdb"),
                    "--dbname",
                    dbname,
                ],
                pg_env,
                also=backend,
            )
            if m is None or not m.ok:
                return
            self.dbt("M.pg_dbt_seed", ["seed", "--target", "postgres"], run, pg_env, also=backend)
            duck = [self.results.get(k) for k in ("M.dbt_seed", "M.dbt_build")]
            # stopping PostgreSQL at 12x DuckDB's seed + build is enough to decide the 10x goal
            cap = (
                max(300.0, 12 * sum(m.wall_s for m in duck))
                if all(m is not None and m.ok for m in duck)
                else None
            )
            self.dbt(
                "M.pg_dbt_build", ["build", "--target", "postgres"], run, pg_env, cap, also=backend
            )
        finally:
            with admin.cursor() as cur:
                cur.execute(f"drop database if exists {dbname} with (force)")
            admin.close()

    def large(self) -> None:
        size = self.sizes["L"]
        folder = self.prepare(size)
        run = self.runs / "L"
        if self.reusable(run):
            # the full build of an earlier invocation (its figures are in its own section)
            env = self.env(run / "var")
            self.notes.append("L: the full build of an earlier invocation was reused")
        else:
            run, env = self.setup_run("L")
            self.lower_bound("L.lower_bound", folder / "source", run, env)
            m = self.night("L.night", folder / "source", run, env)
            if m is None:
                return
            if not m.ok:
                self.extra["L.night.partial"] = partial_build(
                    run / "data" / "warehouse" / "build.duckdb"
                )
                self.notes.append(
                    "L: the full build did not finish; no nightly increment measured at L"
                )
                return
        self.increment("L.increment", size, folder, run, env)

    # ------------------------------------------------------------------ report

    def figures(self) -> tuple[list[tuple[str, str, str]], dict]:
        r = self.results
        ok = {k: v for k, v in r.items() if v.ok}
        ratios: dict[str, float | None] = {}
        goals: list[tuple[str, str, str]] = []

        def wall(*keys: str) -> float | None:
            return sum(ok[k].wall_s for k in keys) if all(k in ok for k in keys) else None

        def goal(name: str, value, limit, fmt: str, better: str = "max") -> None:
            if value is None:
                goals.append((name, "not measured", "-"))
                return
            met = value <= limit if better == "max" else value >= limit
            goals.append((name, "met" if met else "MISSED", fmt.format(value)))

        full = r.get("L.night")
        if full is not None and full.ok:
            goal("full build at L <= 600 s", full.wall_s, 600, "{:.0f} s")
            goal("full build at L <= 8 GB peak", full.peak_tree_rss_mb, 8192, "{:.0f} MB (tree)")
        elif full is not None:
            goals.append(
                (
                    "full build at L <= 600 s",
                    "MISSED" if full.status == "timeout" else "not measured",
                    f"{full.status} after {full.wall_s:.0f} s",
                )
            )
            goals.append(
                (
                    "full build at L <= 8 GB peak",
                    "partial",
                    f"{full.peak_tree_rss_mb:.0f} MB until stopped",
                )
            )
        else:
            goals.append(("full build at L", "not measured", "-"))
        inc = wall("L.increment")
        goal("nightly increment at L <= 90 s", inc, 90, "{:.0f} s")
        if wall("M.increment") is not None:
            ratios["nightly increment at M, seconds (for reference; the goal is at L)"] = wall(
                "M.increment"
            )
        duck = wall("M.dbt_seed", "M.dbt_build")
        pg = wall("M.pg_dbt_seed", "M.pg_dbt_build")
        pg_timeout = r.get("M.pg_dbt_build")
        if pg is not None and duck:
            ratios["postgres / duckdb (dbt seed + build, M)"] = pg / duck
            goal("DuckDB >= 10x faster than PostgreSQL (M)", pg / duck, 10, "{:.1f}x", "min")
        elif pg_timeout is not None and pg_timeout.status == "timeout" and duck:
            low = (
                (pg_timeout.wall_s + ok["M.pg_dbt_seed"].wall_s) / duck
                if "M.pg_dbt_seed" in ok
                else None
            )
            goals.append(
                (
                    "DuckDB >= 10x faster than PostgreSQL (M)",
                    "met" if low and low >= 10 else "?",
                    f"> {low:.1f}x (PostgreSQL stopped)" if low else "?",
                )
            )
        else:
            goal("DuckDB >= 10x faster than PostgreSQL (M)", None, 10, "")
        own = weekly_own(self)
        pandas = wall("M.pandas_peer")
        same = (self.extra.get("M.pandas_vs_mart") or {}).get("same_rows")
        if pandas is not None and own:
            ratios["pandas / pipeline weekly mart (M)"] = pandas / own
            goal(
                "DuckDB >= 5x faster than pandas (M)",
                pandas / own,
                5,
                "{:.1f}x" + ("" if same else " (rows differ!)"),
                "min",
            )
        else:
            goal("DuckDB >= 5x faster than pandas (M)", None, 5, "")
        lb = wall("L.lower_bound")
        if full is not None and full.ok and lb:
            ratios["full build / lower bound (L)"] = full.wall_s / lb
            goal("full build <= 3x lower bound (L)", full.wall_s / lb, 3, "{:.1f}x")
        else:
            goal("full build <= 3x lower bound (L)", None, 3, "")
        mlb = wall("M.lower_bound")
        if "M.night" in ok and mlb:
            ratios["full build / lower bound (M)"] = ok["M.night"].wall_s / mlb
        dag = wall("M.warehouse_dag")
        if dag is not None and duck:
            ratios["warehouse DAG / plain dbt seed + build (M)"] = dag / duck
            goal("orchestration <= 1.5x plain dbt build (M)", dag / duck, 1.5, "{:.2f}x")
        else:
            goal("orchestration <= 1.5x plain dbt build (M)", None, 1.5, "")
        tasks = self.extra.get("M.warehouse_dag.tasks") or {}
        dbt_in_dag = sum(
            t["seconds"]
            for t in tasks.get("tasks", [])
            if t["task_id"].startswith(("dbt_", "dbt_seed"))
        )
        if dbt_in_dag and duck:
            ratios["dbt tasks inside the DAG / plain dbt seed + build (M)"] = dbt_in_dag / duck
        return goals, ratios

    def write(self) -> Path:
        goals, ratios = self.figures()
        commit = git("rev-parse", "--short", "HEAD")
        # the sections earlier invocations appended to RESULTS.md do not change what ran
        dirty = bool(
            git(
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                f":(exclude){RESULTS.relative_to(ROOT)}",
            )
        )
        now = datetime.now(UTC)
        lines = [
            "",
            f"## {now:%Y-%m-%d %H:%M} UTC - scale `{self.scale}`, commit `{commit}`{' (uncommitted changes)' if dirty else ''}",
            "",
            f"- machine: {cpu_model()}, {os.cpu_count()} cores, {mem_gb():.0f} GB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
            f"- load average (1, 5, 15 min): {fmt_load(self.load_start)} at start, "
            f"{fmt_load(os.getloadavg())} at end (the box is shared with other jobs)",
            f"- run {self.started:%H:%M}-{now:%H:%M} UTC; data generation is not measured "
            "(generated once, reused); Airflow DB migration and dbt parse happen before each clock starts",
        ]
        for size in ("L", "M"):
            d = self.extra.get(f"{size}.data")
            if d:
                s = self.sizes[size]
                lines.append(
                    f"- {size}: {s.employees:,} employees, {s.start} .. {s.end} (seed {s.seed}, "
                    f"clean deliveries): {d}"
                )
        lines += [
            "",
            "| step | status | wall s | peak RSS of the process tree MB | largest process MB | load at end |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for key, m in self.results.items():
            lines.append(
                f"| {key} | {m.status} | {m.wall_s:.1f} | {m.peak_tree_rss_mb:.0f} | "
                f"{m.maxrss_mb:.0f} | {fmt_load(m.load_avg_end)} |"
            )
        lines += ["", "Peak RSS per process (MB):", ""]
        for key, m in self.results.items():
            top = ", ".join(f"{k} {v:.0f}" for k, v in list(m.peak_by_process.items())[:4])
            lines.append(f"- {key}: {top}")
        lines += ["", "| ratio | value |", "| --- | ---: |"]
        for k, v in ratios.items():
            lines.append(f"| {k} | {v:.2f} |")
        lines += ["", "| goal | result | figure |", "| --- | --- | --- |"]
        for name, result, figure in goals:
            lines.append(f"| {name} | {result} | {figure} |")
        for key in (
            "M.pandas_vs_mart",
            "M.weekly_own",
            "M.lower_bound.result",
            "L.lower_bound.result",
            "L.night.partial",
            "M.postgres.server",
        ):
            if key in self.extra:
                lines.append(f"\n{key}: `{json.dumps(self.extra[key])}`")
        for key in sorted(k for k in self.extra if k.endswith(".tasks")):
            t = self.extra[key]
            if not t:
                continue
            lines += ["", f"Airflow tasks of {key[:-6]} (seconds; from the run's metadata DB):", ""]
            lines.append("- per DAG: " + ", ".join(f"{d} {s:.0f}" for d, s in t["dags"].items()))
            lines.append(
                "- per group: " + ", ".join(f"{g} {s:.0f}" for g, s in t["groups"].items())
            )
            slow = sorted(t["tasks"], key=lambda x: -x["seconds"])[:8]
            lines.append(
                "- slowest: "
                + ", ".join(f"{x['dag_id']}.{x['task_id']} {x['seconds']:.0f}" for x in slow)
            )
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        lines.append("")
        if not RESULTS.exists():
            RESULTS.write_text(
                "# Benchmark results\n\nAppended by `bench/run.py` (see bench/README.md), newest last.\n"
            )
        with RESULTS.open("a") as fh:
            fh.write("\n".join(lines))
        raw = VAR / "results" / f"{now:%Y%m%dT%H%M%S}-{self.scale}.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(
            json.dumps(
                {
                    "results": {k: asdict(v) for k, v in self.results.items()},
                    "extra": self.extra,
                    "notes": self.notes,
                },
                default=str,
                indent=1,
            )
        )
        print("\n".join(lines))
        return RESULTS


def weekly_own(bench: Bench) -> float | None:
    """The pipeline's time for the weekly mart from the landed files: the hr and badge load
    tasks of the M night plus ``dbt run --select +fct_rto_compliance_weekly``."""
    dbt = bench.results.get("M.dbt_weekly")
    tasks = (bench.extra.get("M.night.tasks") or {}).get("tasks", [])
    loads = [
        t["seconds"]
        for t in tasks
        if t["task_id"] == "load" and t["dag_id"] in ("rto_ingest_hr", "rto_ingest_badge")
    ]
    if dbt is None or not dbt.ok or len(loads) != 2:
        return None
    bench.extra["M.weekly_own"] = {"load_hr_badge_s": round(sum(loads), 1), "dbt_run_s": dbt.wall_s}
    return sum(loads) + dbt.wall_s


def partial_build(warehouse: Path) -> dict:
    """How far a stopped build got: files and rows per source and status."""
    import duckdb

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except Exception as exc:  # noqa: BLE001 - a file left mid-write: say so
        return {"error": str(exc)[:200]}
    try:
        rows = con.execute(
            "select source, status, count(*), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(bytes), 0) from audit.source_files group by 1, 2 order by 1, 2"
        ).fetchall()
    finally:
        con.close()
    return {
        f"{src}/{status}": {"files": n, "rows_loaded": int(r), "bytes": int(b)}
        for src, status, n, r, b in rows
    }


def task_breakdown(var_dir: Path, since: datetime) -> dict:
    """Task durations of the runs started after ``since``, from the Airflow SQLite DB."""
    db = var_dir / "airflow" / "airflow.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(str(db))
    try:
        rows = con.execute(
            "select dag_id, task_id, start_date, end_date, state from task_instance "
            "where start_date is not null and start_date >= ? order by start_date",
            [since.strftime("%Y-%m-%d %H:%M:%S")],
        ).fetchall()
    finally:
        con.close()
    tasks, dags, groups = [], {}, {}
    for dag_id, task_id, start, end, state in rows:
        s = parse_ts(start)
        e = parse_ts(end) if end else None
        secs = (e - s).total_seconds() if e else 0.0
        tasks.append(
            {"dag_id": dag_id, "task_id": task_id, "seconds": round(secs, 1), "state": state}
        )
        lo, hi = dags.get(dag_id, (s, e or s))
        dags[dag_id] = (min(lo, s), max(hi, e or s))
        group = task_id.split(".")[0]
        groups[group] = groups.get(group, 0.0) + secs
    return {
        "tasks": tasks,
        "dags": {d: round((hi - lo).total_seconds(), 1) for d, (lo, hi) in dags.items()},
        "groups": {g: round(s, 1) for g, s in sorted(groups.items(), key=lambda kv: -kv[1])},
    }


def parse_ts(value: str) -> datetime:
    value = value.replace("T", " ")
    for cut in ("+", "Z"):
        if cut in value[10:]:
            value = value[: 10 + value[10:].index(cut)]
    return datetime.fromisoformat(value)


def data_summary(folder: Path) -> str:
    log = folder / "generate.log"
    first = log.read_text().splitlines()[0] if log.exists() and log.read_text() else "?"
    secs = (
        (folder / "generate_seconds").read_text().strip()
        if (folder / "generate_seconds").exists()
        else "?"
    )
    return f"{first.strip()} (generated in {secs} s)"


def server_version(con) -> str:
    with con.cursor() as cur:
        cur.execute("show server_version")
        return f"PostgreSQL {cur.fetchone()[0]}"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown cpu"


def mem_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 2**20
    return 0.0


def fmt_load(load) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("full", "smoke"), default="full")
    parser.add_argument("--only", choices=("M", "L"), help="run one size only (the results say so)")
    parser.add_argument(
        "--deadline", help="UTC HH:MM: steps still running then are stopped and reported as such"
    )
    parser.add_argument(
        "--reuse-night",
        action="store_true",
        help="reuse the warehouse an earlier invocation built (M: the comparisons and the "
        "increment; L: the increment) instead of a new full build",
    )
    args = parser.parse_args(argv)
    deadline = None
    if args.deadline:
        hh, mm = (int(x) for x in args.deadline.split(":"))
        now = datetime.now(UTC)
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if deadline <= now:  # a time already past today is tomorrow's
            deadline += timedelta(days=1)
    bench = Bench(args.scale, deadline, args.reuse_night)
    # a SIGTERM (e.g. from `timeout`) still writes what was measured
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        # L first: its figures carry the main goals; a deadline then cuts M
        if args.only != "M":
            bench.large()
        if args.only != "L":
            bench.medium()
    finally:
        if args.only:
            bench.notes.append(f"only size {args.only} was run in this invocation")
        print(f"appended to {bench.write()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
