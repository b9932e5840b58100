"""Write the source files of DOMAIN.md section 3: a full run or one night.

`generate(config)` writes the HR snapshot and badge assignments dated
`config.end`, every site's event file for every local day of
`[start, end]`, and the RIF deliveries dated within the range.

`generate_night(config, night)` writes only what is delivered on `night`:
the HR snapshot and assignments dated `night`, the events of local day
`night` (minus the files that arrive late, plus the late files of earlier
days that arrive now) and the RIF deliveries dated `night`. Running it for
every night from `start` to `end` leaves the same event and RIF files as a
full run (the population is simulated for the whole configured range, and
every random draw is keyed by seed and day, never by position in a loop).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from .calendar import SITES, daterange
from .config import SimulatorConfig
from .events import DayGenerator
from .hr import (
    ASSIGNMENT_COLUMNS,
    HR_COLUMNS,
    RIF_NOTICE_COLUMNS,
    RIF_ROUND_COLUMNS,
    assignment_rows,
    hr_tables,
    rif_deliveries,
)
from .messy import EventRenderer, rif_correction_deliveries
from .population import Population, build_population
from .writers import Summary, write_bytes, write_csv, write_jsonl

_POP: Population | None = None  # shared with forked workers
_RENDERER: EventRenderer | None = None


def write_hr_snapshot(pop: Population, night: date, out: Path, summary: Summary) -> None:
    folder = out / "hr" / night.isoformat()
    for name, rows in hr_tables(pop, night).items():
        summary.add(f"hr/{name}", *write_jsonl(folder / f"{name}.jsonl", HR_COLUMNS[name], rows))


def write_assignments(pop: Population, night: date, out: Path, summary: Summary) -> None:
    path = out / "badge" / "assignments" / f"{night.isoformat()}.csv.gz"
    summary.add(
        "badge/assignments",
        *write_csv(path, ASSIGNMENT_COLUMNS, assignment_rows(pop, night), pop.cfg.compresslevel),
    )


def write_layoffs(pop: Population, out: Path, summary: Summary, first: date, last: date) -> None:
    deliveries = rif_deliveries(pop)
    corrections = set()
    if pop.cfg.quirks.rif_correction:
        for day, files in rif_correction_deliveries(pop, deliveries).items():
            deliveries.setdefault(day, files)
            corrections.add(day)
    for day, (rounds, notices) in sorted(deliveries.items()):
        if not first <= day <= last or day < pop.cfg.start or day > pop.cfg.end:
            continue
        if day in corrections:
            summary.quirks["rif_correction"] += 1
        folder = out / "layoffs" / day.isoformat()
        summary.add(
            "layoffs/rif_rounds",
            *write_csv(folder / "rif_rounds.csv", RIF_ROUND_COLUMNS, rounds, None),
        )
        summary.add(
            "layoffs/rif_notices",
            *write_csv(folder / "rif_notices.csv", RIF_NOTICE_COLUMNS, notices, None),
        )


def _renderer() -> EventRenderer:
    global _RENDERER
    assert _POP is not None
    if _RENDERER is None or _RENDERER.pop is not _POP:
        _RENDERER = EventRenderer(_POP, DayGenerator(_POP))
    return _RENDERER


def _write_event_files(job: tuple[Path, list[tuple[date, int | None]]]) -> Summary:
    """Write (day, site) event files; site None = every site of the day."""
    out, items = job
    rnd = _renderer()
    summary = Summary()
    for day, site in items:
        sites = range(len(SITES)) if site is None else [site]
        for s in sites:
            data, rows = rnd.render(day, s, summary.quirks)
            path = out / "badge" / "events" / day.isoformat() / f"{SITES[s].site_id}.csv.gz"
            summary.add("badge/events", rows, write_bytes(path, data))
    return summary


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0
        self.t0 = self.shown = time.monotonic()

    def step(self, n: int, rows: int) -> None:
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.5 and self.done < self.total):
            return
        self.shown = now
        el = now - self.t0
        frac = self.done / max(self.total, 1)
        eta = el / frac - el if frac else 0
        bar = "#" * int(30 * frac)
        sys.stderr.write(
            f"\r[{bar:<30}] {100 * frac:5.1f}% days {self.done}/{self.total}"
            f"  rows {rows:,}  {el:6.0f}s elapsed  eta {eta:5.0f}s"
        )
        sys.stderr.flush()
        if self.done >= self.total:
            sys.stderr.write("\n")


def _run_event_jobs(
    pop: Population,
    out: Path,
    items: list[tuple[date, int | None]],
    summary: Summary,
    progress: bool,
) -> None:
    global _POP
    _POP = pop
    cfg = pop.cfg
    # chunk by ISO week: a worker reuses its week plan for the days of the week
    chunks: list[list[tuple[date, int | None]]] = []
    for item in items:
        if chunks and chunks[-1][0][0].isocalendar()[:2] == item[0].isocalendar()[:2]:
            chunks[-1].append(item)
        else:
            chunks.append([item])
    bar = _Progress(len(items), progress)
    if cfg.workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            part = _write_event_files((out, chunk))
            summary.merge(part)
            bar.step(len(chunk), summary.rows)
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(cfg.workers) as pool:
        jobs = [(out, chunk) for chunk in chunks]
        for chunk, part in zip(chunks, pool.imap(_write_event_files, jobs), strict=True):
            summary.merge(part)
            bar.step(len(chunk), summary.rows)


def generate(
    config: SimulatorConfig, population: Population | None = None, until: date | None = None
) -> Summary:
    """Write every source file for `[config.start, until]` under `config.out`.

    Args:
        until: the last local day written (default `config.end`). The company is still
            simulated to `config.end`, so `generate_night` for the nights after `until`
            continues the same company (a benchmark's "next night").

    Returns:
        what was written (files, rows, bytes, quirks injected).
    """
    until = until or config.end
    if not config.start <= until <= config.end:
        raise ValueError(f"until {until} is outside {config.start}..{config.end}")
    t0 = time.monotonic()
    pop = population if population is not None else build_population(config)
    out = Path(config.out)
    summary = Summary()
    write_hr_snapshot(pop, until, out, summary)
    write_assignments(pop, until, out, summary)
    write_layoffs(pop, out, summary, config.start, until)
    items: list[tuple[date, int | None]] = [(d, None) for d in daterange(config.start, until)]
    _run_event_jobs(pop, out, items, summary, config.progress)
    summary.seconds = time.monotonic() - t0
    return summary


def generate_night(
    config: SimulatorConfig, night: date, population: Population | None = None
) -> Summary:
    """Write only the files delivered on `night` (see the module docstring)."""
    if not config.start <= night <= config.end:
        raise ValueError(
            f"night {night} is outside the simulated range {config.start}..{config.end};"
            " widen --start/--end"
        )
    t0 = time.monotonic()
    pop = population if population is not None else build_population(config)
    out = Path(config.out)
    summary = Summary()
    write_hr_snapshot(pop, night, out, summary)
    write_assignments(pop, night, out, summary)
    write_layoffs(pop, out, summary, night, night)
    global _POP
    _POP = pop
    rnd = _renderer()
    items: list[tuple[date, int | None]] = []
    for s in range(len(SITES)):
        if not rnd.is_late(night, s):
            items.append((night, s))
    late_day = night - timedelta(days=config.quirks.late_days)
    if late_day >= config.start:
        for s in range(len(SITES)):
            if rnd.is_late(late_day, s):
                items.append((late_day, s))
    _run_event_jobs(pop, out, items, summary, False)
    summary.seconds = time.monotonic() - t0
    return summary


def generate_nights(
    config: SimulatorConfig, until: date, nights: Iterable[date] | None = None
) -> Summary:
    """Night after night from `config.start` to `until` (one population build)."""
    pop = build_population(config)
    total = Summary()
    t0 = time.monotonic()
    days = list(nights) if nights is not None else list(daterange(config.start, until))
    bar = _Progress(len(days), config.progress)
    for night in days:
        total.merge(generate_night(config, night, pop))
        bar.step(1, total.rows)
    total.seconds = time.monotonic() - t0
    return total
