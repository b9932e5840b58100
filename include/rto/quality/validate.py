"""Run a step's suites with Great Expectations and record every result in ``audit.dq_results``.

GX's SQL datasource cannot read DuckDB (GX issues 10738 and 11579), so each
table (or the run's increment of it) is read with DuckDB into a pandas frame
and handed to a GX pandas dataframe asset. Results also go to a GX file
context under ``<rto_data_dir>/gx`` whose Data Docs site is rebuilt after
each step.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rto.quality.suites import Suite, load_suites

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


class BlockingCheckFailed(RuntimeError):
    """At least one blocking expectation failed: publication must not happen."""


@dataclass
class StepOutcome:
    step: str
    checked: int = 0
    failed_blocking: list[str] = field(default_factory=list)
    failed_warning: list[str] = field(default_factory=list)
    data_docs: Path | None = None

    def raise_if_blocked(self) -> None:
        if self.failed_blocking:
            raise BlockingCheckFailed(
                f"{len(self.failed_blocking)} blocking check(s) failed at step {self.step}: "
                + "; ".join(self.failed_blocking)
                + ". Nothing will be published; see audit.dq_results and the Data Docs."
            )


def _quiet_gx_import() -> None:
    """GX logs a line per public function at import ("Skipping registering ..."): hide them."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _context(gx_root: Path):
    _quiet_gx_import()
    import great_expectations as gx

    gx_root.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(gx_root))
    ctx.variables.progress_bars = {"globally": False}
    return ctx


def _gx_suite(ctx, suite: Suite):
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    gx_suite = ExpectationSuite(name=suite.name, meta={"step": suite.step, "table": suite.table})
    for exp in suite.expectations:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(
                type=exp["type"], kwargs=exp.get("kwargs", {}), meta=exp.get("meta", {})
            )
        )
    return ctx.suites.add_or_update(gx_suite)


def _frame(con: duckdb.DuckDBPyConnection, suite: Suite, run_id: str):
    # Table names come from the suite files in git, never from data.
    if suite.increment:
        return con.execute(f"select * from {suite.table} where _run_id = ?", [run_id]).df()
    return con.execute(f"select * from {suite.table}").df()


def run_step(
    con: duckdb.DuckDBPyConnection,
    gx_root: Path,
    step: str,
    run_id: str,
    now: datetime,
    source: str | None = None,
    expectations_root: Path | None = None,
) -> StepOutcome:
    """Validate every suite of ``step`` and record the results.

    Args:
        con: open build warehouse.
        gx_root: folder of the GX file context (inside the ignored data dir).
        step: raw, staging or marts.
        run_id: Airflow run id, written with every result.
        now: time stamped on the results.
        source: for the raw step, only that source's suites.
    """
    _quiet_gx_import()
    import great_expectations as gx

    kwargs = {"root": expectations_root} if expectations_root else {}
    suites = load_suites(step, source, **kwargs)
    outcome = StepOutcome(step)
    if not suites:
        return outcome
    ctx = _context(gx_root)
    datasource = ctx.data_sources.add_or_update_pandas(f"rto_{step}")
    con.execute(
        "delete from audit.dq_results where run_id = ? and step = ? and suite in "
        "(select unnest(?))",
        [run_id, step, [s.name for s in suites]],
    )
    for suite in suites:
        frame = _frame(con, suite, run_id)
        existing = {a.name for a in datasource.assets}
        asset = (
            datasource.get_asset(suite.name)
            if suite.name in existing
            else datasource.add_dataframe_asset(suite.name)
        )
        batch_names = {b.name for b in asset.batch_definitions}
        batch = (
            asset.get_batch_definition("whole")
            if "whole" in batch_names
            else asset.add_batch_definition_whole_dataframe("whole")
        )
        definition = ctx.validation_definitions.add_or_update(
            gx.ValidationDefinition(
                name=f"{step}.{suite.name}", data=batch, suite=_gx_suite(ctx, suite)
            )
        )
        result = definition.run(batch_parameters={"dataframe": frame})
        rows = []
        for r in result.results:
            config = r.expectation_config
            severity = config.meta.get("severity", "blocking")
            details = r.result or {}
            observed = details.get("observed_value")
            column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list", []))
            label = f"{suite.name}.{config.type}({column})"
            if not r.success:
                (
                    outcome.failed_blocking if severity == "blocking" else outcome.failed_warning
                ).append(label)
            rows.append(
                [
                    run_id,
                    step,
                    suite.name,
                    config.type,
                    column or None,
                    severity,
                    bool(r.success),
                    None if observed is None else json.dumps(observed, default=str),
                    details.get("unexpected_count"),
                    details.get("element_count", len(frame)),
                    now,
                ]
            )
            outcome.checked += 1
        con.executemany(
            "insert into audit.dq_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        log.info(
            "%s: %d rows, %d expectations, success=%s",
            suite.name,
            len(frame),
            len(rows),
            result.success,
        )
    ctx.build_data_docs()
    outcome.data_docs = gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    for label in outcome.failed_warning:
        log.warning("warning check failed: %s", label)
    return outcome
