"""The delivery sensor of the ingest DAGs under ``dag.test``: it defers (``dag.test`` runs
the trigger inline, as the triggerer does in production), picks up a file that arrives
during the grace window, and lets the night go on when one never does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rto.ingest.freshness import HR_ENTITIES, delivery_date_for


@pytest.fixture(scope="module")
def airflow_db():
    from rto.cli import _set_default_env, prepare_airflow

    _set_default_env()
    prepare_airflow()


def _sensor_output(dag_id: str, run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalars(
            select(XComModel.value).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == "wait_for_delivery",
                XComModel.key == "return_value",
            )
        ).one()
    return XComModel.deserialize_value(type("Row", (), {"value": value})())


def _night(
    tmp_path: Path, monkeypatch, arrives_after: float | None, grace: str
) -> tuple[dict, str, str, list]:
    """Run rto_ingest_hr's sensor (the other tasks marked successful) on a source root
    missing one HR file of the night; returns what the sensor reported."""
    from airflow.dag_processing.dagbag import DagBag

    from rto.config import PROJECT_ROOT

    root = tmp_path / "src"
    logical = datetime.now(UTC).replace(microsecond=0)
    day = delivery_date_for(logical, "UTC")
    for entity in HR_ENTITIES[:-1]:
        (root / "hr" / day.isoformat()).mkdir(parents=True, exist_ok=True)
        (root / "hr" / day.isoformat() / f"{entity}.jsonl").write_text("")
    late = root / "hr" / day.isoformat() / f"{HR_ENTITIES[-1]}.jsonl"
    monkeypatch.setenv("AIRFLOW_VAR_RTO_SOURCE_ROOT", str(root))
    monkeypatch.setenv("AIRFLOW_VAR_RTO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RTO_SCHEDULE_TZ", "UTC")
    # the window opens at the logical date (now); dag.test takes a few seconds to start
    monkeypatch.setenv("AIRFLOW_VAR_RTO_GRACE_MINUTES_HR", grace)

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "rto_ingest.py")).dags["rto_ingest_hr"]
    # look every second instead of every five minutes (the trigger is what is tested)
    dag.get_task("wait_for_delivery").poke_interval = timedelta(seconds=1)
    import rto.ingest.freshness as freshness

    looks: list[list[str]] = []
    real_missing_paths = freshness.missing_paths

    def looking(source_root: str, paths: list[str]) -> list[str]:
        """Count the sensor's looks; the late file is delivered after the first one."""
        missing = real_missing_paths(source_root, paths)
        looks.append(missing)
        if len(looks) == 1 and arrives_after is not None:
            threading.Timer(arrives_after, lambda: late.write_text("")).start()
        return missing

    monkeypatch.setattr(freshness, "missing_paths", looking)
    run = dag.test(logical_date=logical, mark_success_pattern="pull|load|check_raw")
    reported = _sensor_output(dag.dag_id, run.run_id)
    return reported, str(run.state), late.relative_to(root).as_posix(), looks


def test_a_file_arriving_within_the_grace_window_is_waited_for(airflow_db, tmp_path, monkeypatch):
    reported, state, late, looks = _night(tmp_path, monkeypatch, arrives_after=2.0, grace="2")
    assert state.endswith("success")
    # first look: the file is missing, so the sensor deferred; it arrived 2 s later and a
    # later look (after the trigger fired) found everything
    assert looks[0] == [late] and looks[-1] == [] and len(looks) >= 2
    assert reported["missing"] == []
    assert late in reported["expected"] and len(reported["expected"]) == 10


def test_a_file_still_missing_after_the_window_is_reported_not_fatal(
    airflow_db, tmp_path, monkeypatch
):
    reported, state, late, looks = _night(tmp_path, monkeypatch, arrives_after=None, grace="0.5")
    assert state.endswith("success")
    # it looked more than once (deferring in between) and then gave up without failing
    assert len(looks) >= 2 and all(m == [late] for m in looks)
    assert reported["missing"] == [late]
    assert reported["grace_minutes"] == 0.5
