"""Render event files, with the messy-delivery quirks of `QuirkRates`.

Every decision is drawn from streams keyed by (seed, day, site) - row-level
quirks from `SeedSequence([seed, 5, day, site])`, file-level ones (re-sent,
cut short, late) from `SeedSequence([seed, 6, day, site])` - so a quirk hits
the same rows whether the run is full, chunked, parallel or night by night.

Quirks (each counted in `Summary.quirks`):

- `duplicate_event_rows`: a row written twice in a row (same event_id).
- `resent_files` / `resent_rows`: the previous day's file of the same site
  sent again, appended to this day's file (the same event_ids again).
- `unknown_badge_rows`: extra DENIED swipes by ids no assignment knows
  (`B9xxxxxx`).
- `bad_row_timestamp`, `bad_row_columns`, `bad_row_encoding`: a row whose
  event_time does not parse (`2023-05-02 25:61:07` or `02/05/2023 08:14`),
  that has one column too many or too few, or that carries bytes that are
  not UTF-8. The row's event is lost to the warehouse (quarantined).
- `vendor_column_files`: from `vendor_column_from` on, one site's files have
  a trailing `door_name` column.
- `truncated_files`: the gzip stream cut short (the loader sees a read error
  after some rows).
- `late_files`: written under its own local day, but delivered
  `late_days` nights later in night-by-night mode.
- `rif_correction`: a corrected RIF delivery a week after an announcement.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from .calendar import SITES
from .encode import HEADER, site_day_table, table_csv_body
from .events import DIR_IN, N_LOBBY, READERS, RES_DENIED, DayGenerator, SiteDay
from .population import Population
from .writers import gzip_bytes

_DOORS = [
    pa.array(["Main Lobby"] * N_LOBBY + [f"Floor {k + 2}" for k in range(len(r) - N_LOBBY)])
    for r in READERS
]


class EventRenderer:
    """Turns a (day, site) into the bytes of its `.csv.gz` file."""

    def __init__(self, pop: Population, gen: DayGenerator):
        self.pop, self.gen = pop, gen
        self.q = pop.cfg.quirks
        self._day: tuple[date, list[SiteDay]] | None = None

    def site_day(self, day: date, site: int) -> SiteDay:
        if self._day is None or self._day[0] != day:
            self._day = (day, self.gen.day(day))
        return self._day[1][site]

    # --- file-level decisions -------------------------------------------------------
    def _file_draws(self, day: date, site: int) -> np.ndarray:
        rng = np.random.default_rng(
            np.random.SeedSequence([self.pop.cfg.seed, 6, day.toordinal(), site])
        )
        return rng.random(3)  # resent, truncated, late

    def is_resent(self, day: date, site: int) -> bool:
        return (
            bool(self.q.resent_file_rate)
            and self._file_draws(day, site)[0] < self.q.resent_file_rate
        )

    def is_truncated(self, day: date, site: int) -> bool:
        return (
            bool(self.q.truncated_file_rate)
            and self._file_draws(day, site)[1] < self.q.truncated_file_rate
        )

    def is_late(self, day: date, site: int) -> bool:
        return (
            bool(self.q.late_file_rate) and self._file_draws(day, site)[2] < self.q.late_file_rate
        )

    def has_vendor_column(self, day: date, site: int) -> bool:
        q = self.q
        return (
            q.vendor_column_from is not None
            and day >= q.vendor_column_from
            and SITES[site].site_id == q.vendor_column_site
        )

    # --- rows ---------------------------------------------------------------------------
    def _lines(self, day: date, site: int, vendor: bool, quirks: Counter) -> list[bytes]:
        """Data lines of a site-day with the row-level quirks applied."""
        q = self.q
        sd = self.site_day(day, site)
        n_badges = self.gen.n_badges
        rng = np.random.default_rng(
            np.random.SeedSequence([self.pop.cfg.seed, 5, day.toordinal(), site])
        )
        n = len(sd)
        k_unknown = rng.binomial(n, q.unknown_badge_rate) if q.unknown_badge_rate else 0
        if k_unknown:
            secs = rng.integers(6 * 3600, 22 * 3600, k_unknown).astype(np.int32)
            badge = n_badges + rng.integers(0, 1_000_000, k_unknown)
            reader = rng.integers(0, N_LOBBY, k_unknown).astype(np.int16)
            b = np.concatenate([sd.badge, badge])
            t = np.concatenate([sd.secs, secs])
            r = np.concatenate([sd.reader, reader])
            d = np.concatenate([sd.direction, np.full(k_unknown, DIR_IN, np.int8)])
            res = np.concatenate([sd.result, np.full(k_unknown, RES_DENIED, np.int8)])
            order = np.lexsort((res, d, r, b, t))
            sd = SiteDay(site, day, b[order], r[order], t[order], d[order], res[order])
            quirks["unknown_badge_rows"] += k_unknown
        table = site_day_table(sd, n_badges)
        if vendor:
            table = table.append_column("door_name", _DOORS[site].take(pa.array(sd.reader)))
        n = table.num_rows
        if q.duplicate_event_rate and n:
            dup = rng.random(n) < q.duplicate_event_rate
            if dup.any():
                idx = np.repeat(np.arange(n), np.where(dup, 2, 1))
                table = table.take(pa.array(idx))
                quirks["duplicate_event_rows"] += int(dup.sum())
        body = table_csv_body(table)
        lines = body.split(b"\n")[:-1] if body else []
        if q.bad_row_rate and lines:
            bad = np.flatnonzero(rng.random(len(lines)) < q.bad_row_rate)
            kinds = rng.integers(0, 3, len(bad))
            for j, kind in zip(bad, kinds, strict=True):
                fields = lines[j].split(b",")
                if kind == 0:
                    fields[4] = (
                        b"%s 25:61:07" % day.isoformat().encode()
                        if j % 2
                        else day.strftime("%d/%m/%Y 08:14").encode()
                    )
                    quirks["bad_row_timestamp"] += 1
                elif kind == 1:
                    fields = fields[:-1] if j % 2 else fields + [b"EXTRA"]
                    quirks["bad_row_columns"] += 1
                else:
                    fields[3] = fields[3][:4] + b"\xff\xfe" + fields[3][4:]
                    quirks["bad_row_encoding"] += 1
                lines[j] = b",".join(fields)
        return lines

    def render(self, day: date, site: int, quirks: Counter) -> tuple[bytes, int]:
        """gzip bytes and number of data lines of the file of (day, site)."""
        level = self.pop.cfg.compresslevel
        if not self.q.any:
            body = table_csv_body(site_day_table(self.site_day(day, site), self.gen.n_badges))
            return gzip_bytes(HEADER + body, level), body.count(b"\n")
        vendor = self.has_vendor_column(day, site)
        header = HEADER.rstrip(b"\n") + (b",door_name\n" if vendor else b"\n")
        lines = self._lines(day, site, vendor, quirks)
        if vendor:
            quirks["vendor_column_files"] += 1
        prev = day - timedelta(days=1)
        if prev >= self.pop.cfg.start and self.is_resent(prev, site):
            # the vendor sends yesterday's file again, inside today's
            again = self._lines(prev, site, vendor, Counter())
            lines = lines + again
            quirks["resent_files"] += 1
            quirks["resent_rows"] += len(again)
        data = gzip_bytes(header + b"".join(line + b"\n" for line in lines), level)
        if self.is_truncated(day, site):
            rng = np.random.default_rng(
                np.random.SeedSequence([self.pop.cfg.seed, 7, day.toordinal(), site])
            )
            data = data[: max(10, int(len(data) * rng.uniform(0.3, 0.9)))]
            quirks["truncated_files"] += 1
        if self.is_late(day, site):
            quirks["late_files"] += 1
        return data, len(lines)


def rif_correction_deliveries(pop: Population, deliveries: dict) -> dict:
    """A week after each announcement: the round with planned_reductions
    corrected (+2%) and 10% of its notices with a separation_date moved a
    week later. Separation dates in HR are not changed: the correction fixes
    a clerical error in the RIF file, the later final delivery restores it."""
    out = {}
    rng = np.random.default_rng(np.random.SeedSequence([pop.cfg.seed, 8]))
    for rnd in pop.rif_rounds:
        rounds, notices = deliveries.get(rnd.announced_on, ([], []))
        mine = [r for r in rounds if r[0] == rnd.rif_round_id]
        if not mine:
            continue
        day = rnd.announced_on + timedelta(days=7)
        r0 = mine[0]
        fixed_round = [(*r0[:4], int(round(r0[4] * 1.02)) + 1)]
        fixed = []
        for nt in notices:
            if nt[1] != rnd.rif_round_id:
                continue
            if rng.random() < 0.1:
                sep = date.fromisoformat(nt[4]) + timedelta(days=7)
                fixed.append((*nt[:4], sep.isoformat(), nt[5]))
        if day in deliveries or day in out:
            continue  # never overwrite another delivery of the same day
        out[day] = (fixed_round, fixed)
    return out
