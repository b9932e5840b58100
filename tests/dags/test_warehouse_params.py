"""The warehouse DAG's rebuild params and how they reach dbt through Cosmos.

Cosmos renders ``full_refresh`` and ``dbt_cmd_flags`` as templates when a task
runs; these tests render them the way Airflow does (the DAG's Jinja
environment) for a night with and without params.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def warehouse():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "rto_warehouse.py"))
    assert not bag.import_errors
    return bag.dags["rto_warehouse"]


def _render(dag, value, **params):
    env = dag.get_template_env()
    defaults = {name: param.value for name, param in dag.params.items()}
    if isinstance(value, list):
        return [_render(dag, v, **params) for v in value]
    return env.from_string(value).render(params={**defaults, **params})


def test_params_and_their_defaults(warehouse):
    params = {name: param.value for name, param in warehouse.params.items()}
    assert params == {
        "full_refresh": False,
        "accept_purged_history_loss": False,
        "rebuild_from": None,
        "rebuild_to": None,
    }
    schema = {name: param.schema for name, param in warehouse.params.items()}
    assert schema["full_refresh"]["type"] == "boolean"
    assert schema["rebuild_from"]["type"] == ["null", "string"]
    assert schema["rebuild_to"]["format"] == "date"


def _dbt_build_tasks(dag):
    tasks = [t for t in dag.tasks if t.task_id.startswith(("dbt_staging.", "dbt_marts."))]
    assert len(tasks) > 20
    return tasks


def test_every_dbt_task_receives_the_params(warehouse):
    for task in _dbt_build_tasks(warehouse):
        assert "full_refresh" in task.template_fields, task.task_id
        assert "dbt_cmd_flags" in task.template_fields, task.task_id
        assert task.full_refresh == "{{ params.full_refresh }}"
        assert len(task.dbt_cmd_flags) == 2


def test_a_normal_night_passes_no_vars_and_no_full_refresh(warehouse):
    task = next(t for t in warehouse.tasks if t.task_id.startswith("dbt_marts."))
    assert _render(warehouse, task.full_refresh) == "False"
    # Cosmos drops empty flags: the dbt command line is the same as without params
    assert _render(warehouse, task.dbt_cmd_flags) == ["", ""]


def test_full_refresh_and_a_range_reach_dbt(warehouse):
    task = next(t for t in warehouse.tasks if t.task_id.startswith("dbt_marts."))
    assert _render(warehouse, task.full_refresh, full_refresh=True) == "True"
    flag, value = _render(
        warehouse, task.dbt_cmd_flags, rebuild_from="2023-05-03", rebuild_to="2023-05-09"
    )
    assert flag == "--vars"
    assert json.loads(value) == {"rebuild_from": "2023-05-03", "rebuild_to": "2023-05-09"}
    flag, value = _render(warehouse, task.dbt_cmd_flags, rebuild_from="2023-05-03")
    assert json.loads(value) == {"rebuild_from": "2023-05-03", "rebuild_to": None}
    # rebuild_to alone is passed on, and dbt refuses it (int_rebuild_scope) instead of
    # silently rebuilding nothing
    flag, value = _render(warehouse, task.dbt_cmd_flags, rebuild_to="2023-05-09")
    assert json.loads(value) == {"rebuild_from": None, "rebuild_to": "2023-05-09"}


def test_start_refuses_a_full_refresh_after_a_purge_unless_accepted(
    warehouse, tmp_path, monkeypatch
):
    """The start task stops a full refresh that would drop purged weeks from the marts."""
    from datetime import date, datetime

    from rto.retention import RetentionRefused
    from rto.warehouse import connect

    data = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW_VAR_RTO_DATA_DIR", str(data))
    monkeypatch.setenv("AIRFLOW_VAR_RTO_SOURCE_ROOT", str(tmp_path / "source"))
    from rto.config import resolve_paths

    paths = resolve_paths()
    assert paths.warehouse.is_relative_to(data)
    with connect(paths.warehouse) as con:
        con.execute(
            "insert into audit.purges values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                "ret1",
                "badge/events/2023-01-02/S1.csv.gz",
                "raw.badge_events",
                3,
                None,
                date(2023, 2, 28),
                25,
                datetime(2025, 3, 31, 3),
            ],
        )
    start = warehouse.get_task("start").python_callable

    def run(**params):
        defaults = {name: param.value for name, param in warehouse.params.items()}
        start(run_id="manual_1", params={**defaults, **params})

    run()  # a normal night is not concerned
    with pytest.raises(RetentionRefused, match="1 badge-event file"):
        run(full_refresh=True)
    run(full_refresh=True, accept_purged_history_loss=True)
    with connect(paths.warehouse) as con:
        assert con.execute(
            "select count(*) from audit.pipeline_runs where run_id = 'manual_1'"
        ).fetchone() == (1,)
