"""``docker-compose.yml`` checked without a Docker engine.

The file is validated against the Compose Specification's JSON schema, vendored in
``schemas/compose-spec.json`` (from check-jsonschema 0.39.0, Apache-2.0, see
``schemas/LICENSE.compose-spec``), before and after compose's variable interpolation,
as ``docker compose config`` would. Then what the schema cannot know: every Airflow
setting and CLI command exists in the installed Airflow 3, secrets are required from
the environment, the UI/API needs a login, healthchecks can pass, the project and
data are mounted where the code looks, and the environment is the one
``rto.deploy.deployment_environment`` describes (and the production test runs).
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from rto.config import PROJECT_ROOT
from rto.deploy import (
    COMPONENTS,
    COMPOSE_FILE,
    INIT_COMMANDS,
    SECRETS,
    ComposeError,
    deployment_environment,
    interpolate,
    load_compose,
    service_environment,
)

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
AIRFLOW_SERVICES = ("airflow-init", *COMPONENTS)
LONG_RUNNING = ("postgres", *COMPONENTS)
# Container-only keys: where uv keeps the environment, and the PATH that finds it.
CONTAINER_ONLY = {"UV_PYTHON_DOWNLOADS", "UV_PROJECT_ENVIRONMENT", "UV_LINK_MODE", "PATH"}
# names of settings that hold a secret (a *_FILE setting holds a path to one)
SECRET_LIKE = re.compile(r"^(?!.*_FILE$).*(PASSWORD|SECRET|TOKEN|_KEY$|FERNET)", re.I)
REQUIRED_REFERENCE = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}$")


def _env(**overrides: str) -> dict[str, str]:
    """An environment with every secret set (as a .env file would)."""
    return {name: f"test-{name.lower()}" for name in SECRETS} | overrides


@pytest.fixture(scope="module")
def raw() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(env=_env())


@cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(document)
    ]


@cache
def _airflow_options() -> dict[str, dict[str, dict]]:
    """Every [section] option the installed Airflow knows, from its config template."""
    import airflow

    template = Path(airflow.__file__).parent / "config_templates" / "config.yml"
    sections = yaml.safe_load(template.read_text())
    return {name: body.get("options") or {} for name, body in sections.items()}


@cache
def _cosmos_options() -> set[str]:
    """The [cosmos] options astronomer-cosmos reads."""
    import cosmos.settings

    source = Path(cosmos.settings.__file__).read_text()
    return set(re.findall(r'conf\.get\w*\(\s*"cosmos",\s*"(\w+)"', source))


# --------------------------------------------------------------------------------------
# The file as a whole
# --------------------------------------------------------------------------------------


def test_file_is_valid_against_the_compose_specification(raw, compose):
    assert not _errors(raw), _errors(raw)
    assert not _errors(compose), _errors(compose)


def test_schema_catches_a_broken_file(compose):
    """The vendored schema really rejects what docker compose would (a control)."""
    broken = copy.deepcopy(compose)
    broken["services"]["scheduler"]["enviroment"] = {"A": "b"}
    broken["services"]["api-server"]["depends_on"]["postgres"]["condition"] = "service_up"
    errors = _errors(broken)
    assert any("enviroment" in e for e in errors), errors
    assert any("service_up" in e for e in errors), errors


def test_every_secret_is_required_from_the_environment(raw):
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text()))
    assert required == set(SECRETS)
    for name in SECRETS:
        env = _env()
        del env[name]
        with pytest.raises(ComposeError, match=name):
            load_compose(env=env)
        with pytest.raises(ComposeError, match=name):
            load_compose(env=env | {name: ""})


def test_no_secret_is_written_in_the_file(raw):
    for service_name, service in raw["services"].items():
        for key, value in service_environment(service).items():
            if value is None:
                assert not SECRET_LIKE.search(key), f"{service_name}: {key} is passed through"
                continue
            if SECRET_LIKE.search(key):
                assert REQUIRED_REFERENCE.match(value), (
                    f"{service_name}: {key} must be ${{VAR:?message}}, not {value!r}"
                )
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert REQUIRED_REFERENCE.match(password), (
                    f"{service_name}: {key} holds a password in its URL: {password!r}"
                )
    # airflow-init writes the password file from its environment, not from the file
    script = raw["services"]["airflow-init"]["command"][0]
    assert 'os.environ["AIRFLOW_ADMIN_PASSWORD"]' in script


def test_interpolation_follows_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$HOME ${SET} $SET", env) == "$HOME x x"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d d  d"
    assert interpolate("${SET:+alt}${UNSET:+alt}", env) == "alt"
    with pytest.raises(ComposeError, match="EMPTY"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""


# --------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------


def test_long_running_services_have_healthchecks_and_restart(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *AIRFLOW_SERVICES}
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    # a one-shot init must not be restarted, and every component waits for it
    assert "restart" not in services["airflow-init"]
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in COMPONENTS:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
        }, name


def test_healthchecks_can_pass(compose):
    """Each healthcheck probes something the component really serves."""
    services = compose["services"]
    options = _airflow_options()

    api = services["api-server"]
    api_port = shlex.split(api["command"][0])[shlex.split(api["command"][0]).index("--port") + 1]
    assert f"http://localhost:{api_port}/api/v2/monitor/health" in " ".join(
        api["healthcheck"]["test"]
    )
    assert any(p.split(":")[-1] == api_port for p in api["ports"])

    scheduler = services["scheduler"]
    env = service_environment(scheduler)
    port = env.get(
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
        options["scheduler"]["scheduler_health_check_server_port"]["default"],
    )
    assert f"http://localhost:{port}/health" in " ".join(scheduler["healthcheck"]["test"])
    assert env.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "").lower() == "true", (
        "the scheduler serves /health only with [scheduler] enable_health_check"
    )

    for name, job in (("dag-processor", "DagProcessorJob"), ("triggerer", "TriggererJob")):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        argv = shlex.split(test[1])
        assert argv[:4] == ["airflow", "jobs", "check", "--job-type"] and argv[4] == job
        _parse_airflow_cli(argv)

    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def _parse_airflow_cli(argv: list[str]) -> None:
    """Fail unless the installed Airflow's CLI accepts ``argv`` (parsed, not run)."""
    from airflow.cli.cli_parser import get_parser

    assert argv[0] == "airflow", argv
    try:
        get_parser().parse_args(argv[1:])
    except SystemExit as exit_:
        pytest.fail(f"the airflow CLI rejects {shlex.join(argv)} (exit {exit_.code})")


