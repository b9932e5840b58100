"""Expectation suites kept as reviewable JSON files under ``expectations/<step>/``.

A suite file names the table it checks and, optionally, the source it
belongs to; each expectation carries ``meta.severity``: ``blocking`` (a
failure stops publication) or ``warning`` (published, flagged in the audit).

``increment`` says which rows the night checks (see ``rto.quality.increment``):
``"run"`` (raw step, the default there: rows with ``_run_id`` = the run),
``"night_files"`` (rows whose ``source_path`` is one of the night's files),
``{"date_column": "week_start"}`` (rows in the weeks the night rebuilt) or
``false`` (the whole table; the default for staging and marts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rto.config import EXPECTATIONS_DIR

STEPS = ("raw", "staging", "marts")
SEVERITIES = ("blocking", "warning")


class SuiteError(ValueError):
    """A suite file is malformed."""


@dataclass(frozen=True)
class Suite:
    name: str
    step: str
    table: str
    source: str | None
    increment: str | None  # "run", "night_files", "window" or None (whole table)
    expectations: tuple[dict, ...]
    path: Path
    date_column: str | None = None  # for increment "window"


def load_suites(step: str, source: str | None = None, root: Path = EXPECTATIONS_DIR) -> list[Suite]:
    """Read every suite of a step (and, for the raw step, of one source)."""
    if step not in STEPS:
        raise SuiteError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
    suites = []
    for path in sorted((root / step).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
        for key in ("name", "table", "expectations"):
            if key not in data:
                raise SuiteError(f"{path}: missing key {key!r}")
        for i, exp in enumerate(data["expectations"]):
            severity = exp.get("meta", {}).get("severity")
            if severity not in SEVERITIES:
                raise SuiteError(
                    f"{path}: expectation {i} ({exp.get('type')}) needs meta.severity "
                    f"'blocking' or 'warning', not {severity!r}"
                )
        increment, date_column = _increment(path, data.get("increment", step == "raw"), step)
        suite = Suite(
            data["name"],
            step,
            data["table"],
            data.get("source"),
            increment,
            tuple(data["expectations"]),
            path,
            date_column,
        )
        if source is None or suite.source in (None, source):
            suites.append(suite)
    return suites


_IDENT = re.compile(r"[a-z_][a-z0-9_]*")


def _increment(path: Path, value: object, step: str) -> tuple[str | None, str | None]:
    if value is False or value is None:
        return None, None
    if value is True or value == "run":
        return "run", None
    if value == "night_files" and step != "raw":
        return "night_files", None
    if isinstance(value, dict) and _IDENT.fullmatch(str(value.get("date_column", ""))):
        return "window", value["date_column"]
    raise SuiteError(
        f"{path}: increment must be true/'run', 'night_files', false or "
        f'{{"date_column": "<column>"}}, not {value!r}'
    )
