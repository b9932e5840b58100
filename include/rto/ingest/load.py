"""Load one landed file into its raw table, row by row accountable.

Every data row of a file ends up either in the raw table or in
``audit.quarantine`` with its line number, the reason and the raw text, and
the loader checks ``rows in = rows loaded + rows quarantined`` before it
records the file as loaded. Reloading a file (a retried task) first deletes
what an earlier attempt wrote for it, so loads are idempotent.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rto.ingest.pull import LandedFile
from rto.ingest.sources import DATE, INTEGER, TIMESTAMP, Column, FileSpec

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

_CAST = {DATE: "date", TIMESTAMP: "timestamp", INTEGER: "integer"}


class ReconciliationError(RuntimeError):
    """Rows in a file do not equal rows loaded plus rows quarantined."""


@dataclass(frozen=True)
class LoadResult:
    file_id: str
    source_path: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    message: str | None = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _reason_sql(col: Column) -> str:
    """SQL expression giving why a value of this column is invalid, or null."""
    c = f"nullif(c_{col.name}, '')"
    checks = []
    if col.required:
        checks.append(f"case when {c} is null then '{col.name} is missing' end")
    if col.type in _CAST:
        checks.append(
            f"case when {c} is not null and try_cast({c} as {_CAST[col.type]}) is null "
            f"then '{col.name} is not a valid {col.type}: ' || {c} end"
        )
    if col.allowed:
        allowed = ", ".join(_literal(v) for v in col.allowed)
        checks.append(
            f"case when {c} is not null and {c} not in ({allowed}) "
            f"then '{col.name} has an unknown value: ' || {c} end"
        )
    return ", ".join(checks)


def _open_text_header(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.readline().decode("utf-8").rstrip("\r\n")


def _readable_bytes(path: Path) -> bytes:
    """The file's content; for gzip, whatever decompresses before a cut or a corrupt block."""
    if path.suffix != ".gz":
        return path.read_bytes()
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = bytearray()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                data += decomp.decompress(chunk)
            except zlib.error:
                break
    return bytes(data)


def _recover_truncated_gzip(path: Path, out: Path) -> tuple[int, str]:
    """Decompress what a cut-short gzip file holds into ``out``.

    Returns the number of complete lines written and the partial last line
    (empty when the cut fell on a line end).
    """
    text = _readable_bytes(path)
    cut = text.rfind(b"\n") + 1
    complete, partial = text[:cut], text[cut:]
    out.write_bytes(complete)
    return complete.count(b"\n"), partial.decode("utf-8", errors="replace")


def _data_lines(path: Path, skip_header: bool) -> list[tuple[int, str]]:
    """Every non-empty data line of a file with its 1-based number, decoded leniently."""
    lines = _readable_bytes(path).decode("utf-8", errors="replace").splitlines()
    start = 1 if skip_header else 0
    return [(i + 1, text) for i, text in enumerate(lines) if i >= start and text.strip()]


