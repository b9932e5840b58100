"""OpenLineage: off by default; with a transport set, a night's tasks emit START and COMPLETE.

The provider decides once per process whether it is enabled, so the night runs in a
subprocess with the transport configured (a file transport: one JSON event a line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from rto.cli import INGEST_DAGS, WAREHOUSE_DAG


def test_openlineage_is_off_without_a_transport():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__OPENLINEAGE__", "OPENLINEAGE"))
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from airflow.providers.openlineage import conf; print(conf.is_disabled())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_a_night_emits_start_and_complete_events(tmp_path):
    from rto.simulator import SimulatorConfig, generate

    source, data, events = tmp_path / "source", tmp_path / "data", tmp_path / "ol.jsonl"
    generate(
        SimulatorConfig(
            out=source, employees=20, start=date(2023, 5, 1), end=date(2023, 5, 21), seed=5
        )
    )
    env = os.environ | {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "rto_test",
    }
    night = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from rto.cli import main; sys.exit(main())",
            "run",
            "--source-root",
            str(source),
            "--data-dir",
            str(data),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]
    emitted = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    seen = {(e["eventType"], e["job"]["name"]) for e in emitted}
    assert {e["job"]["namespace"] for e in emitted} == {"rto_test"}
    for dag_id in (*INGEST_DAGS, WAREHOUSE_DAG):
        # a completed DAG run (under dag.test the run is created already running, so the
        # scheduler's DAG-run START is not emitted; every task emits both)
        assert ("COMPLETE", dag_id) in seen, dag_id
    tasks = [
        *(f"{d}.{t}" for d in INGEST_DAGS for t in ("pull", "load", "check_raw")),
        *(
            f"{WAREHOUSE_DAG}.{t}"
            for t in ("start", "dbt_seed", "check_staging", "check_marts", "publish", "reports")
        ),
        f"{WAREHOUSE_DAG}.dbt_marts.fct_rto_compliance_weekly_model_build",
    ]
    for job in tasks:
        assert ("START", job) in seen and ("COMPLETE", job) in seen, job
    assert not [e for e in emitted if e["eventType"] == "FAIL"]
