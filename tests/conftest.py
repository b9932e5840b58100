"""Test-wide settings: Airflow and every artefact under the project's ignored var/ folder.

These environment variables must be set before anything imports Airflow.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_VAR = ROOT / "var" / "test"

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
