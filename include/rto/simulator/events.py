"""Badge events, one local day at a time, vectorised over all people.

Two random streams make the output independent of how days are chunked:
`SeedSequence([seed, 3, monday])` draws the *week plan* (which weekdays each
person comes in) and `SeedSequence([seed, 4, day])` draws the day's swipes.

Week plan: a weekday is *available* to a person when it is not a public
holiday in their country, they are employed and not on leave. The weekly
requirement they perceive is the business rule's
`(sum of day requirements over available days + 4) // 5`, where a day's
requirement comes from their employee exception, else the nearest org-unit
exception, else the company policy (under director discretion: the nearest
team policy, default 0). Target days = natural + strength * max(0,
required - natural), at least `required` for compliers (strength >= 0.9);
one day less in a share 3% + (1 - strength) / 2 of the weeks (a sick kid, a
deadline: 3-8% of compliers' weeks, about half of resisters'); the
fractional part is a coin toss. The days are the target's top-ranked
available weekdays under Gumbel noise with Tue-Thu favoured. Weekends: 3%
of people come with 15% chance, the rest 0.3%; holidays 2%.

A day in the office: arrival ~ personal mean (8:45 +- 40 min, later in DUB
and BLR) +- 20 min; stay ~ personal mean (8.5 h +- 45 min) +- 40 min; an IN
swipe at a lobby reader (1% tailgating days without it), an OUT at departure
(2% forget), a lunch exit and return with personal probability (mean 38%),
Poisson(personal mean ~1) floor-door swipes with empty direction, each
swipe preceded by a DENIED misread with 0.5% chance; 2% of office days at
another site; remote people come to their country's site. Someone whose
badge was reissued in the last 60 days first tries the old one (DENIED) on
3% of their office days. Visitors: 2% of the day's attendance at a site,
VISITOR badges from the site's pool, one IN and one OUT. A person who forgot
their badge (see population.py) swipes the day's TEMP card. Night patrol:
guards (contractors) swipe a floor door once an hour from 0:00 to 6:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from .calendar import COUNTRIES, SITES, company_requirement, holiday_set
from .population import DAY_S, Population

N_LOBBY = 4
N_FLOOR = 8
READERS = [
    [f"{s.site_id}-L1-{k + 1:02d}" for k in range(N_LOBBY)]
    + [f"{s.site_id}-F{k + 2:02d}" for k in range(N_FLOOR)]
    for s in SITES
]
DIR_IN, DIR_OUT, DIR_NONE = 0, 1, 2
RES_GRANTED, RES_DENIED = 0, 1
WEEKDAY_W = np.log(np.array([0.8, 1.2, 1.25, 1.1, 0.65]))
# remote people's office by country: US -> SEA/NYC, IE -> DUB, IN -> BLR
_SITE_IDX = {s.site_id: k for k, s in enumerate(SITES)}
US_SITES = (_SITE_IDX["SEA"], _SITE_IDX["NYC"])
IE_SITE, IN_SITE = _SITE_IDX["DUB"], _SITE_IDX["BLR"]
assert COUNTRIES == ("US", "IE", "IN")


@dataclass
class SiteDay:
    """One site's events of one local day, sorted by time (columns as codes)."""

    site: int
    day: date
    badge: np.ndarray  # int64 badge index (>= number of badges: unknown badge)
    reader: np.ndarray  # int16 index into READERS[site]
    secs: np.ndarray  # int32 seconds after local midnight
    direction: np.ndarray  # int8
    result: np.ndarray  # int8

    def __len__(self) -> int:
        return len(self.secs)


