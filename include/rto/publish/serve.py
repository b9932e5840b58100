"""Copy the marts (and audit) from the build warehouse to the serving files, atomically.

BI tools open ``serving/*.duckdb`` read-only. Each file is written under a
temporary name next to its final path and moved into place with
``os.replace``: a reader sees either last night's file or tonight's, never a
half-written one, and a reader holding the old file open never blocks the
build (the build never opens the serving files for writing in place).

A night whose build was incremental patches a copy of last night's file
instead of writing it whole: the incrementally built marts (``SCOPED_MARTS``)
get only their rows in tonight's rebuild scope deleted and inserted again,
everything else is rewritten. It does so only when the file is exactly one
build behind the warehouse (docs/DESIGN.md, "Publication"); otherwise, and
every ``MAX_PATCHED_NIGHTS`` nights, the file is written whole.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

PSEUDONYM_KEY_VARIABLE = "rto_pseudonym_key"
# Columns that hold an employee id in the marts; replaced by a keyed pseudonym in bi.duckdb.
EMPLOYEE_ID_COLUMNS = ("employee_id", "manager_id", "head_employee_id", "approver_id")
# Never published to BI, whatever model grows them.
FORBIDDEN_COLUMNS = ("full_name", "email")

# Marts that dbt builds incrementally, with the columns of their meta rebuild_scope
# (employee, week). A patched file deletes and inserts again their rows in tonight's scope.
SCOPED_MARTS = {"fct_rto_compliance_weekly": ("employee_id", "week_start")}
SCOPE = "intermediate.int_rebuild_scope"
BUILDS = "intermediate.int_rebuild_state_builds"
# Deleted rows leave holes in DuckDB's row groups: after this many patched nights the
# file is written whole again, so it never grows without bound.
MAX_PATCHED_NIGHTS = 6


def pseudonym_key(data_dir: Path) -> bytes:
    """The HMAC key for pseudonymous employee keys.

    From the Airflow Variable ``rto_pseudonym_key`` (or ``AIRFLOW_VAR_RTO_PSEUDONYM_KEY``);
    without one, a random development key is created once under the data dir, so keys stay
    stable between nights. Rotating the key is a configuration change.
    """
    from rto.config import _setting

    configured = _setting(PSEUDONYM_KEY_VARIABLE, "")
    if configured:
        return configured.encode()
    key_file = data_dir / "secrets" / "pseudonym.key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
        log.warning(
            "no %s configured: created a development key in %s", PSEUDONYM_KEY_VARIABLE, key_file
        )
    return key_file.read_text().strip().encode()


def pseudonymise(key: bytes, employee_id: str) -> str:
    return "P" + hmac.new(key, employee_id.encode(), hashlib.sha256).hexdigest()[:16]


def _tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> list[str]:
    """Base tables of ``schema`` in ``catalog`` (default: the build warehouse)."""
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = "
            "coalesce(?, current_database()) and table_schema = ? "
            "and table_type = 'BASE TABLE' order by table_name",
            [catalog, schema],
        ).fetchall()
    ]


def _columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_catalog = "
            "coalesce(?, current_database()) and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [catalog, schema, table],
        ).fetchall()
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _exists(con: duckdb.DuckDBPyConnection, qualified: str, catalog: str | None = None) -> bool:
    schema, table = qualified.split(".")
    return table in _tables(con, schema, catalog)


def _in_scope(employee: str, week: str, pseudonymous: bool) -> str:
    """SQL: the row's week or employee is in tonight's rebuild scope.

    The weekly form of ``in_rebuild_scope`` (dbt_project/macros/incremental.sql) without
    its retention floor: a superset of the rows the build rewrote, which is all a patch
    needs (rows it takes again unchanged come out the same). In the BI file the employee
    column holds pseudonyms, so the scope's employees are matched through them.
    """
    people = (
        f"select p.pseudonym from {SCOPE} s inner join _pseudonyms p "
        "on p.employee_id = s.employee_id where s.scope_kind = 'employee'"
        if pseudonymous
        else f"select s.employee_id from {SCOPE} s where s.scope_kind = 'employee'"
    )
    return (
        f"({week} in (select s.week_start from {SCOPE} s where s.scope_kind = 'date') "
        f"or {week} >= (select min(s.week_start) from {SCOPE} s where s.scope_kind = 'from') "
        f"or {employee} in ({people}))"
    )


def _recent_builds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Invocation ids of the newest two successful incremental builds, newest first."""
    if not _exists(con, BUILDS):
        return []
    return [
        r[0]
        for r in con.execute(
            f"select build_invocation_id from {BUILDS} order by build_number desc limit 2"
        ).fetchall()
    ]


def _last_publication(con: duckdb.DuckDBPyConnection, final: Path) -> dict | None:
    """``meta.publication`` of the file published before, None without one."""
    if not final.exists():
        return None
    con.execute("attach ? as serving_prev (read_only)", [str(final)])
    try:
        if not _exists(con, "meta.publication", "serving_prev"):
            return None
        cur = con.execute("select * from serving_prev.meta.publication")
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None
    finally:
        con.execute("detach serving_prev")


def _why_not_patch(
    con: duckdb.DuckDBPyConnection, final: Path, builds: list[str], key_check: str | None
) -> tuple[str | None, int]:
    """Why ``final`` must be written whole (None: it can be patched) and its patched nights."""
    last = _last_publication(con, final)
    if last is None:
        return "no file published before", 0
    patched = last.get("patched_nights") or 0
    if len(builds) < 2 or last.get("build_invocation_id") != builds[1]:
        return "the file is not exactly one build behind the warehouse", patched
    if patched >= MAX_PATCHED_NIGHTS:
        return f"written whole after {MAX_PATCHED_NIGHTS} patched nights", patched
    if last.get("key_check") != key_check:
        return "the pseudonym key changed", patched
    if not _exists(con, SCOPE):
        return "no rebuild scope in the warehouse", patched
    if con.execute(f"select count(*) from {SCOPE} where scope_kind = 'all'").fetchone()[0]:
        return "tonight's build rebuilt everything", patched
    return None, patched


