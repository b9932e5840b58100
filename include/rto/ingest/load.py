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


def _csv_layout(spec: FileSpec, path: Path) -> tuple[tuple[str, ...], str | None]:
    """The file's header row, checked against the spec, and the message for extra columns.

    Raises ``_FileRejected`` when the header cannot be read or lacks a spec column.
    """
    try:
        header = _open_text_header(path).split(",")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _FileRejected(f"header row unreadable: {exc}", header_broken=True) from exc
    header = tuple(h.strip().strip('"') for h in header)
    missing = [c.name for c in spec.columns if c.name not in header]
    if missing:
        raise _FileRejected(
            f"header lacks column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    unknown = [h for h in header if h not in {c.name for c in spec.columns}]
    return header, f"extra column(s) ignored: {', '.join(unknown)}" if unknown else None


def _read_csv_sql(spec: FileSpec, header: tuple[str, ...], compression: str) -> tuple[str, str]:
    """The select list (``c_<column>`` per spec column) and the ``read_csv(?, ...)`` call.

    Identifiers come from positions and the spec, never from the file.
    """
    columns = "{" + ", ".join(f"'column{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    select = ", ".join(f"column{header.index(c.name)} as c_{c.name}" for c in spec.columns)
    source = (
        "read_csv(?, header = false, skip = 1, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {columns}, auto_detect = false, store_rejects = true, "
        "rejects_table = '_rejects', rejects_scan = '_rejects_scan', "
        f"compression = '{compression}')"
    )
    return select, source


def _compression(path: Path) -> str:
    return "gzip" if path.suffix == ".gz" else "none"


def _drop_read_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "drop table if exists _read; drop table if exists _rejects; drop table if exists _rejects_scan"
    )


def _stage_csv(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path, work: Path
) -> tuple[int, list[tuple[int | None, str, str]], str | None]:
    """Read a CSV file into temp table ``_stage`` (line number + one varchar per spec column).

    Returns (data rows in the file, file-level quarantine rows, message).
    """
    extra: list[tuple[int | None, str, str]] = []
    header, message = _csv_layout(spec, path)

    def read(read_path: Path) -> None:
        _drop_read_tables(con)
        select, source = _read_csv_sql(spec, header, _compression(read_path))
        con.execute(f"create temp table _read as select {select} from {source}", [str(read_path)])

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


# JSON types whose text DuckDB and Python's ``str()`` of the parsed value may write apart
# (true/True, 1e2/100.0, nested objects): such values are read by Python, row by row.
_JSON_TYPES_READ_AS_IS = ("VARCHAR", "NULL", "BIGINT", "UBIGINT")
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() removes


def _json_path(name: str) -> str:
    """The JSON path of top-level key ``name`` (spec column names: plain identifiers)."""
    return f"'$.\"{name}\"'"


def _json_object(text: str) -> dict:
    """One JSON line as an object; ``ValueError`` when it is not one."""
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("a line must hold one JSON object")
    return record


def _json_values(record: dict, names: list[str]) -> list[str | None]:
    """The spec columns' values of a parsed line, as text (null stays null)."""
    return [None if record.get(n) is None else str(record.get(n)) for n in names]


def _extra_keys_message(unknown: set[str]) -> str | None:
    return f"extra key(s) ignored: {', '.join(sorted(unknown))}" if unknown else None


def _stage_jsonl(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path
) -> tuple[int, list[tuple[int | None, str, str]], str | None]:
    """Parse a JSON-lines file into temp table ``_stage``; unparsable lines are quarantined.

    DuckDB parses the lines (the nightly HR snapshots hold 4.3 M lines at 350,000
    employees: their load took 28 s parsed one by one in Python, 23 s this way,
    bench/RESULTS.md 2026-12-07). The lines DuckDB could read differently from Python's ``json``
    (invalid for DuckDB, not an object, a repeated key, a value that is not a string, a
    plain integer or null) are read by Python, so that the rows and reasons are those
    of :func:`_stage_jsonl_python`. A file that is not valid UTF-8 is read by that
    function whole (it quarantines the lines that do not decode).
    """
    import pyarrow as pa

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _stage_jsonl_python(con, spec, path)
    del data
    lines = text.split("\n")
    del text
    if lines and lines[-1] == "":
        lines.pop()  # the file ends with a newline
    numbers = [i for i, line in enumerate(lines, start=1) if line.strip(_ASCII_WHITESPACE)]
    kept = pa.table(
        {
            "n": pa.array(numbers, type=pa.int32()),
            "line": pa.array([lines[i - 1] for i in numbers], type=pa.string()),
        }
    )
    del lines
    names = [c.name for c in spec.columns]
    paths = "[" + ", ".join(_json_path(n) for n in names) + "]"
    as_is = ", ".join(f"'{t}'" for t in _JSON_TYPES_READ_AS_IS)
    # DuckDB takes a line when it is one JSON object without a repeated key whose spec
    # values are strings, plain integers or null. It also accepts a trailing comma, which
    # Python's json refuses: such lines (or lines that only look like it, inside a
    # string) go to Python too. CASE keeps the JSON functions off lines that do not parse.
    plain = " and ".join(
        f"coalesce(types[{i}], 'NULL') in ({as_is}) and (types[{i}] = 'VARCHAR' "
        f"or coalesce(regexp_full_match(vals[{i}], '0|-?[1-9][0-9]*'), true))"
        for i in range(1, len(names) + 1)
    )
    con.register("_jsonl_lines", kept)
    try:
        con.execute(
            "create or replace temp table _jsonl as "
            "with checked as ("
            "  select n, line, case when json_valid(line) then json_type(line) = 'OBJECT'"
            "    and not regexp_matches(line, ',\\s*[\\]}]') else false end as valid"
            "  from _jsonl_lines), "
            "parsed as ("
            "  select n, line,"
            "    case when valid then json_keys(line) end as keys,"
            f"    case when valid then json_type(line, {paths}) end as types,"
            f"    case when valid then json_extract_string(line, {paths}) end as vals"
            "  from checked) "
            "select n, line, vals, coalesce(len(keys) = len(list_distinct(keys)) "
            f"  and {plain}, false) as taken "
            "from parsed"
        )
    finally:
        con.unregister("_jsonl_lines")
    del kept
    values = ", ".join(f"vals[{i}] as c_{n}" for i, n in enumerate(names, start=1))
    _drop_stage(con)
    con.execute(
        "create temp table _stage as select n::integer as _line_number, "
        f"rtrim(line, chr(13)) as _raw, {values} from _jsonl where taken"
    )
    (rows_in,) = con.execute("select count(*) from _jsonl").fetchall()[0]
    unknown = {
        k
        for (k,) in con.execute(
            "select distinct unnest(json_keys(line)) from _jsonl where taken"
        ).fetchall()
    } - set(names)
    # the lines Python reads
    others = con.execute("select n, line from _jsonl where not taken order by n").fetchall()
    con.execute("drop table _jsonl")
    bad: list[tuple[int | None, str, str]] = []
    rows = []
    for number, line in others:
        try:
            record = _json_object(line)
        except ValueError as exc:
            bad.append((number, f"unparsable JSON line: {exc}", line.rstrip("\r")))
            continue
        unknown.update(set(record) - set(names))
        rows.append([number, line.rstrip("\r"), *_json_values(record, names)])
    if rows:
        placeholders = ", ".join("?" for _ in range(len(names) + 2))
        con.executemany(f"insert into _stage values ({placeholders})", rows)
    return rows_in, bad, _extra_keys_message(unknown)


def _stage_jsonl_python(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path
) -> tuple[int, list[tuple[int | None, str, str]], str | None]:
    """Parse a JSON-lines file line by line in Python into temp table ``_stage``.

    For files that are not valid UTF-8 as a whole: each line that does not decode is
    quarantined, the others are read.
    """
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
                record = _json_object(text)
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
            for n, value in zip(names, _json_values(record, names), strict=True):
                rows[f"c_{n}"].append(value)
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
    return rows_in, bad, _extra_keys_message(unknown)


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
        _clear_earlier_load(con, spec, [landed])
        _quarantine(
            con,
            landed,
            run_id,
            now,
            [(number, f"file rejected: {exc}", text) for number, text in lines],
        )
        result = LoadResult(landed.file_id, landed.source_path, len(lines), 0, len(lines), str(exc))
        _record(con, [result], "rejected", now)
        con.execute("commit")
        log.error("%s rejected: %s", landed.source_path, exc)
        return result

    con.execute("begin")
    try:
        _clear_earlier_load(con, spec, [landed])
        _files_table(con, [(landed, None, None)])
        con.execute(
            f"create or replace temp view _checked as select f._file_id, f._source_path, "
            f"f._delivery_date, s.*, {_reason_expr(spec)} as _reason from _stage s, _files f"
        )
        loaded, quarantined = _insert_checked(con, spec, run_id, now)
        quarantined += _quarantine(con, landed, run_id, now, file_rejects)
        result = LoadResult(
            landed.file_id, landed.source_path, rows_in, loaded, quarantined, message
        )
        _reconcile(result)
        _record(con, [result], "loaded", now)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if quarantined:
        log.warning("%s: %d rows loaded, %d quarantined", landed.source_path, loaded, quarantined)
    return result


def load_files(
    con: duckdb.DuckDBPyConnection,
    files: list[LandedFile],
    run_id: str,
    work_dir: Path,
    now: datetime,
) -> list[LoadResult]:
    """Load CSV files of one spec with one ``read_csv`` over all of them, one transaction.

    A night brings thousands of badge files; statements, temp tables and a commit per file
    made the load cost many times the scan (bench/RESULTS.md). Files with the same header
    and compression are read together; line numbers come from each file's row positions in
    the read. A file the shared read cannot take whole (its header differs from the spec,
    the parser rejects a line, a gzip stream is cut short) is loaded alone by ``load_file``,
    which quarantines at line level: the results are the same either way.
    """
    import duckdb

    if not files:
        return []
    spec = files[0].spec
    if spec.fmt != "csv" or any(f.spec != spec for f in files):
        raise ValueError("load_files takes CSV files of one spec")
    groups: dict[tuple, list[LandedFile]] = {}
    alone: list[LandedFile] = []
    messages: dict[tuple, str | None] = {}
    for f in files:
        try:
            header, message = _csv_layout(spec, f.landing_path)
        except _FileRejected:
            alone.append(f)
            continue
        key = (header, _compression(f.landing_path))
        groups.setdefault(key, []).append(f)
        messages[key] = message
    results: list[LoadResult] = []
    for (header, compression), group in groups.items():
        select, source = _read_csv_sql(spec, header, compression)
        while group:
            _drop_read_tables(con)
            try:
                # file_index: the file's position in the list given to read_csv
                con.execute(
                    f"create temp table _read as select *, {_reason_expr(spec)} as _reason "
                    f"from (select file_index, {select} from {source})",
                    [[str(f.landing_path) for f in group]],
                )
                break
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                if "gzip" not in str(exc).lower():
                    raise
                # A cut gzip stream: load_file keeps what precedes the cut. DuckDB names
                # the file; the others are read again without it.
                cut = [f for f in group if str(exc).endswith(str(f.landing_path))] or group
                alone.extend(cut)
                group = [f for f in group if f not in cut]
        if not group:
            continue
        rejected = {
            path
            for (path,) in con.execute(
                "select distinct s.file_path from _rejects r join _rejects_scan s "
                "using (scan_id, file_id)"
            ).fetchall()
        }
        alone.extend(f for f in group if str(f.landing_path) in rejected)
        whole = {i: f for i, f in enumerate(group) if str(f.landing_path) not in rejected}
        results.extend(_load_read(con, spec, whole, messages[(header, compression)], run_id, now))
    _drop_read_tables(con)
    for f in alone:
        results.append(load_file(con, f, run_id, work_dir, now))
    return results


def _load_read(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    files: dict[int, LandedFile],
    message: str | None,
    run_id: str,
    now: datetime,
) -> list[LoadResult]:
    """Insert the rows of ``_read`` of ``files`` (by file index; read whole), one transaction."""
    if not files:
        return []
    # Rows keep file order in _read (DuckDB preserves insertion order): line k + 2 of a file
    # is its k-th row from the file's first rowid. Checked, not assumed: each file's rowids
    # must be one contiguous run.
    spans = {}
    for index, first, last, rows, good in con.execute(
        "select file_index, min(rowid), max(rowid), count(*), count(*) filter (_reason is null) "
        "from _read group by file_index"
    ).fetchall():
        if index in files:
            if last - first + 1 != rows:
                raise ReconciliationError(
                    f"{files[index].source_path}: its {rows} rows were not read in one run; "
                    "line numbers would be wrong"
                )
            spans[index] = (first, rows, good)
    con.execute("begin")
    try:
        _clear_earlier_load(con, spec, list(files.values()))
        _files_table(con, [(f, spans.get(i, (None,))[0], i) for i, f in files.items()])
        # every index of the read gets a row, so that position i + 1 of the lists below is
        # file i; the files read but not loaded here (rejected: loaded alone) have nulls
        con.execute(
            "insert into _files (_file_index) select i from range(?) r(i) "
            "where i not in (select _file_index from _files)",
            [max(files) + 1],
        )
        # Each file's lineage is looked up by its index in lists, not joined: a parallel
        # hash join interleaves the rows of different files on insert, and the raw table
        # keeps each file as one run in line order (stg_badge__events' first build relies
        # on it for speed, retention and zone maps on _file_id like it).
        con.execute(
            "create or replace temp view _checked as select f.ids[r.file_index::bigint + 1] as _file_id, "
            "f.paths[r.file_index::bigint + 1] as _source_path, "
            "f.deliveries[r.file_index::bigint + 1] as _delivery_date, "
            "r.rowid - f.firsts[r.file_index::bigint + 1] + 2 as _line_number, "
            "null::varchar as _raw, r.* exclude (file_index) "
            "from _read r, (select list(_file_id order by _file_index) as ids, "
            "list(_source_path order by _file_index) as paths, "
            "list(_delivery_date order by _file_index) as deliveries, "
            "list(_first_rowid order by _file_index) as firsts from _files) f "
            "where f.ids[r.file_index::bigint + 1] is not null"
        )
        loaded, quarantined = _insert_checked(con, spec, run_id, now)
        results = []
        for i, f in files.items():
            _, rows, good = spans.get(i, (None, 0, 0))
            results.append(LoadResult(f.file_id, f.source_path, rows, good, rows - good, message))
        counted = (
            sum(r.rows_loaded for r in results),
            sum(r.rows_quarantined for r in results),
        )
        if counted != (loaded, quarantined):
            raise ReconciliationError(
                f"{loaded} rows loaded and {quarantined} quarantined, but the files' rows "
                f"count {counted[0]} good and {counted[1]} bad; refusing to record the load"
            )
        _record(con, results, "loaded", now)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    for r in results:
        if r.rows_quarantined:
            log.warning(
                "%s: %d rows loaded, %d quarantined",
                r.source_path,
                r.rows_loaded,
                r.rows_quarantined,
            )
    return results


def _files_table(
    con: duckdb.DuckDBPyConnection, files: list[tuple[LandedFile, int | None, int | None]]
) -> None:
    """Temp table ``_files``: each file's id, source path, delivery date, first rowid, index."""
    con.execute(
        "create or replace temp table _files (_file_id varchar, _source_path varchar, "
        "_delivery_date date, _first_rowid bigint, _file_index bigint)"
    )
    con.executemany(
        "insert into _files values (?, ?, ?, ?, ?)",
        [[f.file_id, f.source_path, f.delivery_date, first, index] for f, first, index in files],
    )


def _reason_expr(spec: FileSpec) -> str:
    """Why a staged row is invalid (every failed check, ``; ``-joined), or null."""
    reasons = ", ".join(filter(None, (_reason_sql(c) for c in spec.columns)))
    return f"nullif(concat_ws('; ', {reasons}), '')"


def _insert_checked(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, run_id: str, now: datetime
) -> tuple[int, int]:
    """Insert view ``_checked``'s good rows into the raw table, its bad rows into quarantine.

    Returns the rows each insert wrote, as DuckDB counts them: counted, not assumed.
    """
    cols = ", ".join(_quote(c.name) for c in spec.columns)
    casts = ", ".join(
        f"cast(nullif(c_{c.name}, '') as {_CAST.get(c.type, 'varchar')})" for c in spec.columns
    )
    loaded = con.execute(
        f"""
        insert into {spec.table} ({cols}, _file_id, _source_path, _line_number,
            _delivery_date, _run_id)
        select {casts}, _file_id, _source_path, _line_number, _delivery_date, ?
        from _checked where _reason is null
        """,
        [run_id],
    ).fetchall()[0][0]
    raw_csv = "concat_ws(',', " + ", ".join(f"coalesce(c_{c.name}, '')" for c in spec.columns) + ")"
    quarantined = con.execute(
        f"""
        insert into audit.quarantine
        select _file_id, _source_path, _line_number, _reason, coalesce(_raw, {raw_csv}), ?, ?
        from _checked where _reason is not null
        """,
        [run_id, now],
    ).fetchall()[0][0]
    return loaded, quarantined


def _reconcile(result: LoadResult) -> None:
    if result.rows_loaded + result.rows_quarantined != result.rows_in:
        raise ReconciliationError(
            f"{result.source_path}: {result.rows_in} rows in the file but {result.rows_loaded} "
            f"loaded and {result.rows_quarantined} quarantined; refusing to record the load"
        )


def _clear_earlier_load(con, spec: FileSpec, files: list[LandedFile]) -> None:
    """Delete what an earlier, committed load of these files wrote (a deliberate reload).

    A failed attempt leaves nothing behind (one transaction per load), so the scan of the
    raw table is only paid when the manifest says a file was loaded before.
    """
    ids = [f.file_id for f in files]
    reloaded = [
        file_id
        for (file_id,) in con.execute(
            "select file_id from audit.source_files where file_id in (select unnest(?)) "
            "and status in ('loaded', 'rejected')",
            [ids],
        ).fetchall()
    ]
    if reloaded:
        con.execute(f"delete from {spec.table} where _file_id in (select unnest(?))", [reloaded])
        con.execute("delete from audit.quarantine where file_id in (select unnest(?))", [reloaded])


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


def _record(con, results: list[LoadResult], status: str, now: datetime) -> None:
    con.executemany(
        """
        update audit.source_files
        set rows_in = ?, rows_loaded = ?, rows_quarantined = ?, status = ?, message = ?,
            loaded_at = ?
        where file_id = ?
        """,
        [
            [r.rows_in, r.rows_loaded, r.rows_quarantined, status, r.message, now, r.file_id]
            for r in results
        ],
    )
