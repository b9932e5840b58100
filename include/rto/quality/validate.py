"""Run a step's suites with Great Expectations and record every result in ``audit.dq_results``.

GX's SQL datasource cannot read DuckDB (GX issues 10738 and 11579), so the
night's increment of each table (``rto.quality.increment``) is read with
DuckDB into an Arrow-backed pandas frame and handed to a GX pandas dataframe
asset. Properties of the whole table (row count, keys of the increment that
collide with older rows) are computed by DuckDB SQL and GX validates those
aggregates. Results also go to a GX file context under ``<rto_data_dir>/gx``
whose shared Data Docs site is rebuilt after each step, and to a Data Docs
site of the run alone under the run's report folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rto.quality.increment import (
    Window,
    badge_lookback_days,
    claim_night_files,
    marts_window,
    night_file_count,
)
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
    run_data_docs: Path | None = None
    night_files: int = 0
    rows_checked: int = 0
    window: Window | None = None
    seconds: float = 0.0

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


def _gx_suite(ctx, name: str, meta: dict, expectations):
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    gx_suite = ExpectationSuite(name=name, meta=meta)
    for exp in expectations:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(
                type=exp["type"], kwargs=exp.get("kwargs", {}), meta=exp.get("meta", {})
            )
        )
    return ctx.suites.add_or_update(gx_suite)


# Expectations that describe the whole table, not its rows. On an incremental suite they
# are computed by DuckDB over the whole table and GX validates the aggregate.
TABLE_COUNT = "expect_table_row_count_to_be_between"
UNIQUENESS = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


# An increment with more rows than this is not read into a frame: each row-level
# expectation becomes a DuckDB aggregate over the increment and GX validates those
# aggregates. The first night of a new warehouse (or after a backfill) checks the
# whole history at once: 310 M raw badge rows in one frame needed 23 GB. A nightly
# increment at 350,000 employees is large too: the HR snapshot's 2.76 M leave rows
# took 17 s in a frame for one expectation (bench/RESULTS.md, 2026-12-08).
DEFAULT_MAX_FRAME_ROWS = 200_000
# Rows of the increment whose key hashes one uniqueness check groups at once in DuckDB.
UNIQUENESS_SLICE_ROWS = 100_000_000
MAP_EXPECTATIONS = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
)


def max_frame_rows() -> int:
    """``RTO_CHECK_MAX_FRAME_ROWS``: the largest increment handed to GX as a frame."""
    return int(os.environ.get("RTO_CHECK_MAX_FRAME_ROWS", DEFAULT_MAX_FRAME_ROWS))


@dataclass(frozen=True)
class Aggregate:
    """An expectation computed by DuckDB: GX validates ``value`` between the bounds."""

    value: float | int
    min_value: float | int | None
    max_value: float | int | None
    unexpected: int | None
    elements: int
    observed: float | int | None = None  # what audit.dq_results records as observed


def _row_aggregate(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, exp: dict, rows: int
) -> Aggregate:
    """GX's semantics in SQL: nulls are neither expected nor unexpected, except for
    not_null; ``mostly`` is the share of non-null values that pass; uniqueness counts
    every row whose value (all-null keys skipped) occurs more than once."""
    kind, kwargs = exp["type"], exp.get("kwargs", {})
    if kind == TABLE_COUNT:
        return Aggregate(rows, kwargs.get("min_value"), kwargs.get("max_value"), None, rows, rows)
    if kind in UNIQUENESS:
        unexpected = _repeated_rows(con, sql, params, _key_columns(exp), rows)
        return _mostly(kwargs, unexpected, rows, rows)
    column = _ident(kwargs["column"])
    extra: list = []
    if kind == "expect_column_values_to_not_be_null":
        condition = f"{column} is null"
    elif kind == "expect_column_values_to_be_in_set":
        condition = f"{column} is not null and {column} not in (select unnest(?))"
        extra = [list(kwargs["value_set"])]
    elif kind == "expect_column_values_to_be_between":
        sides = []
        if kwargs.get("min_value") is not None:
            sides.append(f"{column} < ?")
            extra.append(kwargs["min_value"])
        if kwargs.get("max_value") is not None:
            sides.append(f"{column} > ?")
            extra.append(kwargs["max_value"])
        condition = f"{column} is not null and ({' or '.join(sides) or 'false'})"
    elif kind == "expect_column_values_to_match_regex":
        condition = f"{column} is not null and not regexp_matches(cast({column} as varchar), ?)"
        extra = [kwargs["regex"]]
    else:
        raise ValueError(f"{kind} cannot be computed in DuckDB; keep the increment smaller")
    unexpected, non_null = con.execute(
        f"select count(*) filter (where {condition}), count({column}) from ({sql}) i",
        [*extra, *params],
    ).fetchall()[0]
    if kind == "expect_column_values_to_not_be_null":
        return _mostly(kwargs, unexpected, rows, rows)
    return _mostly(kwargs, unexpected, non_null, rows)


def _repeated_rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, key: list[str], rows: int
) -> int:
    """Rows of ``sql`` whose key (all-null keys skipped) occurs more than once.

    First the rows that cannot repeat their key are set aside without grouping them
    (:func:`_rows_that_may_repeat`). The rest is grouped in two steps, so that no
    group-by holds 311 M string keys (the raw badge rows of a first night at 350,000
    employees ran out of the 4GB cap, bench/RESULTS.md): 64-bit hashes of the keys that
    occur more than once, a slice of the hash range at a time; then the exact count over
    the rows with such a hash only. With more than one slice the hashes are computed once
    into a temp table that each slice scans (rescanning and hashing the 311 M staging
    event ids once a slice took 453 s of a first night's checks); when no hash repeats,
    as on a clean night, the rows are not read a second time.
    """
    cols = ", ".join(_ident(c) for c in key)
    not_all_null = " or ".join(f"{_ident(c)} is not null" for c in key)
    try:
        sql, params, grouped = _rows_that_may_repeat(con, sql, params, key, rows)
        if grouped == 0:
            return 0
        slices = max(1, -(-grouped // UNIQUENESS_SLICE_ROWS))
        hashes = f"select hash({cols}) as h from ({sql}) i where {not_all_null}"
        hash_params = params
        if slices > 1:
            con.execute(f"create or replace temp table _rto_hashes as {hashes}", params)
            hashes, hash_params = "select h from _rto_hashes", []
        con.execute("create or replace temp table _rto_repeated (h ubigint)")
        for i in range(slices):
            con.execute(
                f"insert into _rto_repeated select h from ({hashes}) where h % ? = ? "
                "group by h having count(*) > 1",
                [*hash_params, slices, i],
            )
        con.execute("drop table if exists _rto_hashes")  # 311 M hashes at L: free them first
        (repeated,) = con.execute("select count(*) from _rto_repeated").fetchall()[0]
        if not repeated:
            return 0
        (unexpected,) = con.execute(
            f"select coalesce(sum(n), 0) from (select count(*) as n from ({sql}) i "
            f"where ({not_all_null}) and hash({cols}) in (select h from _rto_repeated) "
            f"group by {cols} having count(*) > 1)",
            params,
        ).fetchall()[0]
        return int(unexpected)
    finally:
        con.execute(
            "drop table if exists _rto_hashes; drop table if exists _rto_repeated; "
            "drop table if exists _rto_may_repeat; drop table if exists _rto_run_ends; "
            "drop table if exists _rto_unsafe_runs"
        )


# A one-column uniqueness check gives up proving runs of increasing keys (and groups
# every row) past this many runs, or when the runs that overlap others need more key
# ranges than this to select their rows.
MAX_KEY_RUNS = 1_000_000
MAX_KEY_RANGES = 64
FILE_COLUMNS = ("_file_id", "source_file_id")  # the loaded file of a raw or staging row


def _columns(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[str]:
    """The column names of ``sql`` (planned, no row read)."""
    return [d[0] for d in con.execute(f"select * from ({sql}) i limit 0", params).description]


def _rows_that_may_repeat(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, key: list[str], rows: int
) -> tuple[str, list, int]:
    """The rows of ``sql`` a uniqueness check must still group: (SQL, parameters, count).

    Proofs that need one streaming pass instead of a group-by, for the keys the
    warehouse has by the hundred million: a key of one column
    (:func:`_runs_that_may_repeat`) and a key of one column within each loaded file
    (:func:`_files_that_may_repeat`). Any other key: every row.
    """
    if len(key) == 1:
        return _runs_that_may_repeat(con, sql, params, key[0], rows)
    return _files_that_may_repeat(con, sql, params, key, rows)


def _runs_that_may_repeat(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, column: str, rows: int
) -> tuple[str, list, int]:
    """For a key of one column: the rows whose key another row may share.

    The non-null keys, as scanned, fall into runs in which the key strictly increases
    (vendors number their events, and tables keep most of the order they were written
    in); on a table with a file column (``_file_id``, ``source_file_id``) a run also
    ends where the file changes, so that the runs' ranges are the files' own (the badge
    files of one day, ids prefixed by site, would otherwise chain into one run per day
    whose ranges all overlap). No key repeats inside a run, nor between two runs whose
    (first, last) ranges do not overlap. So a key can repeat only in a run whose range
    overlaps another run's, and the rows of such runs are exactly those whose key falls
    in the union of those runs' ranges: only they are grouped. One streaming pass numbers the runs and
    keeps each one's first and last row. The scan order only decides how many rows are
    left to group, never the count. The proof is given up (every row grouped) beyond
    ``MAX_KEY_RUNS`` runs, or ``MAX_KEY_RANGES`` ranges to select the rows left.
    """
    k = _ident(column)
    columns = _columns(con, sql, params)
    files = [c for c in FILE_COLUMNS if c in columns and c != column][:1]
    same_file = "".join(f" and lag({_ident(f)}) over () = {_ident(f)}" for f in files)
    con.execute(
        "create or replace temp table _rto_run_ends as "
        "select run, k, n from ("
        "  select k, n, s, sum(s) over (rows between unbounded preceding and current row) as run,"
        "    coalesce(lead(s) over (), 1) as e"
        "  from ("
        f"    select {k} as k, row_number() over () as n,"
        f"      case when lag({k}) over () < {k}{same_file} then 0 else 1 end as s"
        f"    from ({sql}) i where {k} is not null)) "
        "where s = 1 or e = 1 limit ?",
        [*params, 2 * MAX_KEY_RUNS + 1],
    )
    (ends,) = con.execute("select count(*) from _rto_run_ends").fetchall()[0]
    if ends > 2 * MAX_KEY_RUNS:
        return sql, params, rows
    # ties in the order by first key: each of the tied runs sees the other, either way
    con.execute(
        "create or replace temp table _rto_unsafe_runs as "
        "with runs as ("
        "  select run, min(k) as lo, max(k) as hi, max(n) - min(n) + 1 as n"
        "  from _rto_run_ends group by run), "
        "placed as ("
        "  select *, max(hi) over (order by lo rows between unbounded preceding"
        "      and 1 preceding) as hi_before, lead(lo) over (order by lo) as lo_after"
        "  from runs) "
        "select lo, hi, n from placed where hi_before >= lo or lo_after <= hi"
    )
    (left,) = con.execute("select coalesce(sum(n), 0) from _rto_unsafe_runs").fetchall()[0]
    if not left:
        return sql, params, 0
    ranges = con.execute(
        "select min(lo), max(hi) from ("
        "  select lo, hi, sum(starts) over (order by lo, hi rows between unbounded preceding"
        "      and current row) as part"
        "  from ("
        "    select lo, hi, case when lo <= max(hi) over (order by lo, hi rows between"
        "        unbounded preceding and 1 preceding) then 0 else 1 end as starts"
        "    from _rto_unsafe_runs)) "
        "group by part order by 1 limit ?",
        [MAX_KEY_RANGES + 1],
    ).fetchall()
    if len(ranges) > MAX_KEY_RANGES:
        return sql, params, rows
    within = " or ".join([f"{k} between ? and ?"] * len(ranges))
    return (
        f"select * from ({sql}) i where {within}",
        [*params, *(v for r in ranges for v in r)],
        int(left),
    )


def _files_that_may_repeat(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, key: list[str], rows: int
) -> tuple[str, list, int]:
    """The rows a uniqueness within each loaded file must still group, and their count.

    For a key of one column and ``_file_id`` on a raw table: a file whose rows come, as
    scanned, as one run in increasing line order with the key increasing too cannot
    repeat a key (vendors number their events; the first night at 350,000 employees has
    311 M such rows, and grouping them all took most of that night's checks). One
    streaming pass finds the other files; only their rows are grouped. The order of the
    scan only decides how much is left to group, never the count.
    """
    others = [c for c in key if c != "_file_id"]
    if len(others) != 1 or len(key) != 2:
        return sql, params, rows
    if not {"_file_id", "_line_number"} <= set(_columns(con, sql, params)):
        return sql, params, rows
    k = _ident(others[0])
    con.execute(
        "create or replace temp table _rto_may_repeat as "
        "select _file_id, count(*) as n from ("
        "  select _file_id, lag(_file_id) over () = _file_id"
        "    and lag(_line_number) over () < _line_number"
        f"    and lag({k}) over () < {k} as follows"
        f"  from ({sql}) i) "
        "group by _file_id having count(*) - 1 <> count(*) filter (where follows)",
        params,
    )
    (left,) = con.execute("select coalesce(sum(n), 0) from _rto_may_repeat").fetchall()[0]
    # rows without a file id (never from the loader) are grouped all the same
    return (
        f"select * from ({sql}) i where _file_id is null "
        "or _file_id in (select _file_id from _rto_may_repeat)",
        params,
        int(left),
    )


def _row_aggregates(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, expectations: list, rows: int
) -> list[Aggregate]:
    """Every row-level expectation of a large increment, computed in DuckDB.

    Insertion order is not preserved meanwhile (aggregates have none to keep), which lets
    DuckDB spill more of them: alone on the machine, a uniqueness group-by over the 311 M
    raw badge rows of a first night at 350,000 employees ran out of the 4GB cap with the
    order kept and finished without it (bench/RESULTS.md; inside the pipeline it still ran
    out, hence the hash-first uniqueness in _row_aggregate). The setting belongs to the
    database, which the loader shares in-process and whose line numbers need the order,
    so it is restored before returning.
    """
    con.execute("set preserve_insertion_order = false")
    try:
        return [_row_aggregate(con, sql, params, e, rows) for e in expectations]
    finally:
        con.execute("reset preserve_insertion_order")


def _mostly(kwargs: dict, unexpected: int, considered: int, rows: int) -> Aggregate:
    mostly = kwargs.get("mostly")
    if mostly is None:
        return Aggregate(unexpected, 0, 0, unexpected, rows)
    share = 1.0 if considered == 0 else (considered - unexpected) / considered
    return Aggregate(share, mostly, 1.0, unexpected, rows)


def _key_columns(exp: dict) -> list[str]:
    kwargs = exp.get("kwargs", {})
    return [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", []))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _increment_sql(suite: Suite, scope: Scope) -> tuple[str, list]:
    """SQL and parameters selecting the rows the night checks."""
    # Table names come from the suite files in git, never from data.
    if suite.increment == "run":
        return f"select * from {suite.table} where _run_id = ?", [scope.run_id]
    if suite.increment == "night_files":
        return (
            f"select * from {suite.table} where source_path in ("
            "select s.source_path from audit.night_files n "
            "join audit.source_files s using (file_id) where n.run_id = ?)",
            [scope.run_id],
        )
    if suite.increment == "window":
        if scope.window is None or scope.window.start is None:
            return f"select * from {suite.table} where false", []
        return (
            f"select * from {suite.table} where {_ident(suite.date_column)} >= ?",
            [scope.window.start],
        )
    return f"select * from {suite.table}", []


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list):
    """The increment as an Arrow table and as an Arrow-backed pandas frame (no row loop)."""
    import pandas as pd

    table = con.sql(sql, params=params).to_arrow_table()
    return table, table.to_pandas(types_mapper=pd.ArrowDtype)


def _table_aggregate(
    con: duckdb.DuckDBPyConnection, suite: Suite, exp: dict, increment, rows: int
) -> int:
    """Whole-table property pushed down to DuckDB.

    Row count: rows of the whole table. Uniqueness: rows of the whole table whose key
    is also a key of the increment and appears more than once (new rows that collide
    with old ones are caught; the whole history is not re-grouped every night). When
    the increment (``rows`` of the table) is the whole table, as on a first night, the
    rows are grouped once instead of joined with themselves: 311 M staging events
    at 350,000 employees.
    """
    (total,) = con.execute(f"select count(*) from {suite.table}").fetchall()[0]
    if exp["type"] == TABLE_COUNT:
        return total
    if total == rows:
        # a key with a null column matches no increment key: skipped, as below
        key = _key_columns(exp)
        every = " and ".join(f"{_ident(c)} is not null" for c in key)
        return _repeated_rows(con, f"select * from {suite.table} where {every}", [], key, rows)
    cols = [_ident(c) for c in _key_columns(exp)]
    match = " and ".join(f"i.{c} = t.{c}" for c in cols)
    # A cursor of its own: registering on the main connection would clash with a result
    # still open there.
    cur = con.cursor()
    try:
        if isinstance(increment, tuple):  # (sql, params): an increment too large for a frame
            source, params = f"({increment[0]})", increment[1]
        else:
            # the increment already read for GX (an Arrow table): the staging view is not
            # evaluated a second time for it
            cur.register("_rto_increment", increment)
            source, params = "_rto_increment", []
        return cur.execute(
            f"select coalesce(sum(n), 0) from (select count(*) as n from {suite.table} t "
            f"where exists (select 1 from {source} i where {match}) "
            f"group by {', '.join('t.' + c for c in cols)} having count(*) > 1)",
            params,
        ).fetchall()[0][0]
    finally:
        cur.close()


def _table_level(exp: dict, value: int, rows: int) -> Aggregate:
    """The whole-table aggregate of ``exp`` (``value`` from :func:`_table_aggregate`)."""
    if exp["type"] == TABLE_COUNT:
        kwargs = exp.get("kwargs", {})
        return Aggregate(
            value, kwargs.get("min_value"), kwargs.get("max_value"), None, value, value
        )
    return Aggregate(value, 0, 0, value, rows, value)  # rows sharing a key: none allowed


@dataclass(frozen=True)
class Scope:
    run_id: str
    window: Window | None = None


def _validate(ctx, datasource, step: str, name: str, meta: dict, expectations, frame, run_id):
    """Run one GX suite on one in-memory frame; results go to the GX store under ``run_id``."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    existing = {a.name for a in datasource.assets}
    asset = datasource.get_asset(name) if name in existing else datasource.add_dataframe_asset(name)
    batch_names = {b.name for b in asset.batch_definitions}
    batch = (
        asset.get_batch_definition("whole")
        if "whole" in batch_names
        else asset.add_batch_definition_whole_dataframe("whole")
    )
    definition = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(
            name=f"{step}.{name}", data=batch, suite=_gx_suite(ctx, name, meta, expectations)
        )
    )
    return definition.run(
        batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_id)
    )


