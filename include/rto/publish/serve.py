"""Copy the marts (and audit) from the build warehouse to the serving files, atomically.

BI tools open ``serving/*.duckdb`` read-only. Each file is written under a
temporary name next to its final path and moved into place with
``os.replace``: a reader sees either last night's file or tonight's, never a
half-written one, and a reader holding the old file open never blocks the
build (the build never opens the serving files for writing in place).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
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


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? "
            "and table_type = 'BASE TABLE' order by table_name",
            [schema],
        ).fetchall()
    ]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? "
            "and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write(
    con: duckdb.DuckDBPyConnection,
    final: Path,
    run_id: str,
    schemas: tuple[str, ...],
    pseudonymous: bool,
) -> tuple[int, int]:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tables = rows = 0
    con.execute("attach ? as serving_out", [str(tmp)])
    try:
        for schema in schemas:
            con.execute(f"create schema serving_out.{_ident(schema)}")
            for table in _tables(con, schema):
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
                con.execute(
                    f"create table serving_out.{_ident(schema)}.{_ident(table)} as "
                    f"select {', '.join(select)} from {_ident(schema)}.{_ident(table)} t "
                    + " ".join(joins)
                )
                tables += 1
                rows += con.execute(
                    f"select count(*) from serving_out.{_ident(schema)}.{_ident(table)}"
                ).fetchone()[0]
        con.execute("create schema if not exists serving_out.meta")
        con.execute(
            "create table serving_out.meta.publication as "
            "select ?::varchar as run_id, now()::timestamp as published_at",
            [run_id],
        )
        # deliveries still missing when this file was published (rto.ingest.freshness)
        from rto.ingest.freshness import OPEN_MISSING_SQL

        con.execute(f"create table serving_out.meta.missing_deliveries as {OPEN_MISSING_SQL}")
    finally:
        con.execute("detach serving_out")
    os.replace(tmp, final)
    return tables, rows


def publish(
    con: duckdb.DuckDBPyConnection, serving_dir: Path, data_dir: Path, run_id: str
) -> dict[str, dict[str, int]]:
    """Write ``warehouse.duckdb`` (marts + audit) and ``bi.duckdb`` (pseudonymous marts)."""
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
    mapping = pa.table(
        {"employee_id": sorted(ids), "pseudonym": [pseudonymise(key, i) for i in sorted(ids)]}
    )
    con.register("_pseudonyms", mapping)
    try:
        out = {}
        for name, schemas, pseudo in (
            ("warehouse.duckdb", ("marts", "audit"), False),
            ("bi.duckdb", ("marts",), True),
        ):
            tables, rows = _write(con, serving_dir / name, run_id, schemas, pseudo)
            out[name] = {"tables": tables, "rows": rows}
            log.info("published %s: %d tables, %d rows", serving_dir / name, tables, rows)
    finally:
        con.unregister("_pseudonyms")
    return out