def test_commands_are_the_deployments_and_airflow_accepts_them(compose):
    services = compose["services"]
    script = services["airflow-init"]["command"][0]
    steps = [shlex.split(step) for step in script.split("&&")]
    positions = []
    for argv in INIT_COMMANDS:
        assert list(argv) in steps, f"airflow-init does not run {shlex.join(argv)}"
        positions.append(steps.index(list(argv)))
        if argv[0] == "airflow":
            _parse_airflow_cli(list(argv))
    assert positions == sorted(positions), "airflow-init runs its steps out of order"
    assert any(step[:2] == ["uv", "sync"] and "--frozen" in step for step in steps)
    for name, argv in COMPONENTS.items():
        command = shlex.split(services[name]["command"][0])
        # uv is installed in airflow-init's container only; the others run the venv's airflow
        assert "uv" not in command and "uv" not in shlex.split(
            " ".join(services[name]["healthcheck"]["test"])
        ), f"{name} calls uv, which its container does not have"
        assert command[: len(argv)] == list(argv), name
        _parse_airflow_cli(command)
    assert "[project.scripts]" in (PROJECT_ROOT / "pyproject.toml").read_text()
    assert 'rto-pipeline = "rto.cli:main"' in (PROJECT_ROOT / "pyproject.toml").read_text()


