"""The per-run audit report (one static HTML page, no server needed) and the index of runs.

Every value that comes from the sources or the warehouse is escaped.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rto.warehouse import is_table

if TYPE_CHECKING:
    import duckdb

    from rto.config import Paths


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(headers)}"><em>none</em></td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _history_chart(history: list[tuple]) -> str:
    """Inline SVG: one bar per run (oldest left), height = failed checks, red = blocking."""
    if not history:
        return ""
    runs = list(reversed(history))
    top = max(max(r[2] for r in runs), 1)
    width, height, bar = max(24 * len(runs) + 40, 320), 140, 16
    parts = [
        f'<svg id="quality-chart" role="img" width="{width}" height="{height + 30}" '
        f'viewBox="0 0 {width} {height + 30}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Failed checks per run (of {max(r[1] for r in runs)} at most)</title>",
        f'<line x1="30" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>',
        f'<text x="0" y="12" font-size="10">{top}</text>',
        f'<text x="0" y="{height}" font-size="10">0</text>',
    ]
    for i, (run_id, checks, failed, blocking) in enumerate(runs):
        x = 34 + 24 * i
        h_warn = round((failed - blocking) / top * (height - 10))
        h_block = round(blocking / top * (height - 10))
        label = html.escape(f"{run_id}: {failed} of {checks} checks failed, {blocking} blocking")
        parts.append(
            f"<g><title>{label}</title>"
            f'<rect x="{x}" y="{height - h_warn - h_block}" width="{bar}" '
            f'height="{h_warn}" fill="#e0a030"/>'
            f'<rect x="{x}" y="{height - h_block}" width="{bar}" height="{h_block}" '
            f'fill="#c03030"/>'
            f'<rect x="{x}" y="{height}" width="{bar}" height="4" fill="#3a3"/></g>'
        )
    parts.append(
        f'<text x="30" y="{height + 22}" font-size="10">older runs left, '
        "newest right; amber = warnings, red = blocking</text></svg>"
    )
    return "".join(parts)


def _freshness_flag(missing: list[tuple]) -> str:
    """The banner that says the night published without some expected deliveries."""
    if not missing:
        return '<p id="freshness-flag" class="ok">Every expected delivery arrived.</p>'
    sources = sorted({row[0] for row in missing})
    return (
        f'<p id="freshness-flag" class="warning"><strong>Published with {len(missing)} '
        f"expected file(s) missing</strong> (sources: {html.escape(', '.join(sources))}); "
        "the figures of the days they cover are incomplete until they arrive. "
        'See <a href="#missing-deliveries">missing deliveries</a>.</p>'
    )


def _link(target: Path | None, base: Path, label: str) -> str:
    if target is None or not target.exists():
        return f"<span>{html.escape(label)} (not built)</span>"
    rel = os.path.relpath(target, base)
    return f'<a href="{html.escape(rel)}">{html.escape(label)}</a>'


def run_folder(paths: Paths, run_id: str) -> Path:
    """``reports/runs/<run>/``: the run's report, its Data Docs site and its dbt docs."""
    return paths.reports / "runs" / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
