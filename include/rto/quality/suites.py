"""Expectation suites kept as reviewable JSON files under ``expectations/<step>/``.

A suite file names the table it checks and, optionally, the source it
belongs to; each expectation carries ``meta.severity``: ``blocking`` (a
failure stops publication) or ``warning`` (published, flagged in the audit).
"""

from __future__ import annotations

import json
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
    increment: bool  # raw step: check only the rows this run loaded
    expectations: tuple[dict, ...]
    path: Path


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
        suite = Suite(
            data["name"],
            step,
            data["table"],
            data.get("source"),
            bool(data.get("increment", step == "raw")),
            tuple(data["expectations"]),
            path,
        )
        if source is None or suite.source in (None, source):
            suites.append(suite)
    return suites