def _write(
    con: duckdb.DuckDBPyConnection,
    final: Path,
    run_id: str,
    schemas: tuple[str, ...],
    pseudonymous: bool,
    builds: list[str],
    key_check: str | None,
) -> dict:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    why_whole, patched = _why_not_patch(con, final, builds, key_check)
    patch = why_whole is None
    if patch:
        shutil.copyfile(final, tmp)
    tables = rows = 0
    con.execute("attach ? as serving_out", [str(tmp)])
    try:
        for schema in (*schemas, "meta"):
            con.execute(f"create schema if not exists serving_out.{_ident(schema)}")
        for table in _tables(con, "meta", "serving_out"):
            con.execute(f"drop table serving_out.meta.{_ident(table)}")
        for schema in schemas:
            wanted = _tables(con, schema)
            for table in set(_tables(con, schema, "serving_out")) - set(wanted):
                con.execute(f"drop table serving_out.{_ident(schema)}.{_ident(table)}")
            for table in wanted:
                target = f"serving_out.{_ident(schema)}.{_ident(table)}"
                cols = [c for c in _columns(con, schema, table) if c not in FORBIDDEN_COLUMNS]
                select, joins = [], []
                for c in cols:
                    if pseudonymous and c in EMPLOYEE_ID_COLUMNS:
                        alias = f"p{len(joins)}"
                        joins.append(
                            f"left join _pseudonyms {alias} on {alias}.employee_id = t.{_ident(c)}"
                        )
                        select.append(f"{alias}.pseudonym as {_ident(c)}")
                    else:
                        select.append(f"t.{_ident(c)}")
                query = (
                    f"select {', '.join(select)} from {_ident(schema)}.{_ident(table)} t "
                    + " ".join(joins)
                )
                scoped = SCOPED_MARTS.get(table) if schema == "marts" else None
                if patch and scoped and _columns(con, schema, table, "serving_out") == cols:
                    employee, week = (_ident(c) for c in scoped)
                    con.execute(
                        f"delete from {target} where {_in_scope(employee, week, pseudonymous)}"
                    )
                    con.execute(
                        f"insert into {target} ({', '.join(_ident(c) for c in cols)}) {query} "
                        f"where {_in_scope(f't.{employee}', f't.{week}', False)}"
                    )
                else:
                    con.execute(f"drop table if exists {target}")
                    con.execute(f"create table {target} as {query}")
                tables += 1
                rows += con.execute(f"select count(*) from {target}").fetchone()[0]
        con.execute(
            "create table serving_out.meta.publication as select ?::varchar as run_id, "
            "now()::timestamp as published_at, ?::varchar as build_invocation_id, "
            "?::integer as patched_nights, ?::varchar as key_check",
            [run_id, builds[0] if builds else None, patched + 1 if patch else 0, key_check],
        )
        # deliveries still missing when this file was published (rto.ingest.freshness)
        from rto.ingest.freshness import OPEN_MISSING_SQL

        con.execute(f"create table serving_out.meta.missing_deliveries as {OPEN_MISSING_SQL}")
    finally:
        con.execute("detach serving_out")
    os.replace(tmp, final)
    return {
        "tables": tables,
        "rows": rows,
        "written": "patched" if patch else "whole",
        "why_whole": why_whole,
    }


def publish(
    con: duckdb.DuckDBPyConnection, serving_dir: Path, data_dir: Path, run_id: str
) -> dict[str, dict]:
    """Write ``warehouse.duckdb`` (marts + audit) and ``bi.duckdb`` (pseudonymous marts).

    Each file is patched when it is one build behind the warehouse, else written whole;
    the result says which and why (``written``, ``why_whole``).
    """
    import pyarrow as pa

    key = pseudonym_key(data_dir)
    ids: set[str] = set()
    for table in _tables(con, "marts"):
        for c in _columns(con, "marts", table):
            if c in EMPLOYEE_ID_COLUMNS:
                ids.update(
                    r[0]
                    for r in con.execute(
                        f"select distinct {_ident(c)} from marts.{_ident(table)} "
                        f"where {_ident(c)} is not null"
                    ).fetchall()
                )
    builds = _recent_builds(con)
    if builds and _exists(con, SCOPE):
        # a patch deletes the rows of employees in scope, also of those no mart holds now
        ids.update(
            r[0]
            for r in con.execute(
                f"select employee_id from {SCOPE} "
                "where scope_kind = 'employee' and employee_id is not null"
            ).fetchall()
        )
    ordered = sorted(ids)
    mapping = pa.table(
        {"employee_id": ordered, "pseudonym": [pseudonymise(key, i) for i in ordered]}
    )
    con.register("_pseudonyms", mapping)
    try:
        out = {}
        for name, schemas, pseudo in (
            ("warehouse.duckdb", ("marts", "audit"), False),
            ("bi.duckdb", ("marts",), True),
        ):
            # a key's fingerprint: a patch needs the pseudonyms it finds in the file
            key_check = pseudonymise(key, "") if pseudo else None
            out[name] = _write(con, serving_dir / name, run_id, schemas, pseudo, builds, key_check)
            log.info(
                "published %s (%s%s): %d tables, %d rows",
                serving_dir / name,
                out[name]["written"],
                f": {out[name]['why_whole']}" if out[name]["why_whole"] else "",
                out[name]["tables"],
                out[name]["rows"],
            )
    finally:
        con.unregister("_pseudonyms")
    return out