.failed { color: #b00; font-weight: bold; }
.warning { background: #fff3cd; border: 1px solid #e0a030; padding: 0.5rem; }
"""


def _data_docs_pages(site: Path, base: Path) -> str:
    """Plain links to the run's validation pages (GX's own index needs its CDN scripts)."""
    from urllib.parse import quote

    pages = sorted((site / "validations").glob("*/*/*/*.html")) if site.exists() else []
    if not pages:
        return "<p><em>no validation pages</em></p>"
    items = "".join(
        f'<li><a href="{html.escape(quote(os.path.relpath(p, base)))}">'
        f"{html.escape(p.relative_to(site / 'validations').parts[0])}</a> "
        f"<small>{html.escape(p.parent.name)}</small></li>"
        for p in pages
    )
    return f'<ul id="data-docs-pages">{items}</ul>'


def _history(con: duckdb.DuckDBPyConnection, has_batches: bool) -> list[tuple]:
    """Checks per night, newest first: raw checks count for the night that claimed their files.

    (In production the ingest runs have run ids of their own.)
    """
    owner = (
        "select s.run_id as ingest, min(n.run_id) as night from audit.night_files n "
        "join audit.source_files s using (file_id) group by s.run_id"
        if has_batches
        else "select null::varchar as ingest, null::varchar as night where false"
    )
    return con.execute(
        f"with owner as ({owner}), "
        "results as (select coalesce(o.night, d.run_id) as night, d.* from audit.dq_results d "
        "left join owner o on o.ingest = d.run_id) "
        "select night, count(*), count(*) filter (where not success), "
        "count(*) filter (where not success and severity = 'blocking') "
        "from results group by night order by min(checked_at) desc limit 30"
    ).fetchall()


def write_report(
    con: duckdb.DuckDBPyConnection, paths: Paths, run_id: str, dbt_docs: Path | None = None
) -> Path:
    """Write ``reports/runs/<run>/index.html`` and refresh the index of runs.

    The run's files are its night batch (``audit.night_files``); its checks are its own
    plus the raw checks of the ingest runs that loaded those files.
    """
    out_dir = run_folder(paths, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_docs = out_dir / "data_docs" / "index.html"
    has_batches = is_table(con, "audit", "night_files")
    batch = (
        "select file_id from audit.night_files where run_id = $run"
        if has_batches
        else "select file_id from audit.source_files where run_id = $run"
    )
    params = {"run": run_id}
    files = con.execute(
        f"select source_path, sha256, bytes, rows_in, rows_loaded, rows_quarantined, status, "
        f"message from audit.source_files where file_id in ({batch}) "
        f"order by source_path",
        params,
    ).fetchall()
    night = con.execute(
        f"select count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0), "
        f"coalesce(sum(rows_quarantined), 0) from audit.source_files where file_id in ({batch})",
        params,
    ).fetchone()
    totals = con.execute(
        "select count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0), "
        "coalesce(sum(rows_quarantined), 0) from audit.source_files"
    ).fetchone()
    quarantine = con.execute(
        f"select regexp_replace(reason, ':.*', '') as reason_class, count(*) "
        f"from audit.quarantine where file_id in ({batch}) group by 1 order by 2 desc, 1",
        params,
    ).fetchall()
    quarantine_all = con.execute(
        "select regexp_replace(reason, ':.*', '') as reason_class, count(*) "
        "from audit.quarantine group by 1 order by 2 desc, 1"
    ).fetchall()
    runs_sql = (
        f"select $run union select distinct run_id from audit.source_files "
        f"where file_id in ({batch})"
    )
    checks = con.execute(
        f"select step, suite, expectation, column_name, severity, success, observed_value, "
        f"unexpected_count, element_count, checked_at from audit.dq_results "
        f"where run_id in ({runs_sql}) order by success, step, suite, expectation, column_name",
        params,
    ).fetchall()
    by_step = con.execute(
        f"select step, count(*), count(*) filter (where not success and severity = 'blocking'), "
        f"count(*) filter (where not success and severity = 'warning') from audit.dq_results "
        f"where run_id in ({runs_sql}) group by step "
        f"order by case step when 'raw' then 1 when 'staging' then 2 else 3 end",
        params,
    ).fetchall()
    from rto.ingest.freshness import OPEN_MISSING_SQL

    missing = con.execute(OPEN_MISSING_SQL).fetchall()
    history = _history(con, has_batches)
    publications = con.execute(
        "select run_id, published_at, target, tables, total_rows from audit.publications "
        "where run_id = $run order by published_at desc",
        params,
    ).fetchall()
    status = con.execute(
        "select status, started_at, finished_at from audit.pipeline_runs "
        "where run_id = $run and dag_id = 'rto_warehouse' order by started_at desc limit 1",
        params,
    ).fetchone()
    n_checks = sum(r[1] for r in by_step)
    n_blocking = sum(r[2] for r in by_step)
    n_warning = sum(r[3] for r in by_step)
    published_at = publications[0][1] if publications else None

    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>RTO warehouse audit report: {html.escape(run_id)}</title>
<style>{STYLE}</style></head><body>
<p><a href="../../index.html">All runs</a></p>
<h1>Audit report</h1>
<p>Run <code id="run-id">{html.escape(run_id)}</code>
{"" if status is None else "(" + html.escape(str(status[0])) + ")"}.
<span id="data-docs-link">{
        _link(data_docs, out_dir, "Great Expectations Data Docs of this run")
    }</span>
&middot; <span id="dbt-docs-link">{_link(dbt_docs, out_dir, "dbt docs")}</span></p>
{_freshness_flag(missing)}
<h2>Published</h2>
<p id="published">{
        "Not published by this run."
        if published_at is None
        else "Published at " + html.escape(str(published_at)) + " UTC."
    }</p>
{_table(["run", "published at", "target", "tables", "rows"], publications)}
<h2>Reconciliation</h2>
<p id="reconciliation">This night: {night[0]} files, {night[1]} rows in = {night[2]} loaded +
{night[3]} quarantined ({
        "balanced" if night[1] == night[2] + night[3] else "NOT BALANCED"
    }). All nights: {totals[0]} files, {totals[1]} rows in = {totals[2]} loaded +
{totals[3]} quarantined ({
        "balanced" if totals[1] == totals[2] + totals[3] else "NOT BALANCED"
    }).</p>
<h2>Checks</h2>
<p id="check-counts">{n_checks} checks run, {n_blocking + n_warning} failed
({n_blocking} blocking, {n_warning} warning).</p>
{_table(["step", "checks", "failed blocking", "failed warning"], by_step)}
<h2>Quarantined rows by reason</h2>
<div id="quarantine">
<h3>This night</h3>
{_table(["reason", "rows"], quarantine)}
<h3>All nights</h3>
{_table(["reason", "rows"], quarantine_all)}
</div>
<h2>Quality history</h2>
{_history_chart(history)}
{_table(["run", "checks", "failed", "failed blocking"], history)}
<h2>Files pulled this night</h2>
<div id="files">
{
        _table(
            ["path", "sha256", "bytes", "rows in", "loaded", "quarantined", "status", "message"],
            files,
        )
    }
</div>
<h2>Data Docs pages of this night</h2>
{_data_docs_pages(data_docs.parent, out_dir)}
<h2>Every check of this night</h2>
{
        _table(
            [
                "step",
                "suite",
                "expectation",
                "column",
                "severity",
                "success",
                "observed",
                "unexpected",
                "rows checked",
                "checked at",
            ],
            checks,
        )
    }
<h2 id="missing-deliveries">Missing deliveries</h2>
{
        _table(
            ["source", "delivery", "expected file", "flagged by run", "grace (min)", "checked at"],
            missing,
        )
    }
</body></html>
"""
    report = out_dir / "index.html"
    report.write_text(page, encoding="utf-8")
    summary = {
        "run_id": run_id,
        "status": None if status is None else status[0],
        "published_at": None if published_at is None else str(published_at),
        "files": night[0],
        "rows_in": night[1],
        "rows_quarantined": night[3],
        "checks": n_checks,
        "failed_blocking": n_blocking,
        "failed_warning": n_warning,
        "started_at": None if status is None else str(status[1]),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_index(paths)
    return report


def write_index(paths: Paths) -> Path:
    """``reports/index.html``: every run that wrote a report, newest first."""
    summaries = []
    for path in (paths.reports / "runs").glob("*/summary.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["href"] = f"runs/{path.parent.name}/index.html"
        summaries.append(data)
    summaries.sort(key=lambda d: (d.get("started_at") or "", d["run_id"]), reverse=True)
    rows = "".join(
        f'<tr><td><a href="{html.escape(d["href"])}">{html.escape(d["run_id"])}</a></td>'
        + "".join(
            f"<td>{html.escape('' if d.get(k) is None else str(d[k]))}</td>"
            for k in (
                "status",
                "published_at",
                "files",
                "rows_in",
                "rows_quarantined",
                "checks",
                "failed_blocking",
                "failed_warning",
            )
        )
        + "</tr>"
        for d in summaries
    )
    index = paths.reports / "index.html"
    index.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RTO warehouse audit reports</title>
<style>{STYLE}</style></head><body>
<h1>Audit reports, newest first</h1>
<table id="runs"><thead><tr><th>run</th><th>status</th><th>published at (UTC)</th>
<th>files</th><th>rows in</th><th>quarantined</th><th>checks</th><th>failed blocking</th>
<th>failed warning</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
""",
        encoding="utf-8",
    )
    return index
