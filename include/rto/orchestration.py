"""Airflow and Cosmos settings shared by the DAG files (light imports only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rto.config import DBT_PROJECT_DIR, DEFAULT_DATA_DIR, DUCKDB_POOL, VAR_DIR


def raw_asset(source: str):
    """The Asset an ingest DAG updates when its source's raw tables have new rows."""
    from airflow.sdk import Asset

    return Asset(name=f"rto_raw_{source}", uri=f"rto://raw/{source}")


def manifest_path():
    return VAR_DIR / "dbt" / "target" / "manifest.json"


@dataclass(frozen=True)
class CosmosSetup:
    project: Any
    profile: Any
    execution: Any
    operator_args: dict

    @staticmethod
    def render(select: list[str]):
        from cosmos import LoadMode, RenderConfig, TestBehavior
        from cosmos.constants import SeedRenderingBehavior

        return RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            test_behavior=TestBehavior.BUILD,
            seed_rendering_behavior=SeedRenderingBehavior.NONE,
        )


def cosmos_setup() -> CosmosSetup:
    """Cosmos configs: render from the parsed manifest, run dbt in-process (dbtRunner).

    The warehouse path is templated from the ``rto_data_dir`` Variable so it is read
    when a task runs, never when the DAG file is parsed.
    """
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig
    from cosmos.constants import ExecutionMode, InvocationMode

    manifest = manifest_path()
    if not manifest.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {manifest}: run `make dbt-parse` (or "
            "`uv run rto-pipeline parse`) once after cloning or changing the dbt project"
        )
    # Seeds are not rendered (see rto.nightly.dbt_seed): with partial parsing, which saves
    # seconds per task, dbt-duckdb would look for a seed CSV in another task's deleted copy.
    project = ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=manifest,
        install_dbt_deps=False,
        partial_parse=True,
    )
    profile = ProfileConfig(
        profile_name="rto_warehouse",
        target_name="duckdb",
        profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
    )
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
    )
    data_dir = "{{ var.value.get('rto_data_dir', '%s') }}" % DEFAULT_DATA_DIR
    operator_args = {
        "install_deps": False,
        "pool": DUCKDB_POOL,
        "append_env": True,
        "env": {"RTO_WAREHOUSE_PATH": data_dir + "/warehouse/build.duckdb"},
    }
    return CosmosSetup(project, profile, execution, operator_args)