class DayGenerator:
    """Generates `SiteDay`s; caches the current week's plan."""

    def __init__(self, pop: Population):
        self.pop = pop
        cfg = pop.cfg
        years = (cfg.start.year - 1, cfg.end.year + 1)
        self.holidays = holiday_set(*years)
        lv = pop.leave
        short = (lv["end"] - lv["start"]) < 14
        self._leave = []
        for mask in (short, ~short):
            idx = np.flatnonzero(mask)
            maxlen = int((lv["end"][idx] - lv["start"][idx]).max(initial=0)) + 1
            self._leave.append((lv["start"][idx], lv["end"][idx], lv["emp"][idx], maxlen))
        self._week: tuple[int, np.ndarray] | None = None
        self.n_badges = len(pop.badges["type"])

    # --- who is available and what do they owe -------------------------------------
    def on_leave(self, day: int) -> np.ndarray:
        mask = np.zeros(self.pop.size, dtype=bool)
        for start, end, emp, maxlen in self._leave:
            lo = np.searchsorted(start, day - maxlen + 1, "left")
            hi = np.searchsorted(start, day, "right")
            sel = end[lo:hi] >= day
            mask[emp[lo:hi][sel]] = True
        return mask

    def employed(self, day: int) -> np.ndarray:
        return (self.pop.hire <= day) & (day < self.pop.term)

    def holiday_by_country(self, day: int) -> np.ndarray:
        return np.array([(c, day) in self.holidays for c in range(len(COUNTRIES))])

    def requirement(self, day: int) -> np.ndarray:
        """Days per week each person is asked for on `day` (int8)."""
        pop, org = self.pop, self.pop.org
        n_units = len(org.ids)

        def resolve(unit, days, vfrom, vto) -> np.ndarray:
            val = np.full(n_units, -1, dtype=np.int8)
            ok = np.flatnonzero((vfrom <= day) & (day < vto))
            # newest valid_from wins, then the later row
            ok = ok[np.lexsort((ok, vfrom[ok]))]
            val[unit[ok]] = days[ok]
            for lvl in org.levels[1:]:
                own = val[lvl]
                val[lvl] = np.where(own >= 0, own, val[org.parent[lvl]])
            return val

        ex = pop.ou_exc
        eff_exc = resolve(ex["unit"], ex["days"], ex["valid_from"], ex["valid_to"])
        company = company_requirement(date.fromordinal(day))
        if company is None:
            tp = pop.team_policies
            eff_tp = resolve(tp["unit"], tp["days"], tp["valid_from"], tp["valid_to"])
            base = np.maximum(eff_tp, 0)
        else:
            base = np.full(n_units, company, dtype=np.int8)
        unit_req = np.where(eff_exc >= 0, eff_exc, base).astype(np.int8)
        req = unit_req[pop.team_on(day)]
        has_exc = (pop.exc_days >= 0) & (pop.exc_from <= day) & (day < pop.exc_to)
        return np.where(has_exc, pop.exc_days, req).astype(np.int8)

    def week_plan(self, monday: int) -> np.ndarray:
        """(people, 5) bool: which weekdays of the week each person comes in."""
        if self._week is not None and self._week[0] == monday:
            return self._week[1]
        pop = self.pop
        n = pop.size
        avail = np.zeros((n, 5), dtype=bool)
        req = np.zeros((n, 5), dtype=np.int16)
        for dow in range(5):
            day = monday + dow
            hol = self.holiday_by_country(day)[pop.country]
            avail[:, dow] = self.employed(day) & ~hol & ~self.on_leave(day)
            req[:, dow] = self.requirement(day)
        rng = np.random.default_rng(np.random.SeedSequence([pop.cfg.seed, 3, monday]))
        required = ((req * avail).sum(axis=1) + 4) // 5
        nat = pop.natural.astype(np.float64)
        strength = pop.strength.astype(np.float64)
        target = nat + strength * np.maximum(0.0, required - nat)
        # compliers (strength >= 0.9) aim for the rule itself
        target = np.where(strength >= 0.9, np.maximum(target, required), target)
        slip = rng.random(n) < 0.03 + 0.5 * (1 - strength)
        target = np.where(slip, target - 1, target)
        target = np.clip(target, 0, 5)
        whole = np.floor(target)
        k = whole + (rng.random(n) < (target - whole))
        score = WEEKDAY_W[None, :] + rng.gumbel(size=(n, 5))
        score[~avail] = -np.inf
        rank = np.argsort(np.argsort(-score, axis=1), axis=1)
        plan = (rank < k[:, None]) & avail
        self._week = (monday, plan)
        return plan

    # --- swipes -----------------------------------------------------------------------
    def day(self, day_date: date) -> list[SiteDay]:
        """Every site's events of local day `day_date`."""
        pop = self.pop
        day = day_date.toordinal()
        dow = day_date.weekday()
        n = pop.size
        rng = np.random.default_rng(np.random.SeedSequence([pop.cfg.seed, 4, day]))
        u_extra = rng.random(n)
        if dow < 5:
            hol = self.holiday_by_country(day)[pop.country]
            plan = self.week_plan(day - dow)[:, dow]
            present = np.where(
                hol, self.employed(day) & ~self.on_leave(day) & (u_extra < 0.02), plan
            )
        else:
            present = self.employed(day) & ~self.on_leave(day) & (u_extra < pop.weekend_p)
        who = np.flatnonzero(present)
        m = len(who)
        # site of the day
        site = pop.home_site[who].astype(np.int64)
        remote = site < 0
        if remote.any():
            r = who[remote]
            c = pop.country[r]
            site[remote] = np.where(
                c == 0,
                np.where(r % 2 == 0, US_SITES[0], US_SITES[1]),
                np.where(c == 1, IE_SITE, IN_SITE),
            )
        travel = rng.random(m) < 0.02
        other = (site + rng.integers(1, len(SITES), m)) % len(SITES)
        site = np.where(travel, other, site)
        arrive = pop.arrival_mu[who] + rng.normal(0, 1200, m)
        arrive = np.clip(arrive, 5 * 3600, 20 * 3600).astype(np.int64)
        leave = arrive + pop.duration_mu[who] + rng.normal(0, 2400, m)
        leave = np.clip(leave, arrive + 1800, 86_340).astype(np.int64)
        lobby = np.where(rng.random(m) < 0.8, pop.lobby_reader[who], rng.integers(0, N_LOBBY, m))
        tail_in = rng.random(m) < 0.01
        no_out = rng.random(m) < 0.02
        lunch = rng.random(m) < pop.lunch_p[who]
        l_out = (12 * 3600 + rng.normal(0, 2100, m)).astype(np.int64)
        lunch &= (l_out > arrive + 2700) & (l_out < leave - 4500)
        l_in = l_out + rng.integers(15 * 60, 75 * 60, m)
        n_floor = rng.poisson(pop.swipe_lam[who])
        f_who = np.repeat(np.arange(m), n_floor)
        f_secs = rng.integers(arrive[f_who], np.maximum(leave[f_who], arrive[f_who] + 1))
        f_reader = N_LOBBY + rng.integers(0, N_FLOOR, len(f_who))
        parts = [
            (np.flatnonzero(~tail_in), arrive[~tail_in], lobby[~tail_in], DIR_IN),
            (np.flatnonzero(~no_out), leave[~no_out], lobby[~no_out], DIR_OUT),
            (np.flatnonzero(lunch), l_out[lunch], lobby[lunch], DIR_OUT),
            (np.flatnonzero(lunch), l_in[lunch], lobby[lunch], DIR_IN),
            (f_who, f_secs, f_reader, DIR_NONE),
        ]
        e_who = np.concatenate([p[0] for p in parts])
        e_secs = np.concatenate([p[1] for p in parts]).astype(np.int64)
        e_reader = np.concatenate([p[2] for p in parts]).astype(np.int16)
        e_dir = np.concatenate([np.full(len(p[0]), p[3], np.int8) for p in parts])
        person = who[e_who]
        t_abs = day * DAY_S + e_secs
        e_badge = np.where(t_abs >= pop.reissue_t[person], pop.badge1[person], pop.badge0[person])
        tmp = pop.temp
        lo, hi = np.searchsorted(tmp["day"], day, "left"), np.searchsorted(tmp["day"], day, "right")
        if hi > lo:  # forgot their badge: the day's TEMP card
            card = np.full(n, -1, dtype=np.int64)
            card[tmp["emp"][lo:hi]] = tmp["badge"][lo:hi]
            e_badge = np.where(card[person] >= 0, card[person], e_badge)
        e_res = np.zeros(len(e_who), dtype=np.int8)
        e_site = site[e_who]
        # misreads: a DENIED a few seconds before the GRANTED swipe
        mis = np.flatnonzero(rng.random(len(e_who)) < 0.005)
        # the old, deactivated badge tried first after a reissue
        since = day * DAY_S - pop.reissue_t[who]
        old_try = np.flatnonzero((since > 0) & (since < 60 * DAY_S) & (rng.random(m) < 0.03))
        extra_badge = np.concatenate([e_badge[mis], pop.badge0[who[old_try]]])
        extra_secs = np.concatenate(
            [
                e_secs[mis] - rng.integers(3, 20, len(mis)),
                arrive[old_try] - rng.integers(5, 30, len(old_try)),
            ]
        )
        extra = dict(
            badge=extra_badge,
            secs=np.maximum(extra_secs, 0),
            reader=np.concatenate([e_reader[mis], lobby[old_try]]).astype(np.int16),
            dir=np.concatenate([e_dir[mis], np.full(len(old_try), DIR_IN, np.int8)]),
            site=np.concatenate([e_site[mis], site[old_try]]),
        )
        # night patrol: one floor-door swipe an hour from midnight to 6:00
        guards = np.flatnonzero(pop.guard & self.employed(day))
        g_who = np.repeat(guards, 6)
        g_secs = np.tile(np.arange(6) * 3600, len(guards)) + rng.integers(0, 3600, len(g_who))
        g_t = day * DAY_S + g_secs
        g_badge = np.where(g_t >= pop.reissue_t[g_who], pop.badge1[g_who], pop.badge0[g_who])
        badge = np.concatenate([e_badge, extra["badge"], g_badge])
        secs = np.concatenate([e_secs, extra["secs"], g_secs])
        reader = np.concatenate(
            [e_reader, extra["reader"], N_LOBBY + rng.integers(0, N_FLOOR, len(g_who))]
        ).astype(np.int16)
        direction = np.concatenate([e_dir, extra["dir"], np.full(len(g_who), DIR_NONE, np.int8)])
        result = np.concatenate(
            [
                e_res,
                np.full(len(extra["badge"]), RES_DENIED, np.int8),
                np.zeros(len(g_who), np.int8),
            ]
        )
        esite = np.concatenate([e_site, extra["site"], pop.home_site[g_who].astype(np.int64)])
        out = []
        for s in range(len(SITES)):
            sel = esite == s
            n_here = int(np.count_nonzero(site == s))
            visits = rng.poisson(0.02 * n_here if dow < 5 else 0.005 * n_here)
            pool = pop.visitor_badges[s]
            v_badge = pool[rng.integers(0, len(pool), visits)]
            v_in = rng.integers(int(8.5 * 3600), 16 * 3600, visits)
            v_out = np.minimum(v_in + rng.integers(30 * 60, 240 * 60, visits), 86_340)
            v_reader = rng.integers(0, N_LOBBY, visits)
            b = np.concatenate([badge[sel], v_badge, v_badge])
            t = np.concatenate([secs[sel], v_in, v_out]).astype(np.int32)
            r = np.concatenate([reader[sel], v_reader, v_reader]).astype(np.int16)
            d = np.concatenate(
                [
                    direction[sel],
                    np.full(visits, DIR_IN, np.int8),
                    np.full(visits, DIR_OUT, np.int8),
                ]
            )
            res = np.concatenate([result[sel], np.zeros(2 * visits, np.int8)])
            order = np.lexsort((res, d, r, b, t))
            out.append(SiteDay(s, day_date, b[order], r[order], t[order], d[order], res[order]))
        return out
