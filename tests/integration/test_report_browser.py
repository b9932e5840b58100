"""The audit report opened in headless Chromium (Debian's package): its key contents render.

A warehouse with known files, quarantined rows, check results and a publication is
written by hand, the report is built from it, and Chromium's DOM after rendering must
show the file names, their sha256, the check counts, the quarantine reasons and the
SVG quality chart. In CI (``CI`` set) a missing Chromium is a failure, not a skip:
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rto.config import Paths
from rto.publish.report import write_report
from rto.warehouse import connect

SHA_A = "a" * 63 + "1"
SHA_B = "b" * 63 + "2"
T = datetime(2023, 5, 3, 2, 0)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed; in CI .ci/run installs Debian's package chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it in CI")


def render(page: Path, tmp_path: Path) -> str:
    """The DOM after Chromium has rendered ``page`` (scripts run, SVG parsed)."""
    out = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


class _Dom(HTMLParser):
    """Text per element id (and every svg rect), from Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.text: dict[str, str] = {}
        self.rects: list[dict] = []
        self.links: dict[str, str] = {}

    VOID = {"meta", "link", "br", "hr", "img", "input", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.VOID:
            return
        if tag == "rect":
            self.rects.append(attrs)
            return
        if tag == "a" and attrs.get("href"):
            self.links[attrs["href"]] = ""
        self.stack.append(attrs.get("id"))
        if attrs.get("id"):
            self.text.setdefault(attrs["id"], "")

    def handle_endtag(self, tag):
        if tag not in self.VOID and tag != "rect" and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for element_id in self.stack:
            if element_id:
                self.text[element_id] += data


def _warehouse(paths: Paths) -> None:
    with connect(paths.warehouse) as con:
        con.execute(
            """
            insert into audit.source_files values
            ('f1', 'badge', 'events', 'badge/events/2023-05-02/NYC.csv.gz', '2023-05-02',
             'landing/x', '"""
            + SHA_A
            + """', 120, 10, 8, 2, 'loaded', null,
             '2023-05-03 01:30:00', '2023-05-03 01:31:00', 'ingest_night_2'),
            ('f2', 'hr', 'employees', 'hr/2023-05-02/employees.jsonl', '2023-05-02',
             'landing/y', '"""
            + SHA_B
            + """', 80, 5, 4, 1, 'loaded', null,
             '2023-05-03 01:30:00', '2023-05-03 01:31:00', 'ingest_night_2');
            insert into audit.quarantine values
            ('f1', 'badge/events/2023-05-02/NYC.csv.gz', 3, 'bad timestamp: event_time', 'x',
             'ingest_night_2', '2023-05-03 01:31:00'),
            ('f1', 'badge/events/2023-05-02/NYC.csv.gz', 7, 'bad timestamp: event_time', 'y',
             'ingest_night_2', '2023-05-03 01:31:00'),
            ('f2', 'hr/2023-05-02/employees.jsonl', 4, 'missing key: employee_id', '{}',
             'ingest_night_2', '2023-05-03 01:31:00');
            insert into audit.pipeline_runs values
            ('night_1', 'rto_warehouse', '2023-05-02 02:00:00', '2023-05-02 03:00:00',
             'success', null),
            ('night_2', 'rto_warehouse', '2023-05-03 02:00:00', '2023-05-03 03:00:00',
             'success', null);
            insert into audit.publications values
            ('night_2', '2023-05-03 02:40:00', 'serving', 7, 1234);
        """
        )
        con.execute(
            "create table if not exists audit.night_files "
            "(run_id varchar, file_id varchar, claimed_at timestamp)"
        )
        con.execute(
            "insert into audit.night_files values ('night_2', 'f1', ?), ('night_2', 'f2', ?)",
            [T, T],
        )
        results = [
            # an older night: 3 checks, one warning failed
            (
                "night_1",
                "raw",
                "badge_events",
                "expect_column_values_to_not_be_null",
                "warning",
                False,
            ),
            (
                "night_1",
                "staging",
                "stg_badge__events",
                "expect_column_values_to_be_unique",
                "blocking",
                True,
            ),
            (
                "night_1",
                "marts",
                "fct_exits",
                "expect_column_values_to_be_in_set",
                "blocking",
                True,
            ),
            # this night: raw checks of its ingest run, then staging and marts (4 + 1 + 1)
            (
                "ingest_night_2",
                "raw",
                "badge_events",
                "expect_column_values_to_not_be_null",
                "blocking",
                True,
            ),
            (
                "ingest_night_2",
                "raw",
                "hr_employees",
                "expect_column_values_to_be_in_set",
                "warning",
                False,
            ),
            (
                "night_2",
                "staging",
                "stg_badge__events",
                "expect_column_values_to_be_unique",
                "blocking",
                True,
            ),
            (
                "night_2",
                "marts",
                "fct_exits",
                "expect_column_values_to_be_in_set",
                "blocking",
                True,
            ),
            (
                "night_2",
                "marts",
                "fct_rto_compliance_weekly",
                "expect_table_row_count_to_be_between",
                "blocking",
                True,
            ),
            (
                "night_2",
                "marts",
                "fct_promotion_gate",
                "expect_column_values_to_be_unique",
                "warning",
                False,
            ),
        ]
        for i, (run, step, suite, exp, severity, ok) in enumerate(results):
            con.execute(
                "insert into audit.dq_results values (?, ?, ?, ?, 'c', ?, ?, null, ?, 10, ?)",
                [run, step, suite, exp, severity, ok, 0 if ok else 1, T.replace(minute=i)],
            )
        # the older night's report exists too: the index must list both
        write_report(con, paths, "night_1")
        write_report(con, paths, "night_2")


def test_report_renders_its_key_contents_in_chromium(tmp_path):
    chromium()  # fail or skip before building anything
    paths = Paths(source_root=str(tmp_path / "source"), data_dir=tmp_path / "data")
    run_dir = paths.reports / "runs" / "night_2"
    (run_dir / "data_docs").mkdir(parents=True)
    (run_dir / "data_docs" / "index.html").write_text("<html>gx</html>")
    page = (
        run_dir / "data_docs" / "validations" / "stg_badge__events" / "night_2" / "20230503T0200Z"
    )
    page.mkdir(parents=True)
    (page / "rto_staging-stg_badge__events.html").write_text("<html>gx page</html>")
    _warehouse(paths)

    dom = _Dom()
    dom.feed(render(run_dir / "index.html", tmp_path))
    files = dom.text["files"]
    for name, sha in (
        ("badge/events/2023-05-02/NYC.csv.gz", SHA_A),
        ("hr/2023-05-02/employees.jsonl", SHA_B),
    ):
        assert name in files and sha in files
    # 6 checks belong to night_2 (2 raw from its ingest run + 1 staging + 3 marts)
    assert " ".join(dom.text["check-counts"].split()) == (
        "6 checks run, 2 failed (0 blocking, 2 warning)."
    )
    quarantine = dom.text["quarantine"]
    assert "bad timestamp" in quarantine and "missing key" in quarantine
    assert " ".join(dom.text["reconciliation"].split()).startswith(
        "This night: 2 files, 15 rows in = 12 loaded + 3 quarantined (balanced)."
    )
    assert "2023-05-03 02:40:00" in dom.text["published"]
    # the quality chart: one bar group per run (2 runs x 3 rects), inside the svg
    assert "quality-chart" in dom.text
    assert len(dom.rects) == 6
    assert "data_docs/index.html" in dom.links
    assert "stg_badge__events" in dom.text["data-docs-pages"]
    assert (
        "data_docs/validations/stg_badge__events/night_2/20230503T0200Z/"
        "rto_staging-stg_badge__events.html" in dom.links
    )
    assert "../../index.html" in dom.links

    index = _Dom()
    index.feed(render(paths.reports / "index.html", tmp_path))
    assert set(index.links) == {"runs/night_1/index.html", "runs/night_2/index.html"}
    assert index.text["runs"].index("night_2") < index.text["runs"].index("night_1")