def test_ui_and_api_require_a_login(compose):
    assert "ALL_ADMINS" not in COMPOSE_FILE.read_text(), "anonymous admin access is configured"
    for name in AIRFLOW_SERVICES:
        env = service_environment(compose["services"][name])
        manager = env["AIRFLOW__CORE__AUTH_MANAGER"]
        module, _, cls = manager.rpartition(".")
        imported = __import__(module, fromlist=[cls])
        assert hasattr(imported, cls), manager
        users = [u.split(":") for u in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")]
        assert all(len(u) == 2 and u[1] in {"viewer", "user", "op", "admin"} for u in users)
        passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        assert f"> {passwords}" in compose["services"]["airflow-init"]["command"][0]
        assert _on_named_volume(compose["services"][name], passwords), passwords


def test_login_user_is_configured_and_its_password_has_no_default(raw):
    """Issue 8: the user name comes from the environment, the password only from it."""
    options = _airflow_options()["core"]
    # anonymous admin access stays off: the option is unset and Airflow's default is False
    assert options["simple_auth_manager_all_admins"]["default"] == "False"
    for name in AIRFLOW_SERVICES:
        env = service_environment(raw["services"][name])
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env, name
        assert (
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "${AIRFLOW_ADMIN_USER:-admin}:admin"
        )
    alice = load_compose(env=_env(AIRFLOW_ADMIN_USER="alice"))["services"]["airflow-init"]
    users = service_environment(alice)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert users == "alice:admin"

    # airflow-init's password file: the configured user, the password from the environment
    script = raw["services"]["airflow-init"]["command"][0]
    step = next(s for s in script.split("&&") if "passwords.json" in s)
    argv = shlex.split(step.strip().removeprefix("(umask 077 &&").split(">")[0])
    assert argv[:2] == ["python", "-c"]
    run = [sys.executable, "-c", argv[2]]
    base = {"PATH": os.environ.get("PATH", ""), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users}
    password = secrets.token_urlsafe(12)  # made up here: the repo holds no password
    written = subprocess.run(
        run, env=base | {"AIRFLOW_ADMIN_PASSWORD": password}, capture_output=True
    )
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout) == {"alice": password}
    missing = subprocess.run(run, env=base, capture_output=True, text=True)
    assert missing.returncode != 0 and "AIRFLOW_ADMIN_PASSWORD" in missing.stderr


