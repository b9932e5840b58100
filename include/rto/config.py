"""Where the pipeline reads and writes, resolved the same way everywhere.

Precedence for each setting: Airflow Variable (which Airflow itself lets the
environment override as ``AIRFLOW_VAR_<NAME>``), then the plain environment
variable, then a default inside the project's ignored ``var/`` folder.
Nothing here touches Airflow's metadata database at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("RTO_PROJECT_ROOT", Path(__file__).resolve().parents[2]))
VAR_DIR = Path(os.environ.get("RTO_VAR_DIR", PROJECT_ROOT / "var"))
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

DEFAULT_SOURCE_ROOT = str(VAR_DIR / "source")
DEFAULT_DATA_DIR = str(VAR_DIR / "data")

SOURCE_ROOT_VARIABLE = "rto_source_root"
DATA_DIR_VARIABLE = "rto_data_dir"

# Every task that opens the build warehouse runs in this pool: DuckDB has a
# single writer, so one slot serialises them across DAGs.
DUCKDB_POOL = "rto_duckdb"


def _setting(variable: str, default: str) -> str:
    """Read an Airflow Variable inside a running task, else the environment, else the default."""
    env_value = os.environ.get(f"AIRFLOW_VAR_{variable.upper()}")
    if env_value:
        return env_value
    try:
        from airflow.sdk import Variable

        value = Variable.get(variable, default=None)
    except Exception:  # noqa: BLE001 - outside a task there is no API server to ask
        value = None
    return value or default


@dataclass(frozen=True)
class Paths:
    """Every location one night touches, derived from the data dir."""

    source_root: str
    data_dir: Path

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse(self) -> Path:
        """The build warehouse: raw tables, dbt models, audit. Written only by the nightly build."""
        return self.data_dir / "warehouse" / "build.duckdb"

    @property
    def serving_dir(self) -> Path:
        return self.data_dir / "serving"

    @property
    def serving_warehouse(self) -> Path:
        return self.serving_dir / "warehouse.duckdb"

    @property
    def serving_bi(self) -> Path:
        return self.serving_dir / "bi.duckdb"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"

    @property
    def gx_root(self) -> Path:
        """Great Expectations file context (its ``uncommitted/`` holds data docs and results)."""
        return self.data_dir / "gx"


def resolve_paths(source_root: str | None = None, data_dir: str | Path | None = None) -> Paths:
    """Resolve the configured source root and data dir.

    Args:
        source_root: explicit fsspec URL, overriding the Variable.
        data_dir: explicit local folder, overriding the Variable.
    """
    root = source_root or _setting(SOURCE_ROOT_VARIABLE, DEFAULT_SOURCE_ROOT)
    data = Path(data_dir or _setting(DATA_DIR_VARIABLE, DEFAULT_DATA_DIR)).resolve()
    return Paths(source_root=root, data_dir=data)


def dbt_env(paths: Paths) -> dict[str, str]:
    """Environment for a dbt invocation: profile, warehouse file, and artefacts kept under var/."""
    return {
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(VAR_DIR / "dbt" / "target"),
        "DBT_LOG_PATH": str(VAR_DIR / "dbt" / "logs"),
        "RTO_WAREHOUSE_PATH": str(paths.warehouse),
    }