RUN_SITE = "this_run"


def build_run_data_docs(ctx, run_names: set[str], site_dir: Path) -> Path:
    """A Data Docs site holding only the validation results of ``run_names``, under ``site_dir``.

    Args:
        run_names: the warehouse run and the ingest runs that loaded its files.
    """
    config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": ""},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config["store_backend"]["base_directory"] = str(site_dir)
    if RUN_SITE in ctx.list_data_docs_sites():
        ctx.update_data_docs_site(RUN_SITE, config)
    else:
        ctx.add_data_docs_site(RUN_SITE, config)
    ids = [
        key for key in ctx.validation_results_store.list_keys() if key.run_id.run_name in run_names
    ]
    ctx.build_data_docs(site_names=[RUN_SITE], resource_identifiers=ids)
    return site_dir / "index.html"


def run_step(
    con: duckdb.DuckDBPyConnection,
    gx_root: Path,
    step: str,
    run_id: str,
    now: datetime,
    source: str | None = None,
    expectations_root: Path | None = None,
    run_docs: Path | None = None,
    lookback_days: int | None = None,
) -> StepOutcome:
    """Validate every suite of ``step`` on the night's increment and record the results.

    Args:
        con: open build warehouse.
        gx_root: folder of the GX file context (inside the ignored data dir).
        step: raw, staging or marts.
        run_id: Airflow run id, written with every result.
        now: time stamped on the results.
        source: for the raw step, only that source's suites.
        run_docs: folder of this run's own Data Docs site (rebuilt after the step).
        lookback_days: days the night rebuilds before its earliest badge-event day
            (default: the dbt var ``badge_lookback_days``).
    """
    _quiet_gx_import()

    kwargs = {"root": expectations_root} if expectations_root else {}
    suites = load_suites(step, source, **kwargs)
    outcome = StepOutcome(step)
    if not suites:
        return outcome
    started = time.perf_counter()
    scope = Scope(run_id)
    if step == "staging":
        outcome.night_files = claim_night_files(con, run_id, now)
    elif step == "marts":
        outcome.night_files = night_file_count(con, run_id) or claim_night_files(con, run_id, now)
        days = badge_lookback_days() if lookback_days is None else lookback_days
        scope = Scope(run_id, marts_window(con, run_id, days))
        outcome.window = scope.window
    ctx = _context(gx_root)
    datasource = ctx.data_sources.add_or_update_pandas(f"rto_{step}")
    con.execute(
        "delete from audit.dq_results where run_id = ? and step = ? and suite in "
        "(select unnest(?))",
        [run_id, step, [s.name for s in suites]],
    )
    for suite in suites:
        increment = _increment_sql(suite, scope)
        pushed = suite.increment in ("night_files", "window")
        row_level = [
            e
            for e in suite.expectations
            if not (pushed and e["type"] in (TABLE_COUNT, *UNIQUENESS))
        ]
        table_level = [e for e in suite.expectations if e not in row_level]
        sql, params = increment
        # fetchall: DuckDB keeps an unfinished result open after fetchone
        (size,) = con.execute(f"select count(*) from ({sql}) i", params).fetchall()[0]
        large = size > max_frame_rows()
        # too large for a frame: the table-level aggregates read the increment's SQL
        arrow, frame = (increment, None) if large else _frame(con, sql, params)
        rows = []
        meta = {"step": step, "table": suite.table, "increment": suite.increment}
        validate_aggregates = partial(
            _validate_aggregates, ctx, datasource, outcome, suite, step, run_id, now
        )
        if row_level and large:
            rows += validate_aggregates(
                f"{suite.name}__in_duckdb",
                {**meta, "computed_in": "duckdb", "rows": size},
                row_level,
                _row_aggregates(con, sql, params, row_level, size),
                column_prefix="row_",
                marker="computed_in_duckdb",
            )
        elif row_level:
            result = _validate(ctx, datasource, step, suite.name, meta, row_level, frame, run_id)
            for r in result.results:
                config = r.expectation_config
                details = r.result or {}
                column = config.kwargs.get("column") or ",".join(
                    config.kwargs.get("column_list", [])
                )
                rows.append(
                    _row(
                        outcome,
                        suite,
                        step,
                        run_id,
                        now,
                        config.type,
                        column,
                        config.meta.get("severity", "blocking"),
                        bool(r.success),
                        details.get("observed_value"),
                        details.get("unexpected_count"),
                        details.get("element_count", size),
                    )
                )
        if table_level:
            rows += validate_aggregates(
                f"{suite.name}__whole_table",
                {**meta, "pushed_down_to": "duckdb"},
                table_level,
                [
                    _table_level(e, _table_aggregate(con, suite, e, arrow, size), size)
                    for e in table_level
                ],
                column_prefix="agg_",
                marker="pushed_down",
            )
        con.executemany(
            "insert into audit.dq_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        outcome.rows_checked += size
        log.info(
            "%s: %d rows of the increment (%s), %d expectations (%d pushed down to DuckDB)",
            suite.name,
            size,
            suite.increment or "whole table",
            len(rows),
            len(rows) if large else len(table_level),
        )
    # only tonight's pages: rebuilding every page of every night would grow with history
    tonight = [k for k in ctx.validation_results_store.list_keys() if k.run_id.run_name == run_id]
    ctx.build_data_docs(site_names=["local_site"], resource_identifiers=tonight)
    outcome.data_docs = gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if run_docs is not None:
        ingest_runs = con.execute(
            "select distinct s.run_id from audit.night_files n join audit.source_files s "
            "using (file_id) where n.run_id = ?",
            [run_id],
        ).fetchall()
        names = {run_id, *(r[0] for r in ingest_runs)}
        outcome.run_data_docs = build_run_data_docs(ctx, names, run_docs)
    outcome.seconds = time.perf_counter() - started
    for label in outcome.failed_warning:
        log.warning("warning check failed: %s", label)
    return outcome


def _validate_aggregates(
    ctx,
    datasource,
    outcome: StepOutcome,
    suite: Suite,
    step: str,
    run_id: str,
    now: datetime,
    name: str,
    meta: dict,
    expectations: list[dict],
    aggregates: list[Aggregate],
    column_prefix: str,
    marker: str,
) -> list[list]:
    """GX validates a one-row frame of DuckDB aggregates, one column per expectation
    (each between its bounds); returns the ``audit.dq_results`` rows under the original
    expectation names. ``marker``: the meta key naming the expectation it stands for."""
    import pandas as pd

    frame = pd.DataFrame({f"{column_prefix}{i}": [a.value] for i, a in enumerate(aggregates)})
    checks = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {
                "column": f"{column_prefix}{i}",
                "min_value": a.min_value,
                "max_value": a.max_value,
            },
            "meta": {**e.get("meta", {}), marker: e["type"]},
        }
        for i, (e, a) in enumerate(zip(expectations, aggregates, strict=True))
    ]
    result = _validate(ctx, datasource, step, name, meta, checks, frame, run_id)
    by_column = {r.expectation_config.kwargs["column"]: r for r in result.results}
    return [
        _row(
            outcome,
            suite,
            step,
            run_id,
            now,
            exp["type"],
            ",".join(_key_columns(exp)),
            exp.get("meta", {}).get("severity", "blocking"),
            bool(by_column[f"{column_prefix}{i}"].success),
            agg.observed,
            agg.unexpected,
            agg.elements,
        )
        for i, (exp, agg) in enumerate(zip(expectations, aggregates, strict=True))
    ]


def _row(
    outcome: StepOutcome,
    suite: Suite,
    step: str,
    run_id: str,
    now: datetime,
    expectation: str,
    column: str,
    severity: str,
    success: bool,
    observed,
    unexpected: int | None,
    elements: int | None,
) -> list:
    """One ``audit.dq_results`` row; counts the failure in ``outcome``."""
    label = f"{suite.name}.{expectation}({column})"
    if not success:
        (outcome.failed_blocking if severity == "blocking" else outcome.failed_warning).append(
            label
        )
    outcome.checked += 1
    return [
        run_id,
        step,
        suite.name,
        expectation,
        column or None,
        severity,
        success,
        None if observed is None else json.dumps(observed, default=str),
        unexpected,
        elements,
        now,
    ]