def _mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume in short syntax."""
    out = []
    for item in service.get("volumes", []):
        parts = item.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def _mount_of(service: dict, path: str) -> tuple[str, str, bool] | None:
    """The mount whose target holds ``path`` (the deepest one)."""
    holding = [
        m for m in _mounts(service) if path == m[1] or path.startswith(m[1].rstrip("/") + "/")
    ]
    return max(holding, key=lambda m: len(m[1]), default=None)


def _on_named_volume(service: dict, path: str) -> bool:
    mount = _mount_of(service, path)
    return bool(mount) and not mount[0].startswith((".", "/")) and not mount[2]


def test_project_is_mounted_and_data_lives_on_volumes(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, _, _ in _mounts(service):
            assert source.startswith((".", "/")) or source in declared, (name, source)
    assert _on_named_volume(compose["services"]["postgres"], "/var/lib/postgresql/data")
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        env = service_environment(service)
        project = _mount_of(service, env["AIRFLOW__CORE__DAGS_FOLDER"])
        assert project and project[0] in ("./", ".") and project[2], (
            f"{name}: the project must be mounted read-only where DAGS_FOLDER points"
        )
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == project[1].rstrip("/") + "/dags"
        assert service["working_dir"] == project[1]
        # everything written at run time is on a writable named volume
        for key in (
            "AIRFLOW_HOME",
            "AIRFLOW_VAR_RTO_DATA_DIR",
            "RTO_VAR_DIR",
            "AIRFLOW__COSMOS__CACHE_DIR",
            "UV_PROJECT_ENVIRONMENT",  # else uv puts .venv in the read-only project
        ):
            assert env.get(key), f"{name}: {key} is not set"
            assert _on_named_volume(service, env[key]), f"{name}: {key}={env[key]}"
        assert env["PATH"].split(":")[0] == env["UV_PROJECT_ENVIRONMENT"] + "/bin"
        # what airflow-init writes (venv, manifest, passwords) the components see
        assert _mounts(service) == _mounts(compose["services"]["airflow-init"]), name


def test_executor_runs_tasks_in_parallel(compose):
    options = _airflow_options()
    envs = {name: service_environment(compose["services"][name]) for name in AIRFLOW_SERVICES}
    envs["airflow-init"].pop("AIRFLOW_ADMIN_PASSWORD")
    first = envs["scheduler"]
    assert all(env == first for env in envs.values()), "Airflow services differ in settings"
    assert first["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert int(first["AIRFLOW__CORE__PARALLELISM"]) > 1
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "sqlite" not in COMPOSE_FILE.read_text()
    assert options["core"]["executor"]  # the option exists in this Airflow
    # tasks run by the scheduler's executor reach the api-server by its service name
    api = shlex.split(compose["services"]["api-server"]["command"][0])
    port = api[api.index("--port") + 1]
    url = first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == f"http://api-server:{port}/execution/", url


def test_every_airflow_setting_exists_in_this_airflow(compose):
    options = _airflow_options()
    env = service_environment(compose["services"]["scheduler"])
    for key, value in env.items():
        match = re.fullmatch(r"AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)", key)
        if not match:
            continue
        section, option = match[1].lower(), match[2].lower()
        if section == "cosmos":
            assert option in _cosmos_options(), f"{key}: astronomer-cosmos has no such option"
            continue
        assert option in options.get(section, {}), f"{key}: Airflow has no [{section}] {option}"
        kind = options[section][option].get("type")
        if kind == "boolean":
            assert value.lower() in ("true", "false"), f"{key}={value!r} is not a boolean"
        elif kind == "integer":
            assert value.isdigit(), f"{key}={value!r} is not an integer"


def _code_environment_reads() -> set[str]:
    """Environment variables the DAGs and the package read (simulator and CLI aside)."""
    files = [*(PROJECT_ROOT / "dags").glob("*.py"), *(PROJECT_ROOT / "include/rto").rglob("*.py")]
    names: set[str] = set()
    for path in files:
        if {"simulator"} & set(path.parts) or path.name in ("cli.py", "deploy.py"):
            continue
        text = path.read_text()
        names |= set(re.findall(r"environ(?:\.get\(|\[)\s*[\"']([A-Z][A-Z0-9_]+)[\"']", text))
    return names


def _code_variables() -> set[str]:
    """Airflow Variables the package reads (constants named ``*_VARIABLE``)."""
    names: set[str] = set()
    for path in (PROJECT_ROOT / "include/rto").rglob("*.py"):
        names |= set(re.findall(r"^\w+_VARIABLE\s*=\s*\"(\w+)\"", path.read_text(), re.M))
    return names


def test_environment_is_the_deployments_and_covers_what_the_code_reads(compose):
    env = service_environment(compose["services"]["scheduler"])
    expected = deployment_environment(
        **{
            p: "x"
            for p in (
                "airflow_home",
                "dags_folder",
                "sql_alchemy_conn",
                "execution_api_url",
                "passwords_file",
                "jwt_secret",
                "source_root",
                "data_dir",
                "pseudonym_key",
                "var_dir",
                "cosmos_cache_dir",
            )
        }
    )
    passed_through = {k for k, v in env.items() if v is None}
    assert set(env) - CONTAINER_ONLY - passed_through == set(expected), (
        f"missing {sorted(set(expected) - set(env))}, "
        f"not in the deployment {sorted(set(env) - CONTAINER_ONLY - passed_through - set(expected))}"
    )
    # a key passed through from the host is an optional setting the code reads
    assert passed_through <= _code_environment_reads(), passed_through
    # fixed values of the deployment are the compose file's too
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__AUTH_MANAGER",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "RTO_SCHEDULE_TZ",
        "RTO_INGEST_CRON",
    ):
        assert env[key] == expected[key], key
    # every Variable and RTO_* setting the code reads reaches the containers;
    # RTO_PROJECT_ROOT is derived from the package's path, which is the mount
    variables = _code_variables()
    assert {"rto_source_root", "rto_data_dir", "rto_pseudonym_key"} <= variables
    for variable in variables:
        assert f"AIRFLOW_VAR_{variable.upper()}" in env, variable
    read = {n for n in _code_environment_reads() if n.startswith("RTO_")} - {"RTO_PROJECT_ROOT"}
    assert {"RTO_VAR_DIR", "RTO_SCHEDULE_TZ", "RTO_INGEST_CRON"} <= read
    missing = {n for n in read if n not in env and n != "RTO_WAREHOUSE_PATH"}
    assert not missing, f"the code reads {sorted(missing)} but the containers do not get it"
