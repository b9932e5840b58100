"""Configuration of one simulator run.

`SimulatorConfig` says what to simulate (size, period, seed, where to write);
`QuirkRates` says how messy the deliveries are. Every quirk is off by default
in the Python API so that tests and the pipeline's happy path get clean data;
`QuirkRates.demo()` (CLI `--messy`) turns on rates that show each quirk a
handful of times in a small run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class QuirkRates:
    """Rates of the messy-delivery quirks (all 0 / off by default).

    Rates are fractions of the unit named in each field. Every quirk decision
    is drawn from a random stream keyed by (seed, day, site), so a quirk lands
    on the same row whatever the chunking or the night the file is written.
    """

    duplicate_event_rate: float = 0.0
    """Share of event rows written twice in the same file (same event_id)."""
    resent_file_rate: float = 0.0
    """Share of site-day files whose rows the vendor sends again inside the
    next day's file of the same site (same event_ids, later delivery)."""
    unknown_badge_rate: float = 0.0
    """Extra rows, as a share of a file's rows, swiped by badge ids that no
    assignment knows (`B9xxxxxx`), result DENIED."""
    bad_row_rate: float = 0.0
    """Share of event rows replaced by a row that does not parse: a bad
    timestamp, a wrong column count or bytes that are not UTF-8 (a third each)."""
    vendor_column_from: date | None = None
    """From this local day on, one site's vendor adds a trailing column
    `door_name` to its event files (header included)."""
    vendor_column_site: str = "DUB"
    truncated_file_rate: float = 0.0
    """Share of site-day event files whose gzip stream is cut short."""
    late_file_rate: float = 0.0
    """Share of site-day event files delivered `late_days` nights late
    (matters in night-by-night mode; the full run writes every file)."""
    late_days: int = 3
    rif_correction: bool = False
    """Deliver, a week after each RIF round's announcement, a corrected
    rif_rounds.csv (new planned_reductions) and a rif_notices.csv in which a
    few notices change separation_date."""

    @classmethod
    def demo(cls, start: date | None = None, end: date | None = None) -> QuirkRates:
        """Rates that make every quirk visible in a small run (CLI `--messy`)."""
        vendor_from = None
        if start is not None and end is not None:
            vendor_from = date.fromordinal((start.toordinal() * 1 + end.toordinal() * 2) // 3)
        return cls(
            duplicate_event_rate=0.002,
            resent_file_rate=0.01,
            unknown_badge_rate=0.001,
            bad_row_rate=0.0005,
            vendor_column_from=vendor_from,
            truncated_file_rate=0.002,
            late_file_rate=0.01,
            rif_correction=True,
        )

    @property
    def any(self) -> bool:
        return bool(
            self.duplicate_event_rate
            or self.resent_file_rate
            or self.unknown_badge_rate
            or self.bad_row_rate
            or self.vendor_column_from
            or self.truncated_file_rate
            or self.late_file_rate
            or self.rif_correction
        )


@dataclass(frozen=True)
class SimulatorConfig:
    """What to simulate and where to write it.

    Args:
        out: source root folder the files are written under.
        employees: headcount of `worker_type = employee` on `start` (hires,
            exits and contractors come on top / off it).
        start, end: first and last local day of badge events (inclusive);
            the HR snapshot of a full run is dated `end`.
        seed: everything is a pure function of the config, seed included.
        workers: processes writing event files (output does not depend on it).
        compresslevel: gzip level of the event files (output depends on it).
        quirks: messy-delivery rates (off by default).
        progress: write a progress bar to stderr.
    """

    out: Path
    employees: int = 300
    start: date = date(2023, 1, 2)
    end: date = date(2023, 6, 30)
    seed: int = 7
    workers: int = 1
    compresslevel: int = 6
    quirks: QuirkRates = field(default_factory=QuirkRates)
    progress: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}; swap them")
        if self.employees < 20:
            raise ValueError(
                f"employees={self.employees} is too small for an org tree; use 20 or more"
            )
        if not 0 <= self.compresslevel <= 9:
            raise ValueError(f"compresslevel={self.compresslevel} must be within 0..9")
