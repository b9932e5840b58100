"""The source files of DOMAIN.md section 3 and the raw table each one loads into.

Column names, types and allowed values are declared here once; the loader
builds its validation SQL only from these declarations, never from file
content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

SOURCES = ("hr", "badge", "layoffs")

# type names understood by the loader's validation
VARCHAR, DATE, TIMESTAMP, INTEGER = "varchar", "date", "timestamp", "integer"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = VARCHAR
    required: bool = False
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSpec:
    """One kind of source file."""

    entity: str  # e.g. "events"
    source: str  # hr | badge | layoffs
    pattern: re.Pattern[str]  # matched against the path relative to the source root
    fmt: str  # csv | jsonl
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def table(self) -> str:
        return f"raw.{self.source}_{self.entity}"

    @property
    def table_name(self) -> str:
        return f"{self.source}_{self.entity}"


_DATE = r"(?P<delivery>\d{4}-\d{2}-\d{2})"


def _hr(entity: str, *columns: Column) -> FileSpec:
    return FileSpec(entity, "hr", re.compile(rf"hr/{_DATE}/{entity}\.jsonl"), "jsonl", columns)


FILE_SPECS: tuple[FileSpec, ...] = (
    _hr(
        "sites",
        Column("site_id", required=True),
        Column("name"),
        Column("city"),
        Column("country", required=True),
        Column("timezone", required=True),
    ),
    _hr(
        "org_units",
        Column("org_unit_id", required=True),
        Column("name"),
        Column("parent_id"),
        Column("kind", required=True, allowed=("company", "vp_org", "department", "team")),
        Column("head_employee_id"),
    ),
    _hr(
        "employees",
        Column("employee_id", required=True),
        Column("full_name"),
        Column("email"),
        Column("hire_date", DATE, required=True),
        Column("termination_date", DATE),
        Column(
            "termination_reason",
            allowed=(
                "voluntary_resignation",
                "retirement",
                "involuntary_performance",
                "involuntary_other",
                "layoff",
            ),
        ),
        Column("worker_type", required=True, allowed=("employee", "contractor")),
        Column("home_site_id"),
        Column("country"),
    ),
    _hr(
        "job_history",
        Column("employee_id", required=True),
        Column("effective_date", DATE, required=True),
        Column("job_level", INTEGER),
        Column("job_family"),
        Column("org_unit_id"),
        Column("manager_id"),
        Column("event", allowed=("hire", "promotion", "transfer", "termination")),
    ),
    _hr(
        "leave",
        Column("leave_id", required=True),
        Column("employee_id", required=True),
        Column("start_date", DATE, required=True),
        Column("end_date", DATE, required=True),
        Column("leave_type"),
    ),
    _hr(
        "holidays",
        Column("country", required=True),
        Column("date", DATE, required=True),
        Column("name"),
    ),
    _hr(
        "team_policies",
        Column("org_unit_id", required=True),
        Column("required_days_per_week", INTEGER, required=True),
        Column("decided_by"),
        Column("valid_from", DATE, required=True),
        Column("valid_to", DATE),
    ),
    _hr(
        "exceptions",
        Column("exception_id", required=True),
        Column("scope", required=True, allowed=("employee", "org_unit")),
        Column("subject_id", required=True),
        Column("required_days_per_week", INTEGER, required=True),
        Column("reason"),
        Column("approved_by"),
        Column("valid_from", DATE, required=True),
        Column("valid_to", DATE),
    ),
    _hr(
        "nominations",
        Column("nomination_id", required=True),
        Column("cycle_id"),
        Column("employee_id", required=True),
        Column("from_level", INTEGER),
        Column("to_level", INTEGER),
        Column("nominated_on", DATE, required=True),
        Column("decided_on", DATE),
        Column("outcome", allowed=("promoted", "not_promoted", "pending")),
    ),
    _hr(
        "approvals",
        Column("approval_id", required=True),
        Column("nomination_id", required=True),
        Column("approver_id", required=True),
        Column("approved_on", DATE, required=True),
    ),
    FileSpec(
        "assignments",
        "badge",
        re.compile(rf"badge/assignments/{_DATE}\.csv(\.gz)?"),
        "csv",
        (
            Column("badge_id", required=True),
            Column("employee_id"),
            Column(
                "badge_type", required=True, allowed=("EMPLOYEE", "CONTRACTOR", "VISITOR", "TEMP")
            ),
            Column("valid_from", TIMESTAMP, required=True),
            Column("valid_to", TIMESTAMP),
        ),
    ),
    FileSpec(
        "events",
        "badge",
        re.compile(rf"badge/events/{_DATE}/(?P<site>[A-Za-z0-9_-]+)\.csv(\.gz)?"),
        "csv",
        (
            Column("event_id", required=True),
            Column("badge_id", required=True),
            Column("site_id", required=True),
            Column("reader_id"),
            Column("event_time", TIMESTAMP, required=True),
            Column("direction", allowed=("IN", "OUT")),
            Column("result", required=True, allowed=("GRANTED", "DENIED")),
        ),
    ),
    FileSpec(
        "rif_rounds",
        "layoffs",
        re.compile(rf"layoffs/{_DATE}/rif_rounds\.csv(\.gz)?"),
        "csv",
        (
            Column("rif_round_id", required=True),
            Column("name"),
            Column("announced_on", DATE),
            Column("scope_org_unit_id"),
            Column("planned_reductions", INTEGER),
        ),
    ),
    FileSpec(
        "rif_notices",
        "layoffs",
        re.compile(rf"layoffs/{_DATE}/rif_notices\.csv(\.gz)?"),
        "csv",
        (
            Column("notice_id", required=True),
            Column("rif_round_id", required=True),
            Column("employee_id", required=True),
            Column("notified_on", DATE, required=True),
            Column("separation_date", DATE),
            Column("status", required=True, allowed=("notified", "rescinded", "separated")),
        ),
    ),
)


def match(relative_path: str) -> tuple[FileSpec, date] | None:
    """Return the spec and delivery date of a source path, or None if it is not a source file."""
    for spec in FILE_SPECS:
        m = spec.pattern.fullmatch(relative_path)
        if m:
            try:
                return spec, date.fromisoformat(m.group("delivery"))
            except ValueError:
                return None
    return None


def specs_for(source: str) -> tuple[FileSpec, ...]:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return tuple(s for s in FILE_SPECS if s.source == source)


def column_names(source: str, entity: str) -> list[str]:
    """The contract's column names of one source file, in DOMAIN.md order."""
    for spec in specs_for(source):
        if spec.entity == entity:
            return [c.name for c in spec.columns]
    raise ValueError(f"no {source} file named {entity!r} in DOMAIN.md section 3")