def _stage_csv(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path, work: Path
) -> tuple[int, list[tuple[int | None, str, str]], str | None]:
    """Read a CSV file into temp table ``_stage`` (line number + one varchar per spec column).

    Returns (data rows in the file, file-level quarantine rows, message).
    """
    extra: list[tuple[int | None, str, str]] = []
    try:
        header = _open_text_header(path).split(",")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _FileRejected(f"header row unreadable: {exc}", header_broken=True) from exc
    header = [h.strip().strip('"') for h in header]
    missing = [c.name for c in spec.columns if c.name not in header]
    if missing:
        raise _FileRejected(
            f"header lacks column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    unknown = [h for h in header if h not in {c.name for c in spec.columns}]
    message = f"extra column(s) ignored: {', '.join(unknown)}" if unknown else None

    # Identifiers below come from positions and the spec, never from the file.
    positions = {c.name: header.index(c.name) for c in spec.columns}
    columns = "{" + ", ".join(f"'column{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    select = ", ".join(f"column{positions[c.name]} as c_{c.name}" for c in spec.columns)

    def read(read_path: Path) -> None:
        con.execute(
            "drop table if exists _read; drop table if exists _rejects; "
            "drop table if exists _rejects_scan"
        )
        compression = "'gzip'" if read_path.suffix == ".gz" else "'none'"
        con.execute(
            f"""
            create temp table _read as
            select {select} from read_csv(?, header = false, skip = 1, delim = ',',
                quote = '"', escape = '"', columns = {columns}, auto_detect = false,
                store_rejects = true,
                rejects_table = '_rejects', rejects_scan = '_rejects_scan',
                compression = {compression})
            """,
            [str(read_path)],
        )

    import duckdb

    trailing_lines = 0
    try:
        read(path)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if "gzip" not in str(exc).lower():
            raise
        recovered = work / (path.name + ".recovered.csv")
        complete, partial = _recover_truncated_gzip(path, recovered)
        read(recovered)
        recovered.unlink()
        extra.append(
            (
                complete + 1,
                "file truncated: the gzip stream ends inside this line; "
                "nothing after it could be read",
                partial,
            )
        )
        trailing_lines = 1
        message = "; ".join(filter(None, [message, f"gzip cut short after line {complete}"]))
    good = con.execute("select count(*) from _read").fetchone()[0]
    rejects = con.execute(
        "select line, error_type || ': ' || error_message, csv_line from _rejects "
        "qualify row_number() over (partition by line order by column_idx) = 1 order by line"
    ).fetchall()
    total_lines = good + len(rejects) + 1
    _drop_stage(con)
    if not rejects:
        # The common case: every line parsed, so good row k (rowid k - 1) is line k + 1.
        # A view instead of a copy: numbering 100,000 rows by a join cost about a fifth
        # of a badge file's load (bench/RESULTS.md).
        con.execute(
            "create temp view _stage as "
            "select rowid + 2 as _line_number, null::varchar as _raw, * from _read"
        )
        return good + trailing_lines, extra, message
    # Good rows keep file order in _read (rowid); give each the physical line it came from.
    con.execute(
        f"""
        create temp table _stage as
        with lines as (
            select range as line from range(2, {total_lines + 1})
            where range not in (select line from _rejects)
        ),
        numbered as (select line, row_number() over (order by line) as k from lines)
        select n.line as _line_number, null::varchar as _raw, r.*
        from (select rowid + 1 as k, * from _read) r join numbered n using (k)
        """
    )
    extra.extend((int(line), reason, raw) for line, reason, raw in rejects)
    return good + len(rejects) + trailing_lines, extra, message


def _stage_jsonl(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path
) -> tuple[int, list[tuple[int | None, str, str]], str | None]:
    """Parse a JSON-lines file into temp table ``_stage``; unparsable lines are quarantined."""
    import pyarrow as pa

    names = [c.name for c in spec.columns]
    known = set(names)
    rows: dict[str, list] = {"_line_number": [], "_raw": []} | {f"c_{n}": [] for n in names}
    bad: list[tuple[int | None, str, str]] = []
    unknown: set[str] = set()
    rows_in = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for number, raw in enumerate(io.BufferedReader(fh), start=1):
            if not raw.strip():
                continue
            rows_in += 1
            try:
                text = raw.decode("utf-8")
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("a line must hold one JSON object")
            except (UnicodeDecodeError, ValueError) as exc:
                bad.append(
                    (
                        number,
                        f"unparsable JSON line: {exc}",
                        raw.decode("utf-8", errors="replace").rstrip("\r\n"),
                    )
                )
                continue
            unknown.update(set(record) - known)
            rows["_line_number"].append(number)
            rows["_raw"].append(text.rstrip("\r\n"))
            for n in names:
                value = record.get(n)
                rows[f"c_{n}"].append(None if value is None else str(value))
    table = pa.table(
        {
            k: pa.array(v, type=pa.int32() if k == "_line_number" else pa.string())
            for k, v in rows.items()
        }
    )
    con.register("_arrow_stage", table)
    _drop_stage(con)
    con.execute("create temp table _stage as select * from _arrow_stage")
    con.unregister("_arrow_stage")
    message = f"extra key(s) ignored: {', '.join(sorted(unknown))}" if unknown else None
    return rows_in, bad, message


def _drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``_stage``, which the previous file may have left as a table or as a view."""
    import duckdb

    for kind in ("view", "table"):
        try:
            con.execute(f"drop {kind} if exists _stage")
        except duckdb.CatalogException:
            continue


class _FileRejected(Exception):
    """The file as a whole cannot be read (header, encoding)."""

    def __init__(self, message: str, header_broken: bool = False):
        super().__init__(message)
        self.header_broken = header_broken


def load_file(
    con: duckdb.DuckDBPyConnection, landed: LandedFile, run_id: str, work_dir: Path, now: datetime
) -> LoadResult:
    """Load one landed file into ``raw.<source>_<entity>`` and quarantine its bad rows."""
    spec = landed.spec
    work_dir.mkdir(parents=True, exist_ok=True)
    # Staging reads the file into temp tables outside the transaction: a read error must not
    # abort the transaction that rewrites this file's rows.
    try:
        if spec.fmt == "csv":
            rows_in, file_rejects, message = _stage_csv(con, spec, landed.landing_path, work_dir)
        else:
            rows_in, file_rejects, message = _stage_jsonl(con, spec, landed.landing_path)
    except _FileRejected as exc:
        # Nothing of the file can be trusted: every data line is quarantined with the reason.
        # When the header itself is unreadable (e.g. a gzip cut inside it), it is counted and
        # quarantined too: it is all the file delivered.
        lines = _data_lines(
            landed.landing_path, skip_header=spec.fmt == "csv" and not exc.header_broken
        )
        con.execute("begin")
        _clear_earlier_load(con, spec, landed)
        _quarantine(
            con,
            landed,
            run_id,
            now,
            [(number, f"file rejected: {exc}", text) for number, text in lines],
        )
        _record(con, landed, len(lines), 0, len(lines), "rejected", str(exc), now)
        con.execute("commit")
        log.error("%s rejected: %s", landed.source_path, exc)
        return LoadResult(landed.file_id, landed.source_path, len(lines), 0, len(lines), str(exc))

    con.execute("begin")
    try:
        _clear_earlier_load(con, spec, landed)
        reasons = ", ".join(filter(None, (_reason_sql(c) for c in spec.columns)))
        con.execute(
            f"create or replace temp table _checked as "
            f"select *, nullif(concat_ws('; ', {reasons}), '') as _reason from _stage"
        )
        cols = ", ".join(_quote(c.name) for c in spec.columns)
        casts = ", ".join(
            f"cast(nullif(c_{c.name}, '') as {_CAST.get(c.type, 'varchar')})" for c in spec.columns
        )
        # DuckDB answers an insert with the number of rows it wrote: counted, not assumed.
        loaded = con.execute(
            f"""
            insert into {spec.table} ({cols}, _file_id, _source_path, _line_number,
                _delivery_date, _run_id)
            select {casts}, ?, ?, _line_number, ?, ? from _checked where _reason is null
            """,
            [landed.file_id, landed.source_path, landed.delivery_date, run_id],
        ).fetchone()[0]
        raw_csv = (
            "concat_ws(',', " + ", ".join(f"coalesce(c_{c.name}, '')" for c in spec.columns) + ")"
        )
        quarantined = con.execute(
            f"""
            insert into audit.quarantine
            select ?, ?, _line_number, _reason, coalesce(_raw, {raw_csv}), ?, ?
            from _checked where _reason is not null
            """,
            [landed.file_id, landed.source_path, run_id, now],
        ).fetchone()[0]
        quarantined += _quarantine(con, landed, run_id, now, file_rejects)
        if loaded + quarantined != rows_in:
            raise ReconciliationError(
                f"{landed.source_path}: {rows_in} rows in the file but {loaded} loaded and "
                f"{quarantined} quarantined; refusing to record the load"
            )
        _record(con, landed, rows_in, loaded, quarantined, "loaded", message, now)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if quarantined:
        log.warning("%s: %d rows loaded, %d quarantined", landed.source_path, loaded, quarantined)
    return LoadResult(landed.file_id, landed.source_path, rows_in, loaded, quarantined, message)


def _clear_earlier_load(con, spec: FileSpec, landed: LandedFile) -> None:
    """Delete what an earlier, committed load of this file wrote (a deliberate reload).

    A failed attempt leaves nothing behind (one transaction per file), so the scan of the
    raw table is only paid when the manifest says the file was loaded before.
    """
    status = con.execute(
        "select status from audit.source_files where file_id = ?", [landed.file_id]
    ).fetchone()
    if status and status[0] in ("loaded", "rejected"):
        con.execute(f"delete from {spec.table} where _file_id = ?", [landed.file_id])
        con.execute("delete from audit.quarantine where file_id = ?", [landed.file_id])


def _quarantine(
    con,
    landed: LandedFile,
    run_id: str,
    now: datetime,
    rows: list[tuple[int | None, str, str | None]],
) -> int:
    if rows:
        con.executemany(
            "insert into audit.quarantine values (?, ?, ?, ?, ?, ?, ?)",
            [
                [landed.file_id, landed.source_path, line, reason, raw, run_id, now]
                for line, reason, raw in rows
            ],
        )
    return len(rows)


def _record(
    con,
    landed: LandedFile,
    rows_in: int,
    loaded: int,
    quarantined: int,
    status: str,
    message: str | None,
    now: datetime,
) -> None:
    con.execute(
        """
        update audit.source_files
        set rows_in = ?, rows_loaded = ?, rows_quarantined = ?, status = ?, message = ?,
            loaded_at = ?
        where file_id = ?
        """,
        [rows_in, loaded, quarantined, status, message, now, landed.file_id],
    )
