"""No secret in the repository: detect-secrets over every git-tracked file.

Runs with the rest of ``make test`` (so in CI): any finding fails. A reviewed
false positive is allowed where it stands, with detect-secrets' own inline
comment ``pragma: allowlist secret`` on its line, so that the allowance is seen
in code review; there is none today. Connection settings are checked too: the
dbt profile and the Python code read passwords from the environment (libpq's
``PGPASSWORD`` / ``~/.pgpass``) or Airflow, never from a literal.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from rto.config import PROJECT_ROOT


def _scan(paths: list[str], root: Path) -> dict[str, list[tuple[int, str]]]:
    """{path: [(line, secret type)]} that detect-secrets finds, with its default plugins."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    secrets = SecretsCollection(root=str(root))
    with default_settings():
        # one file at a time in this process: scan_files always forks a process pool,
        # and a fork of a threaded pytest-xdist worker can deadlock
        for path in paths:
            secrets.scan_file(path)
    return {
        path: sorted((s.line_number, s.type) for s in found)
        for path, found in secrets.data.items()
        if found
    }


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run from a git checkout to scan for secrets: {err}")
        pytest.skip(f"not a git checkout, nothing to scan: {err}")
    files = [f for f in out.decode().split("\0") if f and (PROJECT_ROOT / f).is_file()]
    assert len(files) > 100, files  # the whole project, not an empty listing
    return files


def test_no_secret_in_any_tracked_file():
    files = _tracked_files()
    old = Path.cwd()
    os.chdir(PROJECT_ROOT)  # detect-secrets reports paths relative to the working directory
    try:
        findings = _scan(files, PROJECT_ROOT)
    finally:
        os.chdir(old)
    assert findings == {}, (
        f"detect-secrets found possible secrets: {findings}. Remove them (use an Airflow "
        "connection/variable or the environment); a reviewed false positive gets an inline "
        "`pragma: allowlist secret` comment."
    )


def test_the_scanner_finds_what_it_must(tmp_path, monkeypatch):
    """A control: planted secrets (assembled here so this file holds none) are found."""
    planted = tmp_path / "settings.py"
    planted.write_text(
        f'aws_access_key_id = "{"AKIA" + "Z7XQ4MWTN5PLR2HY"}"\n'
        f'DATABASE_URL = "postgresql://rto:{"Tr0ub4dor" + "-and-3"}@db.internal:5432/rto"\n'
        "ordinary = 'nothing to see here'\n"
    )
    monkeypatch.chdir(tmp_path)
    found = _scan(["settings.py"], tmp_path)
    types = {t for _, t in found["settings.py"]}
    assert "AWS Access Key" in types
    assert "Basic Auth Credentials" in types
    assert 3 not in {line for line, _ in found["settings.py"]}


def test_connections_come_from_the_environment_or_airflow():
    profiles = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text())
    for name, output in profiles["rto_warehouse"]["outputs"].items():
        for key, value in output.items():
            if re.search(r"pass|secret|token|key", key, re.I):
                assert "env_var(" in str(value), f"profiles.yml {name}.{key} is not from env"
    # no password literal handed to a database client anywhere in the package or DAGs
    literal = re.compile(r"""\bpassword\s*=\s*["'][^"']+["']""", re.I)
    sources = [*PROJECT_ROOT.glob("dags/*.py"), *PROJECT_ROOT.glob("include/rto/**/*.py")]
    offenders = [str(p) for p in sources if literal.search(p.read_text())]
    assert offenders == []
    # the PostgreSQL settings are the RTO_PG_* variables; libpq finds the password itself
    from rto.postgres import connection_settings

    assert "password" not in connection_settings({})
