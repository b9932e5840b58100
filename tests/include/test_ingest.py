"""Pull and load: manifest, landing zone, row-level quarantine and reconciliation."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from rto.ingest.load import load_file
from rto.ingest.pull import LandingConflict, discover, land, new_files, record_landed
from rto.ingest.sources import match
from rto.warehouse import connect

NOW = datetime(2023, 5, 3, 2, 0)
EVENT_HEADER = b"event_id,badge_id,site_id,reader_id,event_time,direction,result\n"


def _write_gz(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content, mtime=0))


def _ingest(root: Path, data: Path, source: str, run_id: str = "run1"):
    with connect(data / "wh.duckdb") as con:
        results = []
        for f in new_files(con, discover(str(root), source)):
            landed = land(str(root), data / "landing", f)
            record_landed(con, landed, run_id, NOW)
            results.append(load_file(con, landed, run_id, data / "tmp", NOW))
        return results


def test_paths_map_to_their_raw_tables():
    spec, delivery = match("badge/events/2023-05-02/NYC.csv.gz")
    assert (spec.table, delivery) == ("raw.badge_events", date(2023, 5, 2))
    assert match("hr/2023-05-02/employees.jsonl")[0].table == "raw.hr_employees"
    assert match("layoffs/2023-01-10/rif_notices.csv")[0].table == "raw.layoffs_rif_notices"
    assert match("badge/assignments/2023-05-02.csv.gz")[0].table == "raw.badge_assignments"
    assert match("hr/2023-02-30/employees.jsonl") is None  # not a date
    assert match("hr/2023-05-02/salaries.jsonl") is None
    assert match("../etc/passwd") is None


def test_bad_rows_are_quarantined_with_line_and_reason(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    _write_gz(
        root / "badge/events/2023-05-02/NYC.csv.gz",
        EVENT_HEADER
        + b"e1,B1,NYC,R1,2023-05-02 08:00:00,IN,GRANTED\n"
        + b"e2,B1,NYC,R1,2023-05-02 08:00:00,IN\n"  # line 3: a column short
        + b"e3,B1,NYC,R1,2023-13-02 08:00:00,IN,GRANTED\n"  # line 4: month 13
        + b"e4,B1,NYC,R1,2023-05-02 09:00:00,SIDEWAYS,GRANTED\n"  # line 5: bad direction
        + b"e5,B1,NYC,R1,2023-05-02 17:00:00,OUT,GRANTED\n"
        + b"e6,B1,NYC,R1,2023-05-02 17:00:00,OUT,GRANTED,surplus\n"  # line 7: a column more
        + b"e7,B\xff\xfe,NYC,R1,2023-05-02 17:00:00,OUT,GRANTED\n",  # line 8: not UTF-8
    )
    [result] = _ingest(root, data, "badge")
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (7, 2, 5)
    with connect(data / "wh.duckdb") as con:
        loaded = con.execute(
            "select event_id, _line_number from raw.badge_events order by 2"
        ).fetchall()
        assert loaded == [("e1", 2), ("e5", 6)]
        quarantined = con.execute(
            "select line_number, reason from audit.quarantine order by 1"
        ).fetchall()
    assert [q[0] for q in quarantined] == [3, 4, 5, 7, 8]
    assert quarantined[0][1].startswith("MISSING COLUMNS")
    assert quarantined[1][1] == "event_time is not a valid timestamp: 2023-13-02 08:00:00"
    assert quarantined[2][1] == "direction has an unknown value: SIDEWAYS"
    assert quarantined[3][1].startswith("TOO MANY COLUMNS")
    assert quarantined[4][1].startswith("INVALID ENCODING")


def test_manifest_makes_reruns_idempotent_and_picks_up_late_files(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    _write_gz(
        root / "badge/events/2023-05-02/NYC.csv.gz",
        EVENT_HEADER + b"e1,B1,NYC,R1,2023-05-02 08:00:00,IN,GRANTED\n",
    )
    assert len(_ingest(root, data, "badge")) == 1
    assert _ingest(root, data, "badge", "run2") == []  # nothing new
    # a site's file that arrives days late is new to the manifest
    _write_gz(
        root / "badge/events/2023-04-28/DUB.csv.gz",
        EVENT_HEADER + b"e9,B2,DUB,R1,2023-04-28 09:00:00,IN,GRANTED\n",
    )
    [late] = _ingest(root, data, "badge", "run3")
    assert late.source_path == "badge/events/2023-04-28/DUB.csv.gz"
    with connect(data / "wh.duckdb") as con:
        assert con.execute("select count(*) from raw.badge_events").fetchone()[0] == 2
        assert con.execute("select count(*) from audit.source_files").fetchone()[0] == 2


def test_reloading_a_file_replaces_its_rows(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    _write_gz(
        root / "badge/events/2023-05-02/NYC.csv.gz",
        EVENT_HEADER + b"e1,B1,NYC,R1,2023-05-02 08:00:00,IN,GRANTED\nbad\n",
    )
    with connect(data / "wh.duckdb") as con:
        [f] = discover(str(root), "badge")
        landed = land(str(root), data / "landing", f)
        record_landed(con, landed, "run1", NOW)
        for _ in range(3):  # a retried task
            load_file(con, landed, "run1", data / "tmp", NOW)
        assert con.execute("select count(*) from raw.badge_events").fetchone()[0] == 1
        assert con.execute("select count(*) from audit.quarantine").fetchone()[0] == 1


def test_truncated_gzip_keeps_the_readable_rows(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    body = EVENT_HEADER + b"".join(
        b"e%05d,B1,DUB,R1,2023-05-02 08:00:00,IN,GRANTED\n" % i for i in range(20000)
    )
    whole = gzip.compress(body, mtime=0)
    path = root / "badge/events/2023-05-02/DUB.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(whole[: len(whole) // 2])
    [result] = _ingest(root, data, "badge")
    assert 0 < result.rows_loaded < 20000
    assert result.rows_quarantined == 1
    assert result.rows_in == result.rows_loaded + 1
    with connect(data / "wh.duckdb") as con:
        line, reason = con.execute("select line_number, reason from audit.quarantine").fetchone()
    assert line == result.rows_loaded + 2  # header + loaded rows, then the cut line
    assert reason.startswith("file truncated")


def test_a_file_missing_a_column_is_rejected_whole(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    _write_gz(
        root / "badge/events/2023-05-02/NYC.csv.gz",
        b"event_id,badge_id,site_id\ne1,B1,NYC\ne2,B1,NYC\n",
    )
    [result] = _ingest(root, data, "badge")
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (2, 0, 2)
    with connect(data / "wh.duckdb") as con:
        (status,) = con.execute("select status from audit.source_files").fetchone()
        reasons = con.execute("select distinct reason from audit.quarantine").fetchall()
    assert status == "rejected"
    assert "header lacks column(s) reader_id, event_time, direction, result" in reasons[0][0]


def test_jsonl_rows_are_typed_and_checked(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    path = root / "hr/2023-05-02/employees.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"employee_id": "E1", "full_name": "A", "email": "a@x", "hire_date": "2020-01-06",'
        ' "termination_date": null, "termination_reason": null, "worker_type": "employee",'
        ' "home_site_id": "NYC", "country": "US"}\n'
        '{"employee_id": "E2", "hire_date": "2020-02-30", "worker_type": "employee"}\n'
        "{not json}\n"
        '{"employee_id": "E3", "hire_date": "2021-01-04", "worker_type": "robot"}\n'
    )
    [result] = _ingest(root, data, "hr")
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (4, 1, 3)
    with connect(data / "wh.duckdb") as con:
        assert con.execute(
            "select employee_id, hire_date, termination_date from raw.hr_employees"
        ).fetchall() == [("E1", date(2020, 1, 6), None)]
        reasons = dict(con.execute("select line_number, reason from audit.quarantine").fetchall())
    assert reasons[2] == "hire_date is not a valid date: 2020-02-30"
    assert reasons[3].startswith("unparsable JSON line")
    assert reasons[4] == "worker_type has an unknown value: robot"


def _mixed_night(root: Path) -> None:
    """One night of badge files, each a different case for the shared read."""
    day = "badge/events/2023-05-02"
    _write_gz(  # clean apart from one bad value on line 3
        root / f"{day}/AMS.csv.gz",
        EVENT_HEADER
        + b"a1,B1,AMS,R1,2023-05-02 08:00:00,IN,GRANTED\n"
        + b"a2,B1,AMS,R1,2023-05-02 08:10:00,UP,GRANTED\n"
        + b"a3,B1,AMS,R1,2023-05-02 17:00:00,OUT,GRANTED\n",
    )
    _write_gz(root / f"{day}/BER.csv.gz", EVENT_HEADER)  # header only
    _write_gz(  # other column order and an extra column
        root / f"{day}/CPH.csv.gz",
        b"result,event_id,badge_id,site_id,reader_id,event_time,direction,door\n"
        + b"GRANTED,c1,B2,CPH,R1,2023-05-02 08:00:00,IN,D4\n"
        + b"DENIED,c2,B2,CPH,R1,2023-05-02 08:01:00,IN,D4\n",
    )
    _write_gz(  # the parser rejects line 3
        root / f"{day}/DUB.csv.gz",
        EVENT_HEADER
        + b"d1,B3,DUB,R1,2023-05-02 08:00:00,IN,GRANTED\n"
        + b"d2,B3,DUB,R1,2023-05-02 08:00:00,IN,GRANTED,surplus\n"
        + b"d3,B3,DUB,R1,2023-05-02 18:00:00,OUT,GRANTED\n",
    )
    body = EVENT_HEADER + b"".join(
        b"e%05d,B4,EDI,R1,2023-05-02 08:00:00,IN,GRANTED\n" % i for i in range(20000)
    )
    whole = gzip.compress(body, mtime=0)
    (root / f"{day}/EDI.csv.gz").write_bytes(whole[: len(whole) // 2])  # cut short
    _write_gz(root / f"{day}/FRA.csv.gz", b"event_id,badge_id\nf1,B5\n")  # lacks columns
    (root / f"{day}/GVA.csv").write_bytes(  # not compressed
        EVENT_HEADER + b"g1,B6,GVA,R1,2023-05-02 09:00:00,IN,GRANTED\n"
    )
    for site in ("HEL", "IST"):  # two more clean files beside AMS
        _write_gz(
            root / f"{day}/{site}.csv.gz",
            EVENT_HEADER
            + b"".join(
                b"%s%d,B7,%s,R1,2023-05-02 0%d:00:00,IN,GRANTED\n"
                % (site.encode(), i, site.encode(), i)
                for i in range(1, 6)
            ),
        )


def _warehouse_contents(path: Path) -> dict:
    with connect(path) as con:
        return {
            "raw": con.execute(
                "select * exclude (_source_path) from raw.badge_events order by all"
            ).fetchall(),
            "quarantine": con.execute(
                "select file_id, line_number, reason, raw_text from audit.quarantine order by all"
            ).fetchall(),
            "files": con.execute(
                "select source_path, rows_in, rows_loaded, rows_quarantined, status, message "
                "from audit.source_files order by all"
            ).fetchall(),
        }


def test_one_read_over_a_night_loads_what_file_by_file_loads(tmp_path, monkeypatch):
    """load_files (one read_csv over many files) == load_file per file, row for row."""
    from rto.ingest import load as loader

    alone = []
    monkeypatch.setattr(
        loader,
        "load_file",
        lambda con, f, *a: alone.append(f.source_path.rsplit("/", 1)[1]) or load_file(con, f, *a),
    )
    root = tmp_path / "src"
    _mixed_night(root)
    _ingest(root, tmp_path / "alone", "badge")
    with connect(tmp_path / "together" / "wh.duckdb") as con:
        landed = []
        for f in discover(str(root), "badge"):
            landed.append(land(str(root), tmp_path / "together" / "landing", f))
            record_landed(con, landed[-1], "run1", NOW)
        results = loader.load_files(con, landed, "run1", tmp_path / "together" / "tmp", NOW)
    # only what the shared read cannot take whole: a rejected line, a cut gzip, a bad header
    assert sorted(alone) == ["DUB.csv.gz", "EDI.csv.gz", "FRA.csv.gz"]
    alone = _warehouse_contents(tmp_path / "alone" / "wh.duckdb")
    together = _warehouse_contents(tmp_path / "together" / "wh.duckdb")
    assert together == alone
    by_site = {r.source_path.rsplit("/", 1)[1]: r for r in results}
    counts = {k: (r.rows_in, r.rows_loaded, r.rows_quarantined) for k, r in by_site.items()}
    assert counts["AMS.csv.gz"] == (3, 2, 1)
    assert counts["BER.csv.gz"] == (0, 0, 0)
    assert counts["CPH.csv.gz"] == (2, 2, 0)
    assert counts["DUB.csv.gz"] == (3, 2, 1)
    assert counts["FRA.csv.gz"] == (1, 0, 1)
    assert counts["GVA.csv"] == (1, 1, 0)
    assert counts["HEL.csv.gz"] == counts["IST.csv.gz"] == (5, 5, 0)
    assert by_site["CPH.csv.gz"].message == "extra column(s) ignored: door"
    assert sum(r.rows_in for r in results) == sum(
        r.rows_loaded + r.rows_quarantined for r in results
    )
    with connect(tmp_path / "together" / "wh.duckdb") as con:
        lines = set(con.execute("select event_id, _line_number from raw.badge_events").fetchall())
    assert {("a1", 2), ("a3", 4), ("c2", 3), ("d3", 4), ("HEL5", 6), ("IST1", 2)} <= lines
    ams = by_site["AMS.csv.gz"].file_id
    assert [q[1:] for q in together["quarantine"] if q[0] == ams] == [
        (3, "direction has an unknown value: UP", "a2,B1,AMS,R1,2023-05-02 08:10:00,UP,GRANTED")
    ]


def test_one_read_keeps_each_file_one_run_in_line_order_in_the_raw_table(tmp_path):
    """Files large enough to be read and inserted in parallel (several row groups each)
    land in the raw table as one run of rowids per file, lines in order: what the
    staging events' first build and the raw uniqueness checks rely on to skip work."""
    from rto.ingest import load as loader

    root = tmp_path / "src"
    for k, site in enumerate(("AMS", "BER", "CPH", "DUB")):
        rows = b"".join(
            b"%s-%07d,B%d,%s,R1,2023-05-02 08:00:00,IN,GRANTED\n"
            % (site.encode(), i, k, site.encode())
            for i in range(150_000 + 7 * k)
        )
        _write_gz(root / f"badge/events/2023-05-02/{site}.csv.gz", EVENT_HEADER + rows)
    with connect(tmp_path / "wh.duckdb") as con:
        landed = []
        for f in discover(str(root), "badge"):
            landed.append(land(str(root), tmp_path / "landing", f))
            record_landed(con, landed[-1], "run1", NOW)
        loader.load_files(con, landed, "run1", tmp_path / "tmp", NOW)
        runs = con.execute(
            "select _source_path, count(*), max(rowid) - min(rowid) + 1, "
            "count(*) filter (where _line_number <> previous + 1) "
            "from (select _source_path, _line_number, rowid, "
            "  lag(_line_number) over (partition by _source_path order by rowid) as previous "
            "  from raw.badge_events) group by _source_path order by 1"
        ).fetchall()
    assert [(path.rsplit("/", 1)[1], n, span, breaks) for path, n, span, breaks in runs] == [
        (f"{site}.csv.gz", 150_000 + 7 * k, 150_000 + 7 * k, 0)
        for k, site in enumerate(("AMS", "BER", "CPH", "DUB"))
    ]


