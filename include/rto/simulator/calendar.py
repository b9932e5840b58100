"""Static facts of the simulated company: sites, policy timeline, holidays,
layoff rounds and promotion cycles.

The company policy timeline here mirrors the dbt seed `rto_policies` (it is
what employees *perceive*; the warehouse reads the seed, not this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    city: str
    country: str
    timezone: str
    weight: float
    """Share of departments based here."""
    arrival_shift_min: int
    """Local habit: minutes added to the company-wide typical arrival time."""


# Three+ time zones: US DST (SEA, NYC), non-US DST (DUB), no DST (BLR).
SITES: tuple[Site, ...] = (
    Site("SEA", "Seattle Day 1", "Seattle", "US", "America/Los_Angeles", 0.40, 0),
    Site("NYC", "New York Hudson Yards", "New York", "US", "America/New_York", 0.20, 0),
    Site("DUB", "Dublin Charlemont", "Dublin", "IE", "Europe/Dublin", 0.15, 15),
    Site("BLR", "Bengaluru World Trade Center", "Bengaluru", "IN", "Asia/Kolkata", 0.25, 45),
)
SITE_IDS: tuple[str, ...] = tuple(s.site_id for s in SITES)
COUNTRIES: tuple[str, ...] = ("US", "IE", "IN")
SITE_COUNTRY_IDX = np.array([COUNTRIES.index(s.country) for s in SITES], dtype=np.int8)

DISCRETION_FROM = date(2021, 10, 11)
THREE_DAYS_FROM = date(2023, 5, 1)
THREE_DAYS_ANNOUNCED = date(2023, 2, 17)
GATE_FROM = date(2023, 11, 16)
FIVE_DAYS_ANNOUNCED = date(2024, 9, 16)
FIVE_DAYS_FROM = date(2025, 1, 2)


def company_requirement(day: date) -> int | None:
    """Days per week the company policy asks on `day`; None = director discretion."""
    if day >= FIVE_DAYS_FROM:
        return 5
    if day >= THREE_DAYS_FROM:
        return 3
    return None


@dataclass(frozen=True)
class RifRound:
    rif_round_id: str
    name: str
    announced_on: date
    separation_date: date
    share: float
    """Share of the in-scope employees (active on announced_on) notified."""
    scope: str
    """`company` or `communications` (the department named Communications)."""


# About 8% in total from late 2022 to spring 2023, and a small Communications
# round as the five-day rule began.
RIF_ROUNDS: tuple[RifRound, ...] = (
    RifRound(
        "RIF2022A",
        "Devices and services reduction",
        date(2022, 11, 16),
        date(2023, 1, 17),
        0.025,
        "company",
    ),
    RifRound(
        "RIF2023A",
        "Company-wide reduction (January)",
        date(2023, 1, 18),
        date(2023, 3, 20),
        0.045,
        "company",
    ),
    RifRound(
        "RIF2023B",
        "Company-wide reduction (March)",
        date(2023, 3, 20),
        date(2023, 5, 22),
        0.022,
        "company",
    ),
    RifRound(
        "RIF2025A",
        "Communications reorganisation",
        date(2025, 1, 7),
        date(2025, 3, 10),
        0.08,
        "communications",
    ),
)
RESCIND_SHARE = 0.04


@dataclass(frozen=True)
class PromotionCycle:
    cycle_id: str
    nominate_from: date
    nominate_to: date
    decide_from: date
    decide_to: date


def promotion_cycles(start: date, end: date) -> list[PromotionCycle]:
    """Two cycles a year (H1: nominate Mar-Apr, decide June; H2: nominate
    mid-Oct to November, decide in January) whose nominations fall in the range."""
    cycles = []
    for year in range(start.year - 1, end.year + 1):
        for cyc in (
            PromotionCycle(
                f"{year}H1",
                date(year, 3, 1),
                date(year, 4, 15),
                date(year, 6, 1),
                date(year, 6, 20),
            ),
            PromotionCycle(
                f"{year}H2",
                date(year, 10, 16),
                date(year, 11, 30),
                date(year + 1, 1, 12),
                date(year + 1, 2, 2),
            ),
        ):
            if cyc.nominate_to >= start and cyc.nominate_from <= end:
                cycles.append(cyc)
    return cycles


def daterange(start: date, end: date):
    """Days from start to end, both inclusive."""
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


@lru_cache(maxsize=8)
def holiday_rows(first_year: int, last_year: int) -> tuple[tuple[str, date, str], ...]:
    """(country, date, name) of public holidays, from the `holidays` package."""
    import holidays

    rows = []
    years = list(range(first_year, last_year + 1))
    for country in COUNTRIES:
        for day, name in sorted(holidays.country_holidays(country, years=years).items()):
            rows.append((country, day, name))
    return tuple(rows)


@lru_cache(maxsize=8)
def holiday_set(first_year: int, last_year: int) -> frozenset[tuple[int, int]]:
    """{(country index, day ordinal)} for fast lookups."""
    return frozenset(
        (COUNTRIES.index(c), d.toordinal()) for c, d, _ in holiday_rows(first_year, last_year)
    )
