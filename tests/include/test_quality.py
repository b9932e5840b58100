"""Great Expectations steps: suites in git, results in audit, blocking vs warning."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from rto.quality.suites import STEPS, SuiteError, load_suites
from rto.quality.validate import BlockingCheckFailed, run_step
from rto.warehouse import connect

NOW = datetime(2023, 5, 3, 2, 0)


def test_every_committed_suite_is_well_formed():
    names = [s.name for step in STEPS for s in load_suites(step)]
    assert len(names) == len(set(names))
    assert {s.table for s in load_suites("marts")} >= {
        "marts.fct_rto_compliance_weekly",
        "marts.fct_promotion_gate",
        "marts.fct_exits",
        "marts.fct_attrition_monthly",
    }
    # the raw step checks only the rows of the night
    assert all(s.increment for s in load_suites("raw"))
    assert {s.source for s in load_suites("raw")} == {"hr", "badge", "layoffs"}


def test_a_suite_without_severity_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.json").write_text(
        json.dumps(
            {
                "name": "x",
                "table": "raw.x",
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
                ],
            }
        )
    )
    with pytest.raises(SuiteError, match="meta.severity"):
        load_suites("raw", root=tmp_path)


def _suite(tmp_path, severity):
    (tmp_path / "suites" / "marts").mkdir(parents=True, exist_ok=True)
    (tmp_path / "suites" / "marts" / "t.json").write_text(
        json.dumps(
            {
                "name": "t",
                "table": "marts.t",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_unique",
                        "kwargs": {"column": "id"},
                        "meta": {"severity": severity},
                    },
                    {
                        "type": "expect_column_values_to_not_be_null",
                        "kwargs": {"column": "id"},
                        "meta": {"severity": "blocking"},
                    },
                ],
            }
        )
    )
    return tmp_path / "suites"


@pytest.mark.parametrize("severity", ["blocking", "warning"])
def test_failures_are_recorded_and_only_blocking_ones_block(tmp_path, severity):
    root = _suite(tmp_path, severity)
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute(
            "create schema marts; create table marts.t as "
            "select * from (values (1), (2), (2), (3)) v(id)"
        )
        outcome = run_step(con, tmp_path / "gx", "marts", "run1", NOW, expectations_root=root)
        rows = con.execute(
            "select expectation, severity, success, unexpected_count, element_count "
            "from audit.dq_results order by expectation"
        ).fetchall()
    assert rows == [
        ("expect_column_values_to_be_unique", severity, False, 2, 4),
        ("expect_column_values_to_not_be_null", "blocking", True, 0, 4),
    ]
    assert outcome.checked == 2
    assert outcome.data_docs.exists()
    if severity == "blocking":
        with pytest.raises(BlockingCheckFailed, match="Nothing will be published"):
            outcome.raise_if_blocked()
    else:
        outcome.raise_if_blocked()
        assert outcome.failed_warning == ["t.expect_column_values_to_be_unique(id)"]


# --------------------------------------------------------------------------------------
# The night's increment: staging rows from the night's files, marts weeks it rebuilt
# --------------------------------------------------------------------------------------


def _file(con, file_id, path, source, entity, delivery, run_id, status="loaded"):
    con.execute(
        "insert into audit.source_files values (?, ?, ?, ?, ?, 'landing', ?, 1, 2, 2, 0, ?, "
        "null, ?, ?, ?)",
        [file_id, source, entity, path, delivery, "sha-" + file_id, status, NOW, NOW, run_id],
    )


def _write_suite(root, step, name, table, increment, expectations):
    (root / step).mkdir(parents=True, exist_ok=True)
    (root / step / f"{name}.json").write_text(
        json.dumps(
            {"name": name, "table": table, "increment": increment, "expectations": expectations}
        )
    )


def _exp(kind, severity="blocking", **kwargs):
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity}}


def _results(con, run_id):
    return {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            "select expectation, column_name, success, observed_value, unexpected_count, "
            "element_count from audit.dq_results where run_id = ? order by 1, 2",
            [run_id],
        ).fetchall()
    }


@pytest.mark.parametrize("max_frame_rows", ["5000000", "0"], ids=["frame", "in_duckdb"])
def test_staging_checks_the_rows_of_the_nights_files_and_keys_against_the_whole_table(
    tmp_path, monkeypatch, max_frame_rows
):
    # both routes: the increment as a GX frame, and (too large for one) computed in DuckDB
    monkeypatch.setenv("RTO_CHECK_MAX_FRAME_ROWS", max_frame_rows)
    root = tmp_path / "suites"
    _write_suite(
        root,
        "staging",
        "t",
        "staging.t",
        "night_files",
        [
            _exp("expect_column_values_to_not_be_null", column="val"),
            _exp("expect_column_values_to_be_unique", column="id"),
            _exp("expect_table_row_count_to_be_between", min_value=1, max_value=None),
        ],
    )
    with connect(tmp_path / "wh.duckdb") as con:
        # night 1 loaded and published old.csv; night 2 brings new.csv and a rejected file
        _file(con, "f_old", "x/old.csv", "badge", "events", "2023-05-01", "ingest1")
        _file(con, "f_new", "x/new.csv", "badge", "events", "2023-05-02", "ingest2")
        _file(con, "f_bad", "x/bad.csv", "badge", "events", "2023-05-02", "ingest2", "rejected")
        con.execute(
            "insert into audit.pipeline_runs values ('night1', 'rto_warehouse', ?, ?, "
            "'success', null)",
            [NOW, NOW],
        )
        con.execute(
            "create table audit.night_files as select 'night1' as run_id, 'f_old' as file_id, "
            "?::timestamp as claimed_at",
            [NOW],
        )
        con.execute("""
            create schema staging;
            create table staging.t as select * from (values
                (1, 'a', 'x/old.csv'), (2, 'b', 'x/old.csv'),
                (2, 'c', 'x/new.csv'), (3, null, 'x/new.csv')
            ) v(id, val, source_path)
        """)
        outcome = run_step(
            con,
            tmp_path / "gx",
            "staging",
            "night2",
            NOW,
            expectations_root=root,
            run_docs=tmp_path / "runs" / "night2" / "data_docs",
        )
        results = _results(con, "night2")
        claimed = con.execute(
            "select file_id from audit.night_files where run_id = 'night2' order by 1"
        ).fetchall()
    assert claimed == [("f_bad",), ("f_new",)]
    assert outcome.night_files == 2
    assert outcome.rows_checked == 2  # the two rows of new.csv, not the four of the table
    # row level, on the increment: one null among its 2 rows
    assert results[("expect_column_values_to_not_be_null", "val")] == (False, None, 1, 2)
    # pushed down: the new row with id 2 collides with an old one (2 rows share the key)
    assert results[("expect_column_values_to_be_unique", "id")] == (False, "2", 2, 2)
    # pushed down: the whole table has 4 rows
    assert results[("expect_table_row_count_to_be_between", None)] == (True, "4", None, 4)
    assert outcome.failed_blocking == [
        "t.expect_column_values_to_not_be_null(val)",
        "t.expect_column_values_to_be_unique(id)",
    ]
    site = tmp_path / "runs" / "night2" / "data_docs"
    assert (site / "index.html").exists()
    pages = [p.name for p in site.rglob("*.html") if "validations" in p.parts]
    assert len(pages) == 2  # the suite on the increment and its whole-table aggregates


def test_marts_check_the_weeks_the_night_rebuilt(tmp_path):
    root = tmp_path / "suites"
    _write_suite(
        root,
        "marts",
        "w",
        "marts.w",
        {"date_column": "week_start"},
        [_exp("expect_column_values_to_be_between", column="office_days", min_value=0)],
    )
    with connect(tmp_path / "wh.duckdb") as con:
        # earliest event day of the night: Wed 2023-05-10; minus 7 days = Wed 2023-05-03,
        # whose Monday is 2023-05-01
        _file(con, "e1", "badge/events/2023-05-10/NYC.csv.gz", "badge", "events", "2023-05-10", "i")
        _file(con, "e2", "badge/events/2023-05-11/NYC.csv.gz", "badge", "events", "2023-05-11", "i")
        _file(con, "h1", "hr/2023-05-09/employees.jsonl", "hr", "employees", "2023-05-09", "i")
        con.execute("""
            create schema marts;
            create table marts.w as select * from (values
                (date '2023-04-24', -1), (date '2023-05-01', 2), (date '2023-05-08', -3)
            ) v(week_start, office_days)
        """)
        outcome = run_step(
            con, tmp_path / "gx", "marts", "night", NOW, expectations_root=root, lookback_days=7
        )
        results = _results(con, "night")
    assert str(outcome.window.start) == "2023-05-01"
    assert outcome.rows_checked == 2
    # the week of 2023-04-24 (office_days -1) was not rebuilt tonight: not checked
    assert results[("expect_column_values_to_be_between", "office_days")] == (False, None, 1, 2)


def test_a_blocked_nights_files_are_checked_again_the_next_night(tmp_path):
    from rto.quality.increment import claim_night_files

    with connect(tmp_path / "wh.duckdb") as con:
        _file(con, "f1", "a.csv", "badge", "events", "2023-05-01", "i1")
        assert claim_night_files(con, "n1", NOW) == 1
        con.execute(
            "insert into audit.pipeline_runs values ('n1', 'rto_warehouse', ?, ?, 'failed', 'x')",
            [NOW, NOW],
        )
        _file(con, "f2", "b.csv", "badge", "events", "2023-05-02", "i2")
        assert claim_night_files(con, "n2", NOW) == 2  # n1 never published: f1 again
        con.execute(
            "insert into audit.pipeline_runs values ('n2', 'rto_warehouse', ?, ?, "
            "'published', null)",
            [NOW, NOW],
        )
        assert claim_night_files(con, "n3", NOW) == 0
        assert claim_night_files(con, "n2", NOW) == 2  # a retry of n2 rewrites its claim


def test_an_increment_too_large_for_a_frame_is_checked_in_duckdb_with_the_same_results(
    tmp_path, monkeypatch
):
    """Above RTO_CHECK_MAX_FRAME_ROWS each row-level expectation is a DuckDB aggregate
    that GX validates; the recorded results equal those of GX on the frame."""
    root = tmp_path / "suites"
    _write_suite(
        root,
        "staging",
        "t",
        "staging.t",
        None,  # the whole table: uniqueness and row count are row-level here
        [
            _exp("expect_column_values_to_not_be_null", column="val"),
            _exp("expect_column_values_to_be_in_set", column="val", value_set=["a", "b"]),
            _exp("expect_column_values_to_be_between", column="n", min_value=0, max_value=5),
            _exp(
                "expect_column_values_to_match_regex", column="code", regex="^[A-Z]{3}$", mostly=0.5
            ),
            _exp("expect_column_values_to_match_regex", column="tag", regex="^[A-Z]{3}$"),
            _exp("expect_compound_columns_to_be_unique", column_list=["id", "val"]),
            _exp("expect_column_values_to_be_unique", column="id"),
            _exp("expect_table_row_count_to_be_between", min_value=1, max_value=5),
        ],
    )
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute("""
            create schema staging;
            create table staging.t as select * from (values
                (1, 'a', 1, 'ABC', 'ABC'), (1, 'a', 2, 'abc', 'ABC'), (2, null, 7, 'XYZ', null),
                (3, 'c', -1, null, 'AB'), (4, 'b', null, 'QQ', 'DEF'), (4, null, 3, 'DEF', 'DEF')
            ) v(id, val, n, code, tag)
        """)
        in_frame = run_step(con, tmp_path / "gx", "staging", "frame", NOW, expectations_root=root)
        monkeypatch.setenv("RTO_CHECK_MAX_FRAME_ROWS", "5")
        # key hashes grouped a slice at a time: 2 rows a slice, 3 slices here
        monkeypatch.setattr("rto.quality.validate.UNIQUENESS_SLICE_ROWS", 2)
        in_duckdb = run_step(con, tmp_path / "gx", "staging", "duckdb", NOW, expectations_root=root)
        frame, duck = _results(con, "frame"), _results(con, "duckdb")
        # the aggregates ran without insertion order; the loader's line numbers need it back
        order = con.execute("select current_setting('preserve_insertion_order')").fetchall()
        assert order == [(True,)]
    assert in_frame.rows_checked == in_duckdb.rows_checked == 6
    assert duck == frame
    # hand-counted: 2 null vals; 'c' not in the set; 7 and -1 outside 0..5; codes: 3 of
    # the 5 non-null match (0.6 >= mostly 0.5); tags: 'AB' fails; (1, a) twice; ids 1 and 4
    # twice; 6 rows > 5
    assert frame == {
        ("expect_column_values_to_be_between", "n"): (False, None, 2, 6),
        ("expect_column_values_to_be_in_set", "val"): (False, None, 1, 6),
        ("expect_column_values_to_be_unique", "id"): (False, None, 4, 6),
        ("expect_column_values_to_match_regex", "code"): (True, None, 2, 6),
        ("expect_column_values_to_match_regex", "tag"): (False, None, 1, 6),
        ("expect_column_values_to_not_be_null", "val"): (False, None, 2, 6),
        ("expect_compound_columns_to_be_unique", "id,val"): (False, None, 2, 6),
        ("expect_table_row_count_to_be_between", None): (False, "6", None, 6),
    }
    assert sorted(in_duckdb.failed_blocking) == sorted(in_frame.failed_blocking)


def test_whole_table_uniqueness_of_an_increment_that_is_the_whole_table_groups_it_once(tmp_path):
    """A first night's increment is the whole table: its keys are grouped once instead of
    joined with themselves, with the same count (rows whose key repeats; keys with a null
    column match nothing and are skipped)."""
    from rto.quality.suites import Suite
    from rto.quality.validate import _table_aggregate

    with connect(tmp_path / "wh.duckdb") as con:
        con.execute("create schema staging; create table staging.t (id integer, val varchar)")
        con.execute(
            "insert into staging.t values (1, 'a'), (1, 'a'), (1, 'a'), (2, 'b'), (3, null), "
            "(3, null), (null, 'c'), (null, 'c'), (4, 'd')"
        )
        suite = Suite("t", "staging", "staging.t", None, "night_files", (), tmp_path)
        increment = ("select * from staging.t", [])
        compound = _exp("expect_compound_columns_to_be_unique", column_list=["id", "val"])
        single = _exp("expect_column_values_to_be_unique", column="id")
        for exp, expected in ((compound, 3), (single, 5)):
            grouped = _table_aggregate(con, suite, exp, increment, 9)
            joined = _table_aggregate(con, suite, exp, increment, 10)  # as if a subset
            assert grouped == joined == expected


def test_uniqueness_within_files_groups_only_files_whose_keys_do_not_increase(
    tmp_path, monkeypatch
):
    """(event_id, _file_id) unique, in DuckDB: files whose rows come as one run with
    increasing lines and ids cannot repeat an id and are not grouped; the others are.
    The count equals GX's on the frame whatever the files look like."""
    from rto.quality.validate import _files_that_may_repeat

    root = tmp_path / "suites"
    _write_suite(
        root,
        "raw",
        "badge_events",
        "raw.events",
        None,
        [_exp("expect_compound_columns_to_be_unique", column_list=["event_id", "_file_id"])],
    )
    # scanned in this order: clean (increasing) | dup (E-2 twice) | down (decreasing,
    # unique) | split's first run | again (clean, shares ids with clean: other file) |
    # split's second run, which repeats S-2 (the file is not one run: grouped)
    rows = [("E-1", "clean", 2), ("E-2", "clean", 3), ("E-3", "clean", 4)]
    rows += [("E-1", "dup", 2), ("E-2", "dup", 3), ("E-2", "dup", 4)]
    rows += [("D-3", "down", 2), ("D-2", "down", 3), ("D-1", "down", 4)]
    rows += [("S-1", "split", 2), ("S-2", "split", 3)]
    rows += [("E-1", "again", 2), ("E-2", "again", 3)]
    rows += [("S-2", "split", 4)]
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute(
            "create table raw.events (event_id varchar, _file_id varchar, _line_number integer)"
        )
        con.executemany("insert into raw.events values (?, ?, ?)", rows)
        in_frame = run_step(con, tmp_path / "gx", "raw", "frame", NOW, expectations_root=root)
        monkeypatch.setenv("RTO_CHECK_MAX_FRAME_ROWS", "5")
        in_duckdb = run_step(con, tmp_path / "gx", "raw", "duckdb", NOW, expectations_root=root)
        frame, duck = _results(con, "frame"), _results(con, "duckdb")
        sql, params, grouped = _files_that_may_repeat(
            con, "select * from raw.events", [], ["event_id", "_file_id"], len(rows)
        )
        files = {
            f for (f,) in con.execute(f"select distinct _file_id from ({sql})", params).fetchall()
        }
    # E-2 of dup twice, S-2 of split twice: 4 rows
    key = ("expect_compound_columns_to_be_unique", "event_id,_file_id")
    assert frame[key] == (False, None, 4, 14)
    assert duck == frame
    assert in_frame.failed_blocking and in_duckdb.failed_blocking
    assert files == {"dup", "down", "split"} and grouped == 9


