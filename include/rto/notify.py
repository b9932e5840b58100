"""Failure callbacks: record the failed run in ``audit`` and notify whoever is on call.

- :func:`on_task_failure` (every task, through ``default_args``) runs when a task has
  failed for good (retries exhausted). It sends the failure (DAG, run, task, try, error)
  through :class:`WebhookNotifier`, an Airflow notifier, when one is configured: the
  Variable ``rto_alert_webhook_url`` (or ``AIRFLOW_VAR_RTO_ALERT_WEBHOOK_URL``). Nothing
  is sent when it is unset. The URL may carry a token, so it lives in a Variable or a
  secrets backend, never in the repository.
- :func:`on_dag_failure` (DAG level) records the run as failed in ``audit.pipeline_runs``.

The task-level callback is the one that notifies because it runs in the task's own process
(under the scheduler's executor and under ``dag.test`` alike) and has the exception; the
DAG-level callback runs in the dag-processor and knows only the reason the run failed.
A notifier that cannot be reached is logged and never masks the task's own failure.

Only the standard library and ``airflow.sdk`` are imported at module level: the DAG files
import this module.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

WEBHOOK_VARIABLE = "rto_alert_webhook_url"


def webhook_url() -> str:
    """The configured webhook URL, or "" when no notifier is configured."""
    from rto.config import _setting

    return _setting(WEBHOOK_VARIABLE, "").strip()


def failure_payload(context: Any) -> dict[str, Any]:
    """What a failure notification says: enough to find the run and its log."""
    ti = context.get("task_instance") or context.get("ti")
    dag = context.get("dag")
    logical_date = context.get("logical_date")
    exception = context.get("exception")
    return {
        "event": "task_failed",
        "dag_id": getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None),
        "run_id": context.get("run_id"),
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": logical_date.isoformat() if logical_date else None,
        "error": f"{type(exception).__name__}: {exception}" if exception else None,
    }


class WebhookNotifier(BaseNotifier):
    """POST a failure as JSON to a webhook (Slack-style incoming webhooks, chat bridges, ...).

    Args:
        url: where to POST.
        timeout: seconds before giving up on the receiver.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__()
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"{WEBHOOK_VARIABLE} must be an http(s) URL; got one starting with {url[:8]!r}"
            )
        self.url = url
        self.timeout = timeout

    def notify(self, context: Any) -> None:
        payload = failure_payload(context)
        body = json.dumps(payload | {"text": _summary(payload)}, default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"the webhook answered {response.status}")


def _summary(payload: dict[str, Any]) -> str:
    return (
        f"RTO pipeline: {payload['dag_id']}.{payload['task_id']} failed in run "
        f"{payload['run_id']}: {payload['error']}"
    )


def on_task_failure(context: Any) -> bool:
    """Notify through the configured notifier; returns whether a notification was sent."""
    url = webhook_url()
    if not url:
        return False
    try:
        WebhookNotifier(url)(context)
    except (OSError, ValueError, RuntimeError, urllib.error.URLError) as err:
        # the address is not logged: it may hold a token
        log.error("could not send the failure notification (%s: %s)", type(err).__name__, err)
        return False
    return True


def on_dag_failure(context: Any, attempts: int = 5, wait: float = 2.0) -> None:
    """Record the failed run in ``audit.pipeline_runs``.

    The dag-processor runs this while another DAG's task may hold the DuckDB write lock,
    so a lock conflict is retried a few times before it is logged and given up.
    """
    from rto.config import resolve_paths
    from rto.nightly import record_run

    ti = context.get("task_instance") or context.get("ti")
    message = (
        f"task {getattr(ti, 'task_id', '?')} failed: "
        f"{context.get('exception') or context.get('reason') or 'see the task log'}"
    )
    for attempt in range(1, attempts + 1):
        try:
            record_run(resolve_paths(), context["run_id"], context["dag"].dag_id, "failed", message)
            return
        except Exception as err:  # noqa: BLE001 - duckdb's lock error is a plain IOException
            if attempt == attempts:
                log.error("could not record the failed run in audit.pipeline_runs: %s", err)
                return
            time.sleep(wait)
