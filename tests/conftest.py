"""Test-wide settings: Airflow and every artefact under the project's ignored var/ folder.

These environment variables must be set before anything imports Airflow or ``rto``.

The suite runs in parallel with pytest-xdist (one module per worker at a time, see the
Makefile). Each worker gets its own folder, ``var/test/<worker>/``: its own Airflow home
(SQLite allows one writer), Cosmos cache and dbt target folder, so two workers never
write the same file. A run without xdist uses ``var/test/`` as before.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_VAR = ROOT / "var" / "test" / WORKER if WORKER else ROOT / "var" / "test"

os.environ["RTO_TEST_VAR"] = str(TEST_VAR)
if WORKER:
    # rto.config reads RTO_VAR_DIR at import: dbt's target/ and logs/ of this worker's runs.
    worker_var = TEST_VAR / "var"
    os.environ["RTO_VAR_DIR"] = str(worker_var)
    # Start from the manifest `make dbt-parse` wrote (copy2 keeps its mtime, so it is not
    # seen as stale); the worker's own dbt runs then update only its copy.
    parsed = ROOT / "var" / "dbt" / "target"
    if parsed.is_dir():
        shutil.copytree(parsed, worker_var / "dbt" / "target", dirs_exist_ok=True)

os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
os.environ["AIRFLOW_HOME"] = str(TEST_VAR / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__CACHE_DIR"] = str(TEST_VAR / "cosmos")
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["SCARF_ANALYTICS"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
os.environ["GX_ANALYTICS_ENABLED"] = "False"


# Modules that run whole nights through Airflow, longest first (seconds in one process on
# an idle 2-core machine, --durations of 2026-11-28). pytest-xdist hands modules out in
# collection order, so starting the long ones first keeps the two workers' ends together.
LONG_MODULES = (
    "tests/integration/test_backfill.py",  # ~245: a PostgreSQL-backed stack, three nights
    "tests/integration/test_production.py",  # ~230: every component as a process
    "tests/integration/test_night.py",  # ~225: three nights with dag.test
    "tests/integration/test_openlineage.py",  # ~90
    "tests/integration/test_golden.py",  # ~75
    "tests/integration/test_incremental.py",  # ~45
    "tests/dags/test_delivery_sensor.py",  # ~40
    "tests/dbt/test_postgres.py",  # ~25
)


def pytest_collection_modifyitems(config, items):
    """Long modules first, in the order above; every other test keeps its place after them."""
    rank = {path: i for i, path in enumerate(LONG_MODULES)}

    def key(item):
        path = item.nodeid.split("::", 1)[0]
        return rank.get(path, len(LONG_MODULES))

    items.sort(key=key)  # stable: tests inside a module keep their order
