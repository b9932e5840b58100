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


# The warehouse DAG's params (rto_warehouse.py) and how the dbt operators receive them.
# Cosmos renders `full_refresh` and `dbt_cmd_flags` as templates when a task runs: the
# build operators turn the rendered "True"/"False" into --full-refresh, and empty
# rendered flags are dropped, so a night without a range passes no --vars at all (a
# changed --vars would cost every task a full re-parse instead of a partial one).
REBUILD_PARAMS = ("full_refresh", "rebuild_from", "rebuild_to")
_RANGE_SET = "params.rebuild_from or params.rebuild_to"
_RANGE_VARS = (
    "{'rebuild_from': params.rebuild_from or none, 'rebuild_to': params.rebuild_to or none}"
)


def rebuild_params() -> dict:
    """The warehouse DAG's params: a full refresh, or a date range to rebuild."""
    from airflow.sdk import Param

    return {
        "full_refresh": Param(
            False,
            type="boolean",
            description="Rebuild the incremental models from scratch (dbt --full-refresh).",
        ),
        "accept_purged_history_loss": Param(
            False,
            type="boolean",
            description="Let a full refresh run after the retention task purged raw badge "
            "events: the purged weeks are then lost from the marts for good.",
        ),
        "rebuild_from": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First day (YYYY-MM-DD) the incremental models rebuild, on top of "
            "the nightly scope; alone: from that day on.",
        ),
        "rebuild_to": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day (YYYY-MM-DD, inclusive) of the range; needs rebuild_from.",
        ),
    }


def rebuild_operator_args() -> dict:
    """Cosmos operator arguments that pass the params to every dbt command."""
    return {
        "full_refresh": "{{ params.full_refresh }}",
        "dbt_cmd_flags": [
            "{{ '--vars' if %s else '' }}" % _RANGE_SET,
            "{{ (%s) | tojson if %s else '' }}" % (_RANGE_VARS, _RANGE_SET),
        ],
    }


def freeze_heap(context) -> None:
    """``on_execute_callback`` of the dbt tasks: move every live object out of the GC's reach.

    Cosmos runs ``gc.collect()`` after every dbt command (to release dbt's adapter
    semaphores). A full collection walks every object of the process: Airflow, dbt,
    the parsed DAG, and under ``dag.test`` the whole night, about 0.7 s a task on a
    2-core machine (cProfile of the golden night: 28 of 104 s). After ``gc.freeze()``
    that collection only walks what the dbt command itself allocated. Objects alive at
    the freeze are not collected afterwards; a task process runs one task, and under
    ``dag.test`` each dbt task's own garbage is still collected by Cosmos.
    """
    import gc

    gc.freeze()


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
        "on_execute_callback": freeze_heap,
        **rebuild_operator_args(),
    }
    return CosmosSetup(project, profile, execution, operator_args)
