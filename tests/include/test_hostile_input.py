"""Hostile input: no SQL identifier is built from data, source text is escaped in HTML.

Two kinds of proof: a structural one (every SQL statement the package builds
with an f-string interpolates only reviewed, code-derived expressions) and
behavioural ones (files whose names, headers, keys and values are SQL or HTML
injections load as plain data and reach the audit report escaped).
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from datetime import datetime
from pathlib import Path

from rto import nightly
from rto.config import PROJECT_ROOT, Paths
from rto.ingest.sources import FILE_SPECS
from rto.publish.report import write_report
from rto.quality.increment import claim_night_files
from rto.warehouse import connect

SQL_START = re.compile(
    r"^\s*(select|insert|delete|create|update|drop|alter|attach|copy|truncate|with|grant|"
    r"revoke)\b",
    re.I,
)
# Every expression interpolated into an SQL f-string, per file, and where it comes from.
# A new one must be reviewed: identifiers from the code (specs, suites in git, the
# catalogue, quoted) or values bound as parameters, never text from a source file.
REVIEWED = {
    "include/rto/ingest/load.py": {
        "total_lines + 1",  # an integer count
        "select",  # column{i} positions and spec column names
        "columns",  # column{i}: VARCHAR, one per header position
        "compression",  # the literal 'gzip' or 'none'
        "reasons",  # _reason_sql(spec column)
        "_reason_expr(spec)",  # the same, joined
        "source",  # read_csv(?, ...) from _read_csv_sql: the options above, the path bound
        "spec.table",  # FILE_SPECS
        "cols",  # _quote(spec column)
        "casts",  # spec columns and their declared types
        "raw_csv",  # spec column names
        "kind",  # the literals 'view' or 'table' (_drop_stage)
        # _stage_jsonl: JSON paths of spec column names, fixed type names, list positions
        "paths",  # ['$."<spec column>"', ...]
        "plain",  # conditions on types[i] / vals[i]: positions and _JSON_TYPES_READ_AS_IS
        "values",  # vals[i] as c_<spec column>
        "placeholders",  # one ? per column
    },
    "include/rto/postgres.py": {
        "target.as_string(cur)",  # psycopg2 sql.Identifier
        "quoted",  # catalogue names, double-quoted and escaped
        "', '.join('?' * len(schemas))",  # placeholders; the schemas are bound
    },
    "include/rto/publish/report.py": {
        "batch",  # one of two fixed subqueries; the run id is bound as $run
        "runs_sql",  # a fixed subquery around batch; $run bound
        "owner",  # one of two fixed subqueries
    },
    "include/rto/publish/serve.py": {
        "OPEN_MISSING_SQL",  # a constant query of rto.ingest.freshness
        "_ident(schema)",  # catalogue names through _ident (quoted, escaped)
        "_ident(table)",
        "_ident(c)",
        "', '.join(select)",  # _ident()s and fixed aliases
        "', '.join((_ident(c) for c in cols))",  # the same _ident()ed column names
        "query",  # select of those columns from _ident()ed schema and table, fixed joins
        "target",  # serving_out.<_ident(schema)>.<_ident(table)>
        "SCOPE",  # module constant: intermediate.int_rebuild_scope
        "BUILDS",  # module constant: intermediate.int_rebuild_state_builds
        # fixed SQL over SCOPE around _ident()ed SCOPED_MARTS columns (optionally "t.")
        "_in_scope(employee, week, pseudonymous)",
        "_in_scope(f't.{employee}', f't.{week}', False)",
    },
    "include/rto/quality/validate.py": {
        "suite.table",  # suite files in git
        "_ident(suite.date_column)",  # suite files in git, quoted and escaped
        "match",  # i.{c} = t.{c} over _ident()ed key columns of a suite's expectation
        "', '.join(('t.' + c for c in cols))",  # the same _ident()ed key columns
        # an increment too large for a frame (_row_aggregate, _table_aggregate, run_step):
        "sql",  # _increment_sql(): suite.table and _ident()ed columns; values are parameters
        "increment[0]",  # the same
        "source",  # "_rto_increment" (registered Arrow table) or "(<that SQL>)"
        "cols",  # _ident()ed key columns of a suite's expectation
        "not_all_null",  # "<_ident(column)> is not null" joined by "or", same columns
        "every",  # the same, joined by "and"
        "k",  # _ident() of a key's one column (_runs_that_may_repeat, _files_that_may_repeat)
        "within",  # "<k> between ? and ?" joined by "or"; the bounds are parameters
        "same_file",  # " and lag(<f>) over () = <f>" for _ident() of FILE_COLUMNS present
        "hashes",  # select hash(<cols>) from (<sql>) where <not_all_null>, or "_rto_hashes"
        "column",  # _ident(kwargs["column"]) of a suite's expectation
        "condition",  # fixed SQL around that column; values are bound parameters
    },
    "include/rto/warehouse.py": {"spec.table", "cols", "LINEAGE_COLUMNS"},  # FILE_SPECS
}
EVENT_HEADER = "event_id,badge_id,site_id,reader_id,event_time,direction,result"
DROP = '"; drop table raw.badge_events; --'
# as a CSV header cell: the loader splits the header on commas and strips quotes
DROP_HEADER = "x; drop table raw.badge_events; --"


def _sql_fstrings() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((PROJECT_ROOT / "include" / "rto").rglob("*.py")):
        if "simulator" in path.parts:  # writes files, runs no SQL
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.JoinedStr) or not node.values:
                continue
            first = node.values[0]
            if isinstance(first, ast.Constant) and SQL_START.search(first.value):
                exprs = {
                    ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)
                }
                if exprs:
                    key = str(path.relative_to(PROJECT_ROOT))
                    found.setdefault(key, set()).update(exprs)
    return found


def test_sql_is_built_only_from_reviewed_code_expressions():
    found = _sql_fstrings()
    assert found, "the scan found no SQL f-string at all: it is broken"
    unreviewed = {
        path: sorted(exprs - REVIEWED.get(path, set()))
        for path, exprs in found.items()
        if exprs - REVIEWED.get(path, set())
    }
    assert unreviewed == {}, (
        f"SQL built from unreviewed expressions: {unreviewed}. Bind values as parameters; "
        "identifiers must come from the code (then add them to REVIEWED with their origin)."
    )


def test_identifiers_from_the_specs_are_plain_names():
    for spec in FILE_SPECS:
        assert re.fullmatch(r"raw\.[a-z_]+", spec.table), spec.table
        for column in spec.columns:
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", column.name), column.name


def _gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))


def _hostile_source(root: Path) -> None:
    # a header with an injection as an extra column; values that are SQL and HTML
    _gz(
        root / "badge/events/2023-05-02/NYC.csv.gz",
        f"{EVENT_HEADER},{DROP_HEADER},<script>alert(3)</script>\n"
        "e1,B1,NYC,'); drop table raw.hr_sites; --,2023-05-02 08:00:00,IN,GRANTED,x,y\n"
        "e2,B1,NYC,R1,2023-05-02 17:00:00,<b>OUT</b>,GRANTED,x,y\n",
    )
    # a file name that is an injection: not a path of DOMAIN.md section 3, never read
    _gz(root / f"badge/events/2023-05-02/NYC{DROP}.csv.gz", f"{EVENT_HEADER}\nz,z,z,z,z,z,z\n")
    units = [
        {
            "org_unit_id": "OU1",
            "name": '<script>alert("ou")</script>',
            "parent_id": None,
            "kind": "company",
            "head_employee_id": None,
            DROP: "an injected key",
        },
        {
            "org_unit_id": "OU2",
            "name": "Team",
            "parent_id": "OU1",
            "kind": "<img src=x onerror=alert(2)>",
            "head_employee_id": None,
        },
    ]
    hr = root / "hr/2023-05-02/org_units.jsonl"
    hr.parent.mkdir(parents=True)
    hr.write_text("".join(json.dumps(u) + "\n" for u in units))


def test_hostile_names_headers_keys_and_values_load_as_plain_data(tmp_path):
    root = tmp_path / "source"
    _hostile_source(root)
    paths = Paths(source_root=str(root), data_dir=tmp_path / "data")
    assert nightly.pull(paths, "badge", "run1")["files"] == 1  # the injected name is ignored
    assert nightly.pull(paths, "hr", "run1")["files"] == 1
    badge = nightly.load(paths, "badge", "run1")
    hr = nightly.load(paths, "hr", "run1")
    assert (badge["rows_in"], badge["rows_loaded"], badge["rows_quarantined"]) == (2, 1, 1)
    assert (hr["rows_in"], hr["rows_loaded"], hr["rows_quarantined"]) == (2, 1, 1)
    with connect(paths.warehouse) as con:
        tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw'"
        ).fetchone()
        assert tables == (len(FILE_SPECS),)  # nothing dropped
        assert con.execute("select event_id, reader_id from raw.badge_events").fetchall() == [
            ("e1", "'); drop table raw.hr_sites; --")
        ]
        assert con.execute("select org_unit_id, name from raw.hr_org_units").fetchall() == [
            ("OU1", '<script>alert("ou")</script>')
        ]
        assert con.execute(
            "select source_path, reason from audit.quarantine order by source_path"
        ).fetchall() == [
            ("badge/events/2023-05-02/NYC.csv.gz", "direction has an unknown value: <b>OUT</b>"),
            (
                "hr/2023-05-02/org_units.jsonl",
                "kind has an unknown value: <img src=x onerror=alert(2)>",
            ),
        ]
        messages = con.execute(
            "select source, message from audit.source_files order by source"
        ).fetchall()
        assert messages == [
            ("badge", f"extra column(s) ignored: {DROP_HEADER}, <script>alert(3)</script>"),
            ("hr", f"extra key(s) ignored: {DROP}"),
        ]


def test_source_text_is_escaped_in_the_audit_report(tmp_path):
    root = tmp_path / "source"
    _hostile_source(root)
    paths = Paths(source_root=str(root), data_dir=tmp_path / "data")
    for source in ("badge", "hr"):
        nightly.pull(paths, source, "run1")
        nightly.load(paths, source, "run1")
    with connect(paths.warehouse) as con:
        # a run id is text from outside too (a manual trigger names it); the warehouse
        # run claims the night's files, as its checks do, so the report lists them
        run_id = "<script>alert(4)</script>"
        claim_night_files(con, run_id, datetime(2024, 1, 2, 3))
        page = write_report(con, paths, run_id).read_text()
    for payload in ("<script>alert", "<img src=x", "<b>OUT"):
        assert payload not in page, payload
    # the hostile texts did reach the page, escaped
    assert "extra column(s) ignored: x; drop table raw.badge_events; --, " in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in page
    assert "extra key(s) ignored: &quot;; drop table raw.badge_events; --" in page
