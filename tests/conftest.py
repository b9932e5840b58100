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
