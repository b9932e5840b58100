"""The production deployment: its settings, its compose file, and a native stack that runs them.

``docker-compose.yml`` describes the deployment for Docker. This module holds what that
file and a native run must agree on, so that one test can check the compose file and
another can run the very same configuration without Docker:

- :func:`deployment_environment`: every setting an Airflow component runs with;
- :data:`INIT_COMMANDS` and :data:`COMPONENTS`: what ``airflow-init`` runs once and the
  long-running processes;
- :func:`load_compose`: the compose file with compose's variable interpolation applied;
- :class:`AirflowStack`: those components started as local processes, and stopped;
- :class:`AirflowApi`: a small client of the REST API v2 (token login, DAGs, runs).

Only the standard library and PyYAML (an Airflow dependency) are imported here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rto.config import (
    DATA_DIR_VARIABLE,
    DUCKDB_POOL,
    PROJECT_ROOT,
    SOURCE_ROOT_VARIABLE,
)
from rto.notify import WEBHOOK_VARIABLE
from rto.publish.serve import PSEUDONYM_KEY_VARIABLE
from rto.retention import DEFAULT_RETENTION_MONTHS, RETENTION_VARIABLE

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"

AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
ADMIN_USER = "admin"
POOL_DESCRIPTION = "DuckDB build warehouse: a single writer"

# What airflow-init runs once, in order, before any component starts.
INIT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("airflow", "db", "migrate"),
    ("airflow", "pools", "set", DUCKDB_POOL, "1", POOL_DESCRIPTION),
    ("rto-pipeline", "parse"),
)

# The long-running processes, by compose service name.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api-server": ("airflow", "api-server"),
    "scheduler": ("airflow", "scheduler"),
    "dag-processor": ("airflow", "dag-processor"),
    "triggerer": ("airflow", "triggerer"),
}

# The secrets a deployment needs; none of them may have a value in the compose file.
SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW_VAR_RTO_PSEUDONYM_KEY",
)


def variable_env(variable: str) -> str:
    """The environment variable Airflow reads an Airflow Variable from."""
    return f"AIRFLOW_VAR_{variable.upper()}"


def deployment_environment(
    *,
    airflow_home: str,
    dags_folder: str,
    sql_alchemy_conn: str,
    execution_api_url: str,
    passwords_file: str,
    jwt_secret: str,
    source_root: str,
    data_dir: str,
    pseudonym_key: str,
    var_dir: str,
    cosmos_cache_dir: str,
    schedule_tz: str = "UTC",
    ingest_cron: str = "30 1 * * *",
    parallelism: int = 4,
    retention_months: int = DEFAULT_RETENTION_MONTHS,
    alert_webhook_url: str = "",
) -> dict[str, str]:
    """Every setting each Airflow component of the deployment runs with.

    ``docker-compose.yml`` sets exactly these keys (with values for containers); the
    production test runs the same keys with local values.
    """
    return {
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__DAGS_FOLDER": dags_folder,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # LocalExecutor runs tasks in parallel; the rto_duckdb pool serialises DuckDB writers.
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": passwords_file,
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api_url,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__COSMOS__CACHE_DIR": cosmos_cache_dir,
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "GX_ANALYTICS_ENABLED": "False",
        variable_env(SOURCE_ROOT_VARIABLE): source_root,
        variable_env(DATA_DIR_VARIABLE): data_dir,
        variable_env(PSEUDONYM_KEY_VARIABLE): pseudonym_key,
        variable_env(RETENTION_VARIABLE): str(retention_months),
        # empty: no notifier (rto.notify); a URL: failures are posted there
        variable_env(WEBHOOK_VARIABLE): alert_webhook_url,
        "RTO_VAR_DIR": var_dir,
        "RTO_SCHEDULE_TZ": schedule_tz,
        "RTO_INGEST_CRON": ingest_cron,
    }


# --------------------------------------------------------------------------------------
# The compose file
# --------------------------------------------------------------------------------------


class ComposeError(ValueError):
    """The compose file cannot be read or interpolated."""


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Apply compose's variable interpolation to one string.

    Supports ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+other}`` and ``${VAR+other}``.

    Raises:
        ComposeError: a required variable is missing, or a reference is malformed.
    """

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        if not braced:
            raise ComposeError(f"invalid interpolation ${{{match['braced']}}} in {where}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        present = name in env
        usable = present and env[name] != ""
        if op is None:
            return env.get(name, "")
        if op in (":-", "-"):
            return (
                env[name] if (usable if op == ":-" else present) else interpolate(arg, env, where)
            )
        if op in (":?", "?"):
            if usable if op == ":?" else present:
                return env[name]
            raise ComposeError(f"required variable {name} is missing a value: {arg} (in {where})")
        # :+ and +
        return interpolate(arg, env, where) if (usable if op == ":+" else present) else ""

    return _VARIABLE.sub(replace, value)


def _interpolate_tree(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, dict):
        return {
            k: _interpolate_tree(v, env, f"{where}.{k}" if where else str(k))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_interpolate_tree(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, where)
    return node


def load_compose(path: Path = COMPOSE_FILE, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a compose file; with ``env``, interpolate it as ``docker compose config`` would.

    YAML anchors and merge keys (``<<``) are resolved by the YAML loader.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ComposeError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ComposeError(f"{path} does not hold a mapping at the top level")
    return data if env is None else _interpolate_tree(data, env, "")


def service_environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict (compose accepts a mapping or ``KEY=VALUE`` items).

    A key without a value is passed through from the host's environment: it maps to None.
    """
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {str(k): None if v is None else str(v) for k, v in env.items()}


# --------------------------------------------------------------------------------------
# The REST API
# --------------------------------------------------------------------------------------


class ApiError(RuntimeError):
    """The API answered with an error status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} answered {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    """A small client of Airflow's REST API v2, authenticated with a JWT."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as err:
            raise ApiError(method, url, err.code, err.read().decode(errors="replace")) from None
        return json.loads(payload) if payload else None

    def login(self, username: str, password: str) -> str:
        """Exchange the SimpleAuthManager user's password for a JWT (``POST /auth/token``)."""
        answer = self.request(
            "POST", "/auth/token", {"username": username, "password": password}, auth=False
        )
        self.token = answer["access_token"]
        return self.token

    def health(self) -> dict:
        return self.request("GET", "/api/v2/monitor/health", auth=False)

    def dag(self, dag_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}")

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(
        self,
        dag_id: str,
        run_id: str | None = None,
        logical_date: str | None = None,
        conf: dict | None = None,
    ) -> dict:
        """Create a manual run; ``logical_date`` (ISO 8601 with offset) may be None."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def dag_runs(self, dag_id: str) -> list[dict]:
        answer = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"}
        )
        return answer["dag_runs"]

    def all_dag_runs(self, dag_ids: list[str] | tuple[str, ...]) -> list[dict]:
        """The runs of several DAGs in one call (``POST /dags/~/dagRuns/list``)."""
        answer = self.request(
            "POST",
            "/api/v2/dags/~/dagRuns/list",
            {"dag_ids": list(dag_ids), "page_limit": 100, "order_by": "run_after"},
        )
        return answer["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        out: list[dict] = []
        while True:
            answer = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances",
                params={"limit": 100, "offset": len(out)},
            )
            out.extend(answer["task_instances"])
            if not answer["task_instances"] or len(out) >= answer["total_entries"]:
                return out


# --------------------------------------------------------------------------------------
# A native stack: the compose services as local processes
# --------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _executable(argv: tuple[str, ...]) -> list[str]:
    """Run ``airflow`` and ``rto-pipeline`` with this interpreter, whatever PATH holds."""
    modules = {"airflow": "airflow", "rto-pipeline": "rto.cli"}
    return [sys.executable, "-m", modules[argv[0]], *argv[1:]]


@dataclass
class AirflowStack:
    """The deployment's components as local processes sharing one environment.

    Args:
        home: AIRFLOW_HOME; component logs go to ``home/processes/<name>.log``.
        env: the full environment of every process (see :func:`deployment_environment`).
        api_port: the loopback port of the api-server.
    """

    home: Path
    env: dict[str, str]
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def log_path(self, name: str) -> Path:
        return self.home / "processes" / f"{name}.log"

    def run(self, argv: tuple[str, ...], timeout: float, name: str | None = None) -> None:
        """Run one command (an init step, ``airflow backfill create``...) to completion.

        Its output goes to ``processes/<name>.log`` (by default named after the command).
        """
        log = self.log_path(name or "init-" + "-".join(argv[:3]).replace(" ", "_"))
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            result = subprocess.run(
                _executable(argv),
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode:
            raise RuntimeError(
                f"`{' '.join(argv)}` exited with {result.returncode}; see {log}:\n" + self.tail(log)
            )

    def init(self, timeout: float = 300.0) -> None:
        """What airflow-init does: migrate the database, create the pool, parse dbt.

        ``dbt parse`` needs no database, so it runs while the database is migrated.
        """
        database = [argv for argv in INIT_COMMANDS if argv[0] == "airflow"]
        others = [argv for argv in INIT_COMMANDS if argv[0] != "airflow"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(lambda: [self.run(argv, timeout) for argv in database]),
                pool.submit(lambda: [self.run(argv, timeout) for argv in others]),
            ]
            for future in futures:
                future.result()

    def start(self) -> None:
        """Start every component, each in its own process group (so stop() reaches its children)."""
        for name, argv in COMPONENTS.items():
            if name == "api-server":
                argv = (*argv, "--port", str(self.api_port), "--host", "127.0.0.1")
            log = self.log_path(name)
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as out:
                self.processes[name] = subprocess.Popen(
                    _executable(argv),
                    env=self.env,
                    cwd=PROJECT_ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent,
                )

    def check_alive(self) -> None:
        """Raise when a component has exited, with the end of its log."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.log_path(name)}:\n"
                    + self.tail(self.log_path(name))
                )

    def wait_healthy(
        self,
        api: AirflowApi,
        timeout: float,
        components: tuple[str, ...] = ("metadatabase", "scheduler", "triggerer", "dag_processor"),
    ) -> dict:
        """Wait until /api/v2/monitor/health reports ``components`` healthy; returns the answer."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                last = api.health()
            except (OSError, ApiError) as err:  # not listening yet
                last = err
            else:
                if all((last.get(c) or {}).get("status") == "healthy" for c in components):
                    return last
            time.sleep(0.5)
        raise TimeoutError(f"the stack was not healthy after {timeout:.0f}s; last answer: {last}")

    def stop(self, grace: float = 20.0) -> dict[str, int | None]:
        """Stop every component: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

        The scheduler goes first so that it starts no new task while the others stop.
        Returns each component's exit code.
        """
        order = ["scheduler", "triggerer", "dag-processor", "api-server"]
        procs = [(n, self.processes[n]) for n in order if n in self.processes]
        for _, proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc in procs:
            # children (executor workers, parsers, a task's process) may outlive the leader
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(group_members(p.pid) for _, p in procs):
            time.sleep(0.2)
        return {n: p.returncode for n, p in procs}

    @staticmethod
    def tail(path: Path, lines: int = 40) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _terminate_with_parent() -> None:
    """In the child before exec: get SIGTERM when the starting process dies (Linux).

    A component outlives a killed test run otherwise, since it leads its own session.
    """
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def group_members(pgid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes of process group ``pgid``: (pid, command), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append((int(stat.parent.name), text[text.index("(") + 1 : text.rindex(")")]))
    return members


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the process group led by ``proc`` (started with ``start_new_session``)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