@pytest.mark.parametrize(
    "limits",
    [{}, {"MAX_KEY_RUNS": 3}, {"MAX_KEY_RANGES": 1}],
    ids=["proof", "too_many_runs", "too_many_ranges"],
)
def test_one_column_uniqueness_groups_only_runs_whose_key_ranges_overlap(
    tmp_path, monkeypatch, limits
):
    """A one-column key, in DuckDB: the rows, as scanned, fall into runs of strictly
    increasing keys; only runs whose key range overlaps another run's can repeat a key,
    and only their rows are grouped. The count equals GX's on the frame whether the proof
    holds or is given up (too many runs; too many ranges to select the rows left)."""
    from rto.quality import validate

    root = tmp_path / "suites"
    unique = _exp("expect_column_values_to_be_unique", column="k")
    _write_suite(root, "staging", "t", "staging.t", None, [unique])
    # runs as scanned (a run breaks where the key does not increase; nulls are skipped):
    # A 60 61 62 | B 50 51 | C 40 45 | D 42 45 | E 41 | F 30 | G 30 35 | H 20 21 | I 10
    # C, D and E overlap (45 repeats), F and G overlap (30 repeats); A, B, H, I do not
    keys = [60, 61, 62, 50, 51, 40, 45, 42, 45, 41, 30, 30, 35, None, None, 20, 21, 10]
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute("create schema staging; create table staging.t (k varchar, pos integer)")
        con.executemany(
            "insert into staging.t values (?, ?)",
            [[None if k is None else f"E-{k}", i] for i, k in enumerate(keys)],
        )
        in_frame = run_step(con, tmp_path / "gx", "staging", "frame", NOW, expectations_root=root)
        for name, value in limits.items():
            monkeypatch.setattr(validate, name, value)
        monkeypatch.setenv("RTO_CHECK_MAX_FRAME_ROWS", "5")
        in_duckdb = run_step(con, tmp_path / "gx", "staging", "duckdb", NOW, expectations_root=root)
        frame, duck = _results(con, "frame"), _results(con, "duckdb")
        left_behind = con.execute(
            "select table_name from duckdb_tables() where temporary and table_name like '_rto%'"
        ).fetchall()
        sql, params, grouped = validate._runs_that_may_repeat(
            con, "select * from staging.t", [], "k", len(keys)
        )
        left = sorted(k for (k,) in con.execute(f"select k from ({sql}) i", params).fetchall() if k)
        # A and B alone: nothing can repeat, nothing is left to group
        clean = validate._runs_that_may_repeat(
            con, "select * from staging.t where pos < ?", [5], "k", 5
        )
    # E-45 twice, E-30 twice
    assert frame[("expect_column_values_to_be_unique", "k")] == (False, None, 4, 18)
    assert duck == frame
    assert in_duckdb.failed_blocking == in_frame.failed_blocking != []
    assert left_behind == []
    if limits:
        assert grouped == len(keys)
        assert left == sorted(f"E-{k}" for k in keys if k is not None)
    else:
        # C, D, E, F, G: the rows whose key falls in E-30..E-35 or E-40..E-45
        assert grouped == 8
        assert left == sorted(f"E-{k}" for k in (40, 45, 42, 45, 41, 30, 30, 35))
    assert clean == ("select * from staging.t where pos < ?", [5], 0)