def test_the_nightly_load_gives_the_same_rows_whatever_the_batch_size(tmp_path, monkeypatch):
    from rto.config import resolve_paths
    from rto.nightly import load, pull

    root = tmp_path / "src"
    _mixed_night(root)
    totals = {}
    for limit in ("1", str(1 << 30)):
        monkeypatch.setenv("RTO_LOAD_BATCH_BYTES", limit)
        paths = resolve_paths(str(root), tmp_path / f"data-{limit}")
        pull(paths, "badge", "run1")
        totals[limit] = load(paths, "badge", "run1")
    one_by_one, together = (
        _warehouse_contents(tmp_path / f"data-{limit}" / "warehouse" / "build.duckdb")
        for limit in totals
    )
    assert together == one_by_one
    assert totals["1"] == totals[str(1 << 30)]
    assert totals["1"]["files"] == 9
    assert totals["1"]["rows_in"] == (totals["1"]["rows_loaded"] + totals["1"]["rows_quarantined"])


def test_landing_zone_is_immutable(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    source = root / "layoffs/2023-01-10/rif_rounds.csv"
    source.parent.mkdir(parents=True)
    source.write_text("rif_round_id,name,announced_on,scope_org_unit_id,planned_reductions\n")
    [f] = discover(str(root), "layoffs")
    land(str(root), data / "landing", f)
    land(str(root), data / "landing", f)  # same content: fine
    source.write_text(
        "rif_round_id,name,announced_on,scope_org_unit_id,planned_reductions\nR,x,,,\n"
    )
    with pytest.raises(LandingConflict, match="immutable"):
        land(str(root), data / "landing", f)


def test_a_file_with_only_a_header_loads_nothing_and_is_recorded(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    _write_gz(root / "badge/events/2023-03-05/DUB.csv.gz", EVENT_HEADER)  # a Sunday
    [result] = _ingest(root, data, "badge")
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    with connect(data / "wh.duckdb") as con:
        assert con.execute("select status from audit.source_files").fetchone() == ("loaded",)


def test_a_gzip_cut_inside_the_header_is_rejected_and_counted(tmp_path):
    root, data = tmp_path / "src", tmp_path / "data"
    whole = gzip.compress(EVENT_HEADER + b"e1,B1,NYC,R1,2023-05-02 08:00:00,IN,GRANTED\n", mtime=0)
    path = root / "badge/events/2023-05-02/NYC.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(whole[:30])
    [result] = _ingest(root, data, "badge")
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (1, 0, 1)
    with connect(data / "wh.duckdb") as con:
        status, message = con.execute("select status, message from audit.source_files").fetchone()
        line, reason = con.execute("select line_number, reason from audit.quarantine").fetchone()
    assert status == "rejected" and message.startswith("header row unreadable")
    assert line == 1 and reason.startswith("file rejected: header row unreadable")


def test_links_out_of_the_source_root_are_never_read(tmp_path):
    root = tmp_path / "src"
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"site_id": "X", "country": "US", "timezone": "UTC"}\n')
    (root / "hr/2023-05-02").mkdir(parents=True)
    (root / "hr/2023-05-02/sites.jsonl").symlink_to(outside)
    (root / "hr/2023-05-02/leave.jsonl").write_text("")
    assert [f.source_path for f in discover(str(root), "hr")] == ["hr/2023-05-02/leave.jsonl"]


def test_oversized_files_are_refused_and_recorded(tmp_path, monkeypatch):
    from rto.config import resolve_paths
    from rto.nightly import pull

    root = tmp_path / "src"
    _write_gz(root / "badge/events/2023-05-02/NYC.csv.gz", EVENT_HEADER + b"x" * 5000)
    _write_gz(root / "badge/events/2023-05-02/DUB.csv.gz", EVENT_HEADER)
    big = (root / "badge/events/2023-05-02/NYC.csv.gz").stat().st_size
    monkeypatch.setenv("RTO_MAX_FILE_BYTES", str(big - 1))
    paths = resolve_paths(str(root), tmp_path / "data")
    assert pull(paths, "badge", "run1")["files"] == 2
    with connect(paths.warehouse) as con:
        rows = con.execute(
            "select source_path, status, message from audit.source_files order by 1"
        ).fetchall()
    assert rows[0][:2] == ("badge/events/2023-05-02/DUB.csv.gz", "landed")
    assert rows[1][:2] == ("badge/events/2023-05-02/NYC.csv.gz", "refused")
    assert "over the limit" in rows[1][2]
    assert not (paths.landing / "badge/events/2023-05-02/NYC.csv.gz").exists()
    # not retried on the next night: the manifest knows it
    assert pull(paths, "badge", "run2")["files"] == 0


# --------------------------------------------------------------------------------------
# Late and missing deliveries (rto.ingest.freshness) and the pull's delivery-date bound


def _touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_night_expects_the_deliveries_of_the_local_day_before_its_end():
    from zoneinfo import ZoneInfo

    from rto.ingest.freshness import delivery_date_for

    night = datetime(2024, 5, 2, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert delivery_date_for(night, "UTC") == date(2024, 5, 1)
    # 23:30 UTC on 1 May is 00:30 on 2 May in Dublin (UTC+1 in summer)
    late_evening = datetime(2024, 5, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert delivery_date_for(late_evening, "UTC") == date(2024, 4, 30)
    assert delivery_date_for(late_evening, "Europe/Dublin") == date(2024, 5, 1)


def test_expected_files_per_source(tmp_path):
    from rto.ingest.freshness import expected_paths, missing_paths

    root = tmp_path / "src"
    _touch(root / "hr/2023-05-01/sites.jsonl", '{"site_id": "NYC"}\n{"site_id": "DUB"}\n')
    # a newer sites snapshot than the night must not count for it
    _touch(root / "hr/2023-05-03/sites.jsonl", '{"site_id": "NYC"}\n{"site_id": "LON"}\n')
    day = date(2023, 5, 2)
    hr = expected_paths(str(root), "hr", day)
    assert len(hr) == 10 and hr[0] == "hr/2023-05-02/sites.jsonl"
    assert hr[-1] == "hr/2023-05-02/approvals.jsonl"
    badge = expected_paths(str(root), "badge", day)
    assert badge == [
        "badge/assignments/2023-05-02.csv.gz",
        "badge/events/2023-05-02/DUB.csv.gz",
        "badge/events/2023-05-02/NYC.csv.gz",
    ]
    assert expected_paths(str(root), "layoffs", day) == []  # not nightly: never waits
    _touch(root / "badge/events/2023-05-02/NYC.csv.gz")
    assert missing_paths(str(root), badge) == badge[:2]
    assert len(missing_paths(str(root), hr)) == 10


def test_pull_takes_files_up_to_the_nights_delivery_date_and_records_what_is_missing(tmp_path):
    from rto.config import Paths
    from rto.ingest.freshness import OPEN_MISSING_SQL
    from rto.nightly import pull

    root, data = tmp_path / "src", tmp_path / "data"
    paths = Paths(source_root=str(root), data_dir=data)
    for day, site in (("2023-05-01", "NYC"), ("2023-05-02", "NYC"), ("2023-05-03", "NYC")):
        _write_gz(root / f"badge/events/{day}/{site}.csv.gz", EVENT_HEADER)
    _write_gz(root / "badge/assignments/2023-05-02.csv.gz", b"badge_id\n")
    expected = [
        "badge/assignments/2023-05-02.csv.gz",
        "badge/events/2023-05-02/DUB.csv.gz",
        "badge/events/2023-05-02/NYC.csv.gz",
    ]
    check = {
        "source": "badge",
        "delivery_date": "2023-05-02",
        "expected": expected,
        "missing": ["badge/events/2023-05-02/DUB.csv.gz"],
        "grace_minutes": 0.0,
    }
    first = pull(paths, "badge", "night-0502", date(2023, 5, 2), check)
    assert (first["files"], first["missing"]) == (3, ["badge/events/2023-05-02/DUB.csv.gz"])
    with connect(paths.warehouse) as con:
        pulled = con.execute("select source_path from audit.source_files order by 1").fetchall()
        freshness = con.execute(
            "select dag_id, source, delivery_date, expected_path, status from audit.freshness "
            "order by expected_path"
        ).fetchall()
        still_missing = con.execute(OPEN_MISSING_SQL).fetchall()
    # the file dated 2023-05-03 belongs to the next night
    assert [p for (p,) in pulled] == [
        "badge/assignments/2023-05-02.csv.gz",
        "badge/events/2023-05-01/NYC.csv.gz",
        "badge/events/2023-05-02/NYC.csv.gz",
    ]
    assert freshness == [
        ("rto_ingest_badge", "badge", date(2023, 5, 2), expected[0], "present"),
        ("rto_ingest_badge", "badge", date(2023, 5, 2), expected[1], "missing"),
        ("rto_ingest_badge", "badge", date(2023, 5, 2), expected[2], "present"),
    ]
    assert [(r[0], r[2]) for r in still_missing] == [("badge", expected[1])]

    # a rerun of the same run rewrites its freshness rows, it does not add to them
    assert pull(paths, "badge", "night-0502", date(2023, 5, 2), check)["files"] == 0
    # DUB's file arrives late, dated 2 May; the next night takes it and its own files
    _write_gz(root / "badge/events/2023-05-02/DUB.csv.gz", EVENT_HEADER)
    next_check = check | {"delivery_date": "2023-05-03", "expected": [], "missing": []}
    assert pull(paths, "badge", "night-0503", date(2023, 5, 3), next_check)["files"] == 2
    with connect(paths.warehouse) as con:
        rows = con.execute("select count(*) from audit.freshness").fetchone()[0]
        assert con.execute(OPEN_MISSING_SQL).fetchall() == []
        late = con.execute(
            "select run_id from audit.source_files where source_path = ?", [expected[1]]
        ).fetchone()
    assert rows == 3 and late == ("night-0503",)


def test_a_grace_window_must_be_a_number_of_minutes(monkeypatch):
    from rto.ingest.freshness import grace_minutes

    monkeypatch.setenv("AIRFLOW_VAR_RTO_GRACE_MINUTES_BADGE", "90")
    assert grace_minutes("badge") == 90.0
    monkeypatch.setenv("AIRFLOW_VAR_RTO_GRACE_MINUTES_BADGE", "ninety")
    with pytest.raises(ValueError, match="rto_grace_minutes_badge"):
        grace_minutes("badge")
    monkeypatch.delenv("AIRFLOW_VAR_RTO_GRACE_MINUTES_BADGE")
    monkeypatch.delenv("AIRFLOW_VAR_RTO_GRACE_MINUTES_HR", raising=False)
    assert grace_minutes("hr") == 0.0


def test_jsonl_read_by_duckdb_gives_the_rows_and_reasons_of_pythons_json(tmp_path):
    """DuckDB parses the JSON lines; every line it could read apart from Python's json
    (a trailing comma, a repeated key, true, 1e2, a big or negative zero integer, NaN,
    a nested value, not an object, not JSON) is read by Python: the staged rows, the
    quarantined lines with their reasons and the extra keys equal the line-by-line
    Python reader's, on a file with CRLF endings and blank lines too."""
    from rto.ingest.load import _stage_jsonl, _stage_jsonl_python
    from rto.ingest.sources import match

    spec, _ = match("hr/2023-05-02/sites.jsonl")
    names = [c.name for c in spec.columns]
    first = names[0]
    lines = [
        {first: "NYC", "extra": 1},
        f'{{"{first}": "A,}}"}}',  # looks like a trailing comma, inside a string
        f'{{"{first}": "B",}}',  # a trailing comma: DuckDB takes it, Python does not
        f'{{"{first}": "C", "{first}": "D"}}',  # repeated key: Python keeps the last
        f'{{"{first}": true}}',
        f'{{"{first}": 1e2}}',
        f'{{"{first}": 123456789012345678901234}}',
        f'{{"{first}": -0}}',
        f'{{"{first}": -12}}',
        f'{{"{first}": NaN}}',
        f'{{"{first}": {{"nested": [1, 2]}}}}',
        "[1, 2]",
        "{not json}",
        "   ",
        "",
        f'{{"{first}": "caf\\u00e9", "other": null}}\r',
        {first: None},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    results = {}
    for name, stage in (("duckdb", _stage_jsonl), ("python", _stage_jsonl_python)):
        path = tmp_path / name / "sites.jsonl"
        path.parent.mkdir()
        path.write_bytes(text.replace("\n", "\r\n", 1).encode() + b"\n")
        with connect(tmp_path / name / "wh.duckdb") as con:
            rows_in, bad, message = stage(con, spec, path)
            staged = con.execute("select * from _stage order by _line_number").fetchall()
        results[name] = (rows_in, bad, message, staged)
    assert results["duckdb"] == results["python"]
    rows_in, bad, message, staged = results["duckdb"]
    assert rows_in == 15  # 17 lines, 2 blank
    assert [b[0] for b in bad] == [3, 12, 13]
    assert message == "extra key(s) ignored: extra, other"
    values = {row[0]: row[2 + names.index(first)] for row in staged}  # _line_number, _raw, c_*
    assert values[4] == "D" and values[5] == "True" and values[6] == "100.0"
    assert values[8] == "0" and values[9] == "-12" and values[16] == "café"


def test_jsonl_that_is_not_utf8_is_read_line_by_line(tmp_path):
    """A line that does not decode is quarantined; the others load."""
    from rto.ingest.load import _stage_jsonl
    from rto.ingest.sources import match

    spec, _ = match("hr/2023-05-02/sites.jsonl")
    first = spec.columns[0].name
    path = tmp_path / "sites.jsonl"
    path.write_bytes(f'{{"{first}": "NYC"}}\n{{"{first}": "\xff"}}\n'.encode("latin-1"))
    with connect(tmp_path / "wh.duckdb") as con:
        rows_in, bad, message = _stage_jsonl(con, spec, path)
        staged = con.execute("select _line_number from _stage").fetchall()
    assert (rows_in, [b[0] for b in bad], staged) == (2, [2], [(1,)])
