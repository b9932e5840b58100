"""The per-run audit report: one static HTML page, no server needed.

Every value that comes from the sources or the warehouse is escaped.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

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
    width, height, bar = 24 * len(runs) + 40, 140, 16
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


def write_report(
    con: duckdb.DuckDBPyConnection, paths: Paths, run_id: str, dbt_docs: Path | None = None
) -> Path:
    """Write ``reports/runs/<run>/index.html`` and refresh ``reports/index.html``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    out_dir = paths.reports / "runs" / safe
    out_dir.mkdir(parents=True, exist_ok=True)
    data_docs = paths.gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    files = con.execute(
        "select source_path, sha256, bytes, rows_in, rows_loaded, rows_quarantined, status, "
        "message from audit.source_files order by pulled_at desc, source_path limit 500"
    ).fetchall()
    totals = con.execute(
        "select count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0), "
        "coalesce(sum(rows_quarantined), 0) from audit.source_files"
    ).fetchone()
    quarantine = con.execute(
        "select regexp_replace(reason, ':.*', '') as reason_class, count(*) "
        "from audit.quarantine group by 1 order by 2 desc"
    ).fetchall()
    checks = con.execute(
        "select step, suite, expectation, column_name, severity, success, unexpected_count, "
        "checked_at from audit.dq_results where run_id = ? order by success, step, suite",
        [run_id],
    ).fetchall()
    history = con.execute(
        "select run_id, count(*), count(*) filter (where not success), "
        "count(*) filter (where not success and severity = 'blocking') "
        "from audit.dq_results group by run_id order by min(checked_at) desc limit 30"
    ).fetchall()
    from rto.ingest.freshness import OPEN_MISSING_SQL

    missing = con.execute(OPEN_MISSING_SQL).fetchall()
    publications = con.execute(
        "select run_id, published_at, target, tables, total_rows from audit.publications "
        "order by published_at desc limit 10"
    ).fetchall()

    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>RTO warehouse audit report: {html.escape(run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }}
th {{ background: #f0f0f0; }}
.warning {{ background: #fff3cd; border: 1px solid #e0a030; padding: 0.5rem; }}
</style></head><body>
<h1>Audit report</h1>
<p>Run <code id="run-id">{html.escape(run_id)}</code>.
{_link(data_docs, out_dir, "Great Expectations Data Docs")} &middot;
{_link(dbt_docs, out_dir, "dbt docs")}</p>
{_freshness_flag(missing)}
<h2>Reconciliation</h2>
<p id="reconciliation">{totals[0]} files, {totals[1]} rows in = {totals[2]} loaded +
{totals[3]} quarantined ({
        "balanced" if totals[1] == totals[2] + totals[3] else "NOT BALANCED"
    }).</p>
<h2>Checks run in this run</h2>
{
        _table(
            [
                "step",
                "suite",
                "expectation",
                "column",
                "severity",
                "success",
                "unexpected",
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
<h2>Quarantined rows by reason</h2>
{_table(["reason", "rows"], quarantine)}
<h2>Publications</h2>
{_table(["run", "published at", "target", "tables", "rows"], publications)}
<h2>Quality history</h2>
{_history_chart(history)}
{_table(["run", "checks", "failed", "failed blocking"], history)}
<h2>Files pulled (newest 500)</h2>
{
        _table(
            ["path", "sha256", "bytes", "rows in", "loaded", "quarantined", "status", "message"],
            files,
        )
    }
</body></html>
"""
    report = out_dir / "index.html"
    report.write_text(page, encoding="utf-8")
    latest = paths.reports / "index.html"
    latest.write_text(
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" '
        f'content="0; url=runs/{html.escape(safe)}/index.html">'
        f'<a href="runs/{html.escape(safe)}/index.html">latest run</a>',
        encoding="utf-8",
    )
    return report