def test_one_column_uniqueness_ends_a_run_where_the_file_changes(tmp_path):
    """Staging events keep each badge file's ids in one increasing stretch, but the files
    of one day (ids prefixed by site) chain into one increasing run whose range overlaps
    the next day's. With a file column a run ends at each file: nothing is left to group."""
    from rto.quality import validate

    # day 1: BLR then SEA; day 2: BLR then SEA (as the loader writes them)
    rows = [("BLR-1-01", "f1"), ("BLR-1-02", "f1"), ("SEA-1-01", "f2"), ("SEA-1-02", "f2")]
    rows += [("BLR-2-01", "f3"), ("BLR-2-02", "f3"), ("SEA-2-01", "f4")]
    with connect(tmp_path / "wh.duckdb") as con:
        con.execute("create table t (event_id varchar, source_file_id varchar)")
        con.executemany("insert into t values (?, ?)", rows)
        with_files = validate._runs_that_may_repeat(con, "select * from t", [], "event_id", 7)
        without = validate._runs_that_may_repeat(con, "select event_id from t", [], "event_id", 7)
    assert with_files == ("select * from t", [], 0)
    # one run a day: BLR-1-01..SEA-1-02 and BLR-2-01..SEA-2-01 overlap, all 7 rows grouped
    assert without[2] == 7
