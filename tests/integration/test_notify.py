"""Failure notifications: a failing night through Airflow posts to a local webhook.

A tiny HTTP server on the loopback interface stands in for the on-call channel. The
night is the golden source root with one employee delivered twice, which fails the
blocking raw check of ``rto_ingest_hr``.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

GOLDEN_SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "source"


class Receiver:
    """A local webhook: records every POST body."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/rto"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_failing_night_notifies_with_run_dag_task_and_error(tmp_path, monkeypatch):
    from rto.cli import run_night

    source, data = tmp_path / "source", tmp_path / "data"
    shutil.copytree(GOLDEN_SOURCE, source)
    employees = source / "hr" / "2023-11-19" / "employees.jsonl"
    lines = employees.read_text().splitlines()
    employees.write_text("\n".join([*lines, lines[0]]) + "\n")

    with Receiver() as hook:
        monkeypatch.setenv("AIRFLOW_VAR_RTO_ALERT_WEBHOOK_URL", hook.url)
        assert not run_night(str(source), str(data)), "the night should have failed"

    # check_raw does not retry (a failed check is deterministic): one failure, one message
    assert len(hook.received) == 1, hook.received
    (message,) = hook.received
    assert message["event"] == "task_failed"
    assert (message["dag_id"], message["task_id"], message["try_number"]) == (
        "rto_ingest_hr",
        "check_raw",
        1,
    )
    assert message["error"].startswith("BlockingCheckFailed: 1 blocking check(s) failed")
    assert "raw_hr_employees" in message["error"]
    assert "expect_compound_columns_to_be_unique" in message["error"]
    assert message["run_id"] in message["text"] and "check_raw" in message["text"]
    # the same run, as the DAG-level callback recorded it in the audit
    con = duckdb.connect(str(data / "warehouse" / "build.duckdb"), read_only=True)
    try:
        runs = con.execute("select run_id, dag_id, status from audit.pipeline_runs").fetchall()
    finally:
        con.close()
    assert runs == [(message["run_id"], "rto_ingest_hr", "failed")]


def test_nothing_is_sent_when_no_notifier_is_configured(monkeypatch):
    from rto.notify import on_task_failure

    monkeypatch.delenv("AIRFLOW_VAR_RTO_ALERT_WEBHOOK_URL", raising=False)
    with Receiver() as hook:
        sent = on_task_failure({"run_id": "r1", "exception": RuntimeError("boom")})
    assert sent is False and hook.received == []


def test_an_unreachable_notifier_does_not_mask_the_failure(monkeypatch):
    from rto.deploy import free_port
    from rto.notify import on_task_failure

    monkeypatch.setenv("AIRFLOW_VAR_RTO_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/x")
    assert on_task_failure({"run_id": "r1", "exception": RuntimeError("boom")}) is False


def test_a_notifier_url_must_be_http():
    from rto.notify import WebhookNotifier

    with pytest.raises(ValueError, match="rto_alert_webhook_url"):
        WebhookNotifier("file:///etc/passwd")
