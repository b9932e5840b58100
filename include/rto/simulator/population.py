"""The simulated company: org tree, people, their careers, leave, exceptions,
team policies, promotions, layoffs and badges.

Everything here is built once per config from `SeedSequence([seed, 1])`, as
column arrays (NumPy), so 350,000 people cost seconds, not minutes. The
population is simulated for the whole period `[start, end]`; an HR snapshot
of night `n` (see `hr.py`) is a filter of it (rows known by `n`), which keeps
consecutive nightly snapshots consistent with each other and with a full run.

Behaviour model (numbers are per person unless said otherwise):

- Org tree: one `company` unit (CEO, level 12) > `vp_org` units (VPs, level
  10-11, the only people at 10+ besides the CEO) > `department` units
  (directors, level 8-9; department 0 is `Communications`) > `team` units
  (managers, level 6-8) with about 9 people each. Heads never leave, so the
  tree stays valid.
- Level pyramid of individual contributors: 4: 22%, 5: 36%, 6: 27%, 7: 11%,
  8: 4%. Tenure at `start` ~ 14 days + Exponential(3.5 years), capped at 25
  years; pre-start promotions ~ Poisson(tenure / 3 years).
- Remote: 2% of teams are fully remote (org-unit exception `remote_team`, 0
  days) and 7% of the other individual contributors are remote (80% of them
  with an employee exception `remote_approved`). Remote people have no home
  site; their country is their team's site country.
- Attitude: `natural` office days a week without a rule ~ 5 * Beta(1.2, 3.0)
  (mean 1.4), and a compliance `strength`: compliers (68%, 0.9-1.0), partial
  (22%, 0.35-0.8), resisters (10%, 0-0.3). Weekly target days =
  natural + strength * max(0, required - natural), at least the rule for
  compliers, minus a day in some weeks (see `events.py`).
- Exits, month by month (heads excluded): voluntary resignation 0.8%/month,
  multiplied by 1 + 3 * (1 - strength) in the 9 months after each mandate
  announcement (2023-02-17, 2024-09-16) - so resisters quit about 3.7 times
  as often -; retirement 0.12%/month after 15 years of tenure (else 0.01%);
  involuntary 0.15% (performance) and 0.08% (other).
- Hires: 0.9% of the starting headcount a month, 0.3% during the hiring
  freeze (Nov 2022 - Sep 2023), levels 4-6, on Mondays. Contractors: 4% of
  the headcount, contracts ending at 3%/month, replaced at the same rate.
- Transfers: 0.4% of individual contributors a month (70% within their
  department), at most one in the period.
- Layoffs: each round of `calendar.RIF_ROUNDS` announced in the period
  notifies its share of the in-scope active non-heads; 4% of notices are
  rescinded, the rest separate on the round's separation date
  (termination_reason `layoff`).
- Promotions: two cycles a year, 12% of eligible people (level <= 8, a year
  of tenure, no promotion in the previous 11 months) nominated, 60% promoted.
  From the gate (2023-11-16) people with strength < 0.6 are mostly only
  promoted with a VP approval (55% ask; 60% of those promoted; 6% of the
  others promoted anyway); 8% of approvals come from a director (level < 10)
  and 8% after decided_on - both invalid in the warehouse.
- Leave: vacation (2.5 spans/year, 1-14 days), sick (1.5/year, 1-3 days),
  parental (1.2%/year, 90-150 days), medical (0.8%/year, 14-60 days).
- Badges: one EMPLOYEE (or CONTRACTOR) badge from the hire date to the
  termination date; 2.5%/year lose it (deactivated one evening, a new badge
  valid from the same second); a pool of VISITOR badges per site.
- Forgotten badges: 1.5 days a year a person on site gets a TEMP card of
  their home site for the day (assignment 00:00 to 24:00); the card is
  reused on other days, so one TEMP badge_id has many assignment rows.
  Their swipes that day are TEMP swipes, which do not count as presence.
- Night patrol: two contractors per site swipe a floor door once an hour
  between midnight and 6:00 local time, every day, so some events fall into
  the spring-forward gap and the fall-back overlap of SEA, NYC and DUB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from .calendar import (
    COUNTRIES,
    DISCRETION_FROM,
    FIVE_DAYS_ANNOUNCED,
    GATE_FROM,
    RESCIND_SHARE,
    RIF_ROUNDS,
    SITE_COUNTRY_IDX,
    SITES,
    THREE_DAYS_ANNOUNCED,
    THREE_DAYS_FROM,
    RifRound,
    promotion_cycles,
)
from .config import SimulatorConfig

NEVER = np.int32(date(9999, 12, 31).toordinal())
DAY_S = 86_400

KIND_NAMES = ("company", "vp_org", "department", "team")
ROLE_IC, ROLE_MANAGER, ROLE_DIRECTOR, ROLE_VP, ROLE_CEO = 0, 1, 2, 3, 4
REASONS = (
    "voluntary_resignation",
    "retirement",
    "involuntary_performance",
    "involuntary_other",
    "layoff",
)
R_VOL, R_RET, R_PERF, R_OTHER, R_LAYOFF = range(5)
EVENT_ORDER = {"hire": 0, "transfer": 1, "promotion": 2, "termination": 3}
EVENT_NAMES = ("hire", "transfer", "promotion", "termination")
LEAVE_TYPES = ("vacation", "sick", "parental", "medical")
FAMILIES = (
    "Software Development",
    "Product Management",
    "Operations",
    "Sales",
    "Finance",
    "Human Resources",
    "Design",
    "Legal",
    "Communications",
    "Management",
)
FAMILY_P = np.array([0.45, 0.10, 0.15, 0.10, 0.07, 0.05, 0.05, 0.03, 0.0, 0.0])
VP_AREAS = (
    "Stores",
    "Devices",
    "Cloud",
    "Advertising",
    "Operations",
    "Finance",
    "People",
    "Corporate Affairs",
    "Entertainment",
    "Health",
)
DEPT_NAMES = (
    "Communications",
    "Retail Systems",
    "Payments",
    "Fulfillment Tech",
    "Search",
    "Alexa Skills",
    "Storage",
    "Compute",
    "Databases",
    "Ads Measurement",
    "Logistics",
    "Tax",
    "Talent Acquisition",
    "Security",
    "Marketplace",
    "Pricing",
    "Video",
    "Music",
    "Pharmacy",
    "Robotics",
    "Analytics",
    "Legal Affairs",
    "Procurement",
    "Customer Service Tech",
)
FIRST = (
    "Ava",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Arjun",
    "Priya",
    "Sean",
    "Aoife",
    "Mei",
    "Carlos",
    "Sofia",
    "Omar",
    "Fatima",
    "Lukas",
    "Hana",
    "Ravi",
    "Ananya",
    "Conor",
    "Niamh",
    "James",
    "Grace",
    "Wei",
    "Yuki",
    "David",
    "Sarah",
    "Kwame",
    "Amara",
    "Mateo",
    "Lucia",
    "Ibrahim",
    "Zara",
    "Ethan",
    "Chloe",
    "Vikram",
    "Deepa",
)
LAST = (
    "Smith",
    "Johnson",
    "Patel",
    "Murphy",
    "Kelly",
    "Garcia",
    "Nguyen",
    "Kim",
    "Chen",
    "Sharma",
    "Iyer",
    "O'Brien",
    "Walsh",
    "Brown",
    "Williams",
    "Lopez",
    "Singh",
    "Rao",
    "Byrne",
    "Ryan",
    "Martin",
    "Lee",
    "Khan",
    "Ali",
    "Rossi",
    "Müller",
    "Dubois",
    "Tanaka",
    "Okafor",
    "Mensah",
    "Silva",
    "Costa",
    "Reddy",
    "Menon",
)


@dataclass
class OrgUnits:
    ids: list[str]
    names: list[str]
    parent: np.ndarray  # int32, -1 for the root
    kind: np.ndarray  # int8 index into KIND_NAMES
    head: np.ndarray  # int32 person index
    site: np.ndarray  # int8 site index (teams and departments)
    vp: np.ndarray  # int32 vp_org unit of a unit (itself for vp_orgs, -1 for root)
    dept: np.ndarray  # int32 department unit of a unit (-1 above departments)
    levels: list[np.ndarray]  # unit indices per depth, root first


@dataclass
class Population:
    """Column arrays, one row per person (index i -> employee id E{i+1:06d})."""

    cfg: SimulatorConfig
    org: OrgUnits
    emp_ids: list[str]
    full_name: list[str]
    worker_type: np.ndarray  # int8: 0 employee, 1 contractor
    role: np.ndarray
    hire: np.ndarray  # int32 ordinal
    term: np.ndarray  # int32 ordinal, NEVER when still employed
    term_reason: np.ndarray  # int8 index into REASONS, -1
    home_site: np.ndarray  # int8, -1 remote
    country: np.ndarray  # int8 index into COUNTRIES
    family: np.ndarray  # int8 index into FAMILIES
    team0: np.ndarray  # int32 unit before the transfer
    transfer_day: np.ndarray  # int32 ordinal, NEVER
    team1: np.ndarray  # int32 unit after the transfer
    natural: np.ndarray  # float32 office days/week without a rule
    strength: np.ndarray  # float32 0..1 how much of the rule they follow
    arrival_mu: np.ndarray  # int32 seconds after midnight
    duration_mu: np.ndarray  # int32 seconds
    lunch_p: np.ndarray  # float32
    swipe_lam: np.ndarray  # float32 extra floor-door swipes a day
    weekend_p: np.ndarray  # float32
    lobby_reader: np.ndarray  # int8 preferred lobby reader
    guard: np.ndarray  # bool: contractor on the night patrol of their site
    # badges: person -> badge index before/after a reissue
    badge0: np.ndarray
    badge1: np.ndarray
    reissue_t: np.ndarray  # int64 ordinal*86400+seconds, large when none
    # one employee exception per person at most
    exc_days: np.ndarray  # int8, -1 none
    exc_from: np.ndarray
    exc_to: np.ndarray
    # tables (column dicts of arrays / lists)
    job_history: dict = field(default_factory=dict)
    leave: dict = field(default_factory=dict)
    exceptions: dict = field(default_factory=dict)
    team_policies: dict = field(default_factory=dict)
    nominations: dict = field(default_factory=dict)
    approvals: dict = field(default_factory=dict)
    badges: dict = field(default_factory=dict)
    rif_rounds: list = field(default_factory=list)
    rif_notices: dict = field(default_factory=dict)
    visitor_badges: list = field(default_factory=list)  # per site: array of badge idx
    temp: dict = field(default_factory=dict)  # TEMP card assignments: emp, day, badge
    ou_exc: dict = field(default_factory=dict)
    leave_maxlen: int = 0

    @property
    def size(self) -> int:
        return len(self.emp_ids)

    def team_on(self, day: int) -> np.ndarray:
        return np.where(day >= self.transfer_day, self.team1, self.team0)


def _weekday_on_or_after(day: np.ndarray, weekday: int = 0) -> np.ndarray:
    """Ordinals moved forward to the next `weekday` (0 = Monday)."""
    dow = (day - 1) % 7  # date.fromordinal(1) is a Monday
    return day + (weekday - dow) % 7


def _to_weekday(day: np.ndarray) -> np.ndarray:
    """Ordinals moved forward off Saturday/Sunday."""
    dow = (day - 1) % 7
    return day + np.where(dow == 5, 2, np.where(dow == 6, 1, 0))


def _pick(rng: np.random.Generator, p, n: int) -> np.ndarray:
    return rng.choice(len(p), size=n, p=np.asarray(p) / np.sum(p))


def _build_org(rng: np.random.Generator, n: int) -> tuple[OrgUnits, int, int, int]:
    teams = max(2, round(n / 9))
    depts = max(2, round(teams / 8))
    vps = max(2, round(depts / 8))
    total = 1 + vps + depts + teams
    width = max(3, len(str(total)))
    ids = [f"OU{k + 1:0{width}d}" for k in range(total)]
    kind = np.empty(total, dtype=np.int8)
    parent = np.full(total, -1, dtype=np.int32)
    v0, d0, t0 = 1, 1 + vps, 1 + vps + depts
    kind[0], kind[v0:d0], kind[d0:t0], kind[t0:] = 0, 1, 2, 3
    parent[v0:d0] = 0
    parent[d0:t0] = v0 + rng.permutation(np.arange(depts) % vps)
    parent[t0:] = d0 + rng.permutation(np.arange(teams) % depts)
    site_w = np.array([s.weight for s in SITES])
    site = np.zeros(total, dtype=np.int8)
    site[d0:t0] = _pick(rng, site_w, depts)
    own = _pick(rng, site_w, teams)
    site[t0:] = np.where(rng.random(teams) < 0.8, site[parent[t0:]], own)
    names = ["Example Corp"]
    names += [
        f"{VP_AREAS[k % len(VP_AREAS)]}"
        + (f" {k // len(VP_AREAS) + 1}" if k >= len(VP_AREAS) else "")
        for k in range(vps)
    ]
    names += [
        f"{DEPT_NAMES[k % len(DEPT_NAMES)]}"
        + (f" {k // len(DEPT_NAMES) + 1}" if k >= len(DEPT_NAMES) else "")
        for k in range(depts)
    ]
    team_no = np.zeros(total, dtype=np.int64)
    for u in range(t0, total):  # teams numbered within their department
        team_no[parent[u]] += 1
        names.append(f"{names[parent[u]]} - Team {team_no[parent[u]]}")
    vp = np.full(total, -1, dtype=np.int32)
    vp[v0:d0] = np.arange(v0, d0)
    vp[d0:t0] = parent[d0:t0]
    vp[t0:] = parent[parent[t0:]]
    dept = np.full(total, -1, dtype=np.int32)
    dept[d0:t0] = np.arange(d0, t0)
    dept[t0:] = parent[t0:]
    org = OrgUnits(
        ids=ids,
        names=names,
        parent=parent,
        kind=kind,
        head=np.zeros(total, dtype=np.int32),
        site=site,
        vp=vp,
        dept=dept,
        levels=[np.arange(0, 1), np.arange(v0, d0), np.arange(d0, t0), np.arange(t0, total)],
    )
    return org, vps, depts, teams


def _traits(rng: np.random.Generator, n: int, role: np.ndarray, remote: np.ndarray) -> dict:
    kind = _pick(rng, [0.68, 0.22, 0.10], n)
    strength = np.where(
        kind == 0,
        rng.uniform(0.9, 1.0, n),
        np.where(kind == 1, rng.uniform(0.35, 0.8, n), rng.uniform(0.0, 0.3, n)),
    )
    strength = np.where(role > ROLE_IC, np.maximum(strength, rng.uniform(0.85, 1.0, n)), strength)
    natural = 5 * rng.beta(1.2, 3.0, n)
    natural = np.where(remote, 0.05, natural)
    strength = np.where(remote, rng.uniform(0.0, 0.2, n), strength)
    return dict(
        natural=natural.astype(np.float32),
        strength=strength.astype(np.float32),
        arrival_mu=np.clip(rng.normal(8.75 * 3600, 40 * 60, n), 6.5 * 3600, 11 * 3600),
        duration_mu=np.clip(rng.normal(8.5 * 3600, 45 * 60, n), 5 * 3600, 11 * 3600),
        lunch_p=rng.beta(1.5, 2.5, n).astype(np.float32),
        swipe_lam=rng.gamma(2.0, 0.5, n).astype(np.float32),
        weekend_p=np.where(rng.random(n) < 0.03, 0.15, 0.003).astype(np.float32),
        lobby_reader=rng.integers(0, 4, n).astype(np.int8),
    )


def build_population(cfg: SimulatorConfig) -> Population:
    """Simulate the company over [cfg.start, cfg.end]; see the module docstring."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    start, end = cfg.start.toordinal(), cfg.end.toordinal()
    n = cfg.employees
    org, vps, depts, teams = _build_org(rng, n)
    v0, d0, t0 = 1, 1 + vps, 1 + vps + depts
    n_units = len(org.ids)

    # --- people at start: heads first, then individual contributors -------------
    heads = n_units  # one head per unit
    n_ic = max(0, n - heads)
    role = np.concatenate(
        [
            [ROLE_CEO],
            np.full(vps, ROLE_VP),
            np.full(depts, ROLE_DIRECTOR),
            np.full(teams, ROLE_MANAGER),
            np.full(n_ic, ROLE_IC),
        ]
    ).astype(np.int8)
    unit_of_head = np.arange(n_units, dtype=np.int32)
    team_w = rng.gamma(4.0, 1.0, teams)
    ic_team = t0 + _pick(rng, team_w, n_ic)
    home_unit = np.concatenate([unit_of_head, ic_team]).astype(np.int32)
    org.head[:] = unit_of_head  # person k heads unit k
    level = np.empty(len(role), dtype=np.int8)
    level[0] = 12
    level[v0:d0] = np.where(rng.random(vps) < 0.8, 10, 11)
    level[d0:t0] = np.where(rng.random(depts) < 0.7, 8, 9)
    level[t0:n_units] = 6 + _pick(rng, [0.45, 0.45, 0.10], teams)
    level[n_units:] = 4 + _pick(rng, [0.22, 0.36, 0.27, 0.11, 0.04], n_ic)
    # contractors on top of the headcount
    n_con = max(2, round(0.04 * n))
    team_units = np.arange(t0, n_units)
    con_team = rng.choice(team_units, n_con)
    worker_type = np.concatenate([np.zeros(len(role)), np.ones(n_con)]).astype(np.int8)
    role = np.concatenate([role, np.full(n_con, ROLE_IC, dtype=np.int8)])
    home_unit = np.concatenate([home_unit, con_team]).astype(np.int32)
    level = np.concatenate([level, 4 + rng.integers(0, 3, n_con)]).astype(np.int8)
    p0 = len(role)
    tenure = np.minimum(14 + rng.exponential(3.5 * 365, p0), 25 * 365).astype(np.int32)
    tenure = np.where(role > ROLE_IC, tenure + 3 * 365, tenure)
    tenure = np.where(worker_type == 1, (14 + rng.exponential(365, p0)).astype(np.int32), tenure)
    hire = (start - tenure).astype(np.int32)

    # --- hires during the period (employees and contractor replacements) --------
    new_hire_days: list[np.ndarray] = []
    first_month = date(cfg.start.year, cfg.start.month, 1)
    month = first_month
    months: list[tuple[int, int]] = []
    while month <= cfg.end:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        a, b = max(month.toordinal(), start), min(nxt.toordinal() - 1, end)
        months.append((a, b))
        freeze = date(2022, 11, 1) <= month <= date(2023, 9, 30)
        frac = (b - a + 1) / ((nxt - month).days)
        k = rng.poisson((0.003 if freeze else 0.009) * n * frac)
        days = _weekday_on_or_after(rng.integers(a, b + 1, k).astype(np.int32))
        new_hire_days.append(days[days <= end])
        month = nxt
    h_days = np.sort(np.concatenate(new_hire_days)) if new_hire_days else np.zeros(0, np.int32)
    nh = len(h_days)
    non_remote_teams = team_units  # refined below, after remote teams are chosen
    h_team = rng.choice(non_remote_teams, nh)
    h_level = (4 + _pick(rng, [0.45, 0.4, 0.15], nh)).astype(np.int8)
    # contractor replacements: same count as contract ends, approximated by rate
    c_days = []
    for a, b in months:
        k = rng.poisson(0.03 * n_con * (b - a + 1) / 30.4)
        c_days.append(_weekday_on_or_after(rng.integers(a, b + 1, k).astype(np.int32)))
    c_days = np.sort(np.concatenate(c_days)) if c_days else np.zeros(0, np.int32)
    c_days = c_days[c_days <= end]
    nc = len(c_days)
    worker_type = np.concatenate([worker_type, np.zeros(nh, np.int8), np.ones(nc, np.int8)])
    role = np.concatenate([role, np.zeros(nh + nc, np.int8)])
    home_unit = np.concatenate([home_unit, h_team, rng.choice(team_units, nc)]).astype(np.int32)
    level = np.concatenate([level, h_level, 4 + rng.integers(0, 3, nc)]).astype(np.int8)
    hire = np.concatenate([hire, h_days, c_days]).astype(np.int32)
    P = len(role)
    hire_level_now = level.copy()  # level at start (or at hire for new hires)

    # --- remote --------------------------------------------------------------------
    n_remote_teams = max(1, round(0.02 * teams)) if teams >= 20 else 0
    remote_teams = rng.choice(team_units, n_remote_teams, replace=False) if n_remote_teams else []
    is_remote_team = np.zeros(n_units, dtype=bool)
    is_remote_team[remote_teams] = True
    remote = is_remote_team[home_unit] & (role <= ROLE_MANAGER)
    indiv_remote = (role == ROLE_IC) & (worker_type == 0) & (rng.random(P) < 0.07) & ~remote
    remote |= indiv_remote
    unit_site = org.site[home_unit]
    home_site = np.where(remote, -1, unit_site).astype(np.int8)
    country = SITE_COUNTRY_IDX[unit_site].astype(np.int8)

    # --- traits -----------------------------------------------------------------------
    tr = _traits(rng, P, role, remote)
    tr["natural"] = np.where(worker_type == 1, rng.uniform(2.5, 4.5, P), tr["natural"])
    # two contractors per site patrol at night (floor doors every hour from
    # midnight to 6:00), which puts events into the DST gap and overlap
    guard = np.zeros(P, dtype=bool)
    initial_con = np.flatnonzero(worker_type[:p0] == 1)
    for s in range(len(SITES)):
        here = initial_con[(home_site[initial_con] == s)]
        guard[here[:2]] = True
    tr["natural"] = np.where(guard, 0.0, tr["natural"]).astype(np.float32)
    tr["strength"] = np.where(worker_type == 1, 0.0, tr["strength"]).astype(np.float32)
    shift = np.array([s.arrival_shift_min * 60 for s in SITES])[unit_site]
    arrival_mu = (tr["arrival_mu"] + shift).astype(np.int32)

    family = _pick(rng, FAMILY_P, P).astype(np.int8)
    family = np.where(org.dept[home_unit] == d0, FAMILIES.index("Communications"), family)
    family = np.where(role > ROLE_IC, FAMILIES.index("Management"), family).astype(np.int8)

    # --- transfers ----------------------------------------------------------------------
    transfer_day = np.full(P, NEVER, dtype=np.int32)
    team1 = home_unit.copy()
    can_move = (role == ROLE_IC) & (worker_type == 0) & ~remote
    months_n = len(months)
    p_move = 1 - (1 - 0.004) ** months_n
    movers = np.flatnonzero(can_move & (rng.random(P) < p_move))
    lo = np.maximum(hire[movers] + 30, start)
    ok = lo <= end
    movers, lo = movers[ok], lo[ok]
    transfer_day[movers] = _to_weekday(rng.integers(lo, end + 1)).astype(np.int32)
    transfer_day[transfer_day > end] = NEVER
    movers = movers[transfer_day[movers] <= end]
    same = rng.random(len(movers)) < 0.7
    other_team = rng.choice(np.flatnonzero(~is_remote_team[t0:]) + t0, len(movers))
    # a team in the same department: pick random then replace by a sibling when possible
    dept_teams = {d: np.flatnonzero(org.parent[t0:] == d) + t0 for d in range(d0, t0)}
    for j, i in enumerate(movers):
        if same[j]:
            sib = dept_teams[org.parent[home_unit[i]]]
            sib = sib[sib != home_unit[i]]
            if len(sib):
                other_team[j] = sib[rng.integers(len(sib))]
    team1[movers] = other_team
    team1 = np.where(team1 == home_unit, home_unit, team1).astype(np.int32)

    # --- exits month by month -----------------------------------------------------------------
    term = np.full(P, NEVER, dtype=np.int32)
    reason = np.full(P, -1, dtype=np.int8)
    protected = np.zeros(P, dtype=bool)  # notified in a RIF: no other exit until separation
    strength = tr["strength"]
    years = (start - hire) / 365.25
    rounds = [r for r in RIF_ROUNDS if start <= r.announced_on.toordinal() <= end]
    notices: list[tuple] = []
    rif_rows: list[RifRound] = []
    for a, b in months:
        frac = (b - a + 1) / 30.4
        for rnd in rounds:
            ann = rnd.announced_on.toordinal()
            if not a <= ann <= b:
                continue
            scope_ok = np.ones(P, dtype=bool)
            if rnd.scope == "communications":
                scope_ok = org.dept[np.where(ann >= transfer_day, team1, home_unit)] == d0
            cand = np.flatnonzero(
                (worker_type == 0) & (role == ROLE_IC) & (hire <= ann) & (term > ann) & scope_ok
            )
            k = int(round(rnd.share * len(cand)))
            chosen = np.sort(rng.choice(cand, k, replace=False)) if k else np.zeros(0, int)
            resc = rng.random(len(chosen)) < RESCIND_SHARE
            sep = rnd.separation_date.toordinal()
            for i, r in zip(chosen, resc, strict=True):
                notices.append((rnd.rif_round_id, int(i), ann, sep, bool(r)))
                if not r:
                    term[i] = sep
                    reason[i] = R_LAYOFF
                    protected[i] = True
            rif_rows.append(rnd)
        alive = (hire <= a) & (term > a) & (role == ROLE_IC) & ~protected
        mid = date.fromordinal((a + b) // 2)
        mult = np.ones(P)
        for ann_day in (THREE_DAYS_ANNOUNCED, FIVE_DAYS_ANNOUNCED):
            if ann_day <= mid < ann_day + timedelta(days=270):
                mult = 1 + 3.0 * (1 - strength)
        ten = years + (a - start) / 365.25
        p_vol = 0.008 * mult * frac
        p_ret = np.where(ten >= 15, 0.0012, 0.0001) * frac
        p_perf = np.full(P, 0.0015 * frac)
        p_oth = np.full(P, 0.0008 * frac)
        is_con = worker_type == 1
        p_vol = np.where(is_con, 0, p_vol)
        p_ret = np.where(is_con, 0, p_ret)
        p_perf = np.where(is_con, 0, p_perf)
        p_oth = np.where(is_con, 0.03 * frac, p_oth)
        u = rng.random(P)
        c1, c2, c3 = p_vol, p_vol + p_ret, p_vol + p_ret + p_perf
        c4 = c3 + p_oth
        rsn = np.where(u < c1, R_VOL, np.where(u < c2, R_RET, np.where(u < c3, R_PERF, R_OTHER)))
        leaving = alive & (u < c4)
        day = _to_weekday(rng.integers(a, b + 1, P).astype(np.int32))
        leaving &= (day > hire) & (day <= end) & (day < term)
        term = np.where(leaving, day, term).astype(np.int32)
        reason = np.where(leaving, rsn, reason).astype(np.int8)
    # a transfer after the exit did not happen
    gone_first = transfer_day >= term
    transfer_day[gone_first] = NEVER
    team1[gone_first] = home_unit[gone_first]

    # --- pre-start promotions -------------------------------------------------------------------
    old = hire < start
    k_pre = np.where(old, np.minimum(level - 4, rng.poisson(np.maximum(years, 0) / 3)), 0)
    k_pre = np.where(role >= ROLE_VP, np.minimum(k_pre, 2), np.maximum(k_pre, 0)).astype(np.int64)
    hire_level = (level - k_pre).astype(np.int8)
    pre_emp = np.repeat(np.arange(P), k_pre)
    pre_day = rng.integers(hire[pre_emp] + 1, np.maximum(hire[pre_emp] + 2, start))
    pre_day = _to_weekday(pre_day.astype(np.int32))
    pre_day = np.minimum(pre_day, start - 1)

    # --- promotion cycles in the period ----------------------------------------------------------
    def team_on(d: np.ndarray) -> np.ndarray:
        return np.where(d >= transfer_day, team1, home_unit)

    cur_level = hire_level_now.astype(np.int16).copy()
    last_promo = np.full(P, -(10**6), dtype=np.int64)
    nom_cols: dict[str, list] = {
        k: [] for k in ("cycle", "emp", "from_level", "nominated_on", "decided_on", "outcome")
    }
    appr_cols: dict[str, list] = {k: [] for k in ("nom", "approver", "approved_on")}
    promo_emp, promo_day = [], []
    nom_seq = 0
    for cyc in promotion_cycles(cfg.start, cfg.end):
        nf, nt = cyc.nominate_from.toordinal(), cyc.nominate_to.toordinal()
        df, dt = cyc.decide_from.toordinal(), cyc.decide_to.toordinal()
        elig = (
            (worker_type == 0)
            & (role <= ROLE_MANAGER)
            & (cur_level <= 8)
            & (hire <= nf - 365)
            & (term > nf)
            & (last_promo < nf - 330)
        )
        idx = np.flatnonzero(elig & (rng.random(P) < 0.12))
        nom_on = _to_weekday(rng.integers(nf, nt + 1, len(idx)).astype(np.int32))
        dec_on = _to_weekday(rng.integers(df, dt + 1, len(idx)).astype(np.int32))
        keep = (nom_on < term[idx]) & (nom_on >= start) & (nom_on <= end)
        idx, nom_on, dec_on = idx[keep], nom_on[keep], dec_on[keep]
        gated = nom_on >= GATE_FROM.toordinal()
        weak = strength[idx] < 0.6
        asks = gated & weak & (rng.random(len(idx)) < 0.55)
        p_prom = np.where(gated & weak, np.where(asks, 0.6, 0.06), 0.6)
        promoted = (rng.random(len(idx)) < p_prom) & (dec_on < term[idx])
        for j, i in enumerate(idx):
            nom_seq += 1
            nom_cols["cycle"].append(cyc.cycle_id)
            nom_cols["emp"].append(int(i))
            nom_cols["from_level"].append(int(cur_level[i]))
            nom_cols["nominated_on"].append(int(nom_on[j]))
            nom_cols["decided_on"].append(int(dec_on[j]))
            nom_cols["outcome"].append("promoted" if promoted[j] else "not_promoted")
            if asks[j]:
                u = rng.random()
                unit = int(home_unit[i] if nom_on[j] < transfer_day[i] else team1[i])
                approver = int(org.head[org.vp[unit]])
                span = max(1, int(dec_on[j] - nom_on[j]))
                when = int(nom_on[j]) + 1 + int(rng.integers(0, span))
                if u < 0.08:
                    approver = int(org.head[org.dept[unit]])
                elif u < 0.16:
                    when = int(dec_on[j]) + 1 + int(rng.integers(0, 20))
                appr_cols["nom"].append(nom_seq - 1)
                appr_cols["approver"].append(approver)
                appr_cols["approved_on"].append(min(when, int(dec_on[j]) + 30))
        pr = idx[promoted]
        cur_level[pr] += 1
        last_promo[pr] = dec_on[promoted]
        promo_emp.append(pr)
        promo_day.append(dec_on[promoted])
    promo_emp = np.concatenate(promo_emp) if promo_emp else np.zeros(0, np.int64)
    promo_day = np.concatenate(promo_day) if promo_day else np.zeros(0, np.int32)

    # --- job history
    ar = np.arange(P)
    moved = np.flatnonzero(transfer_day != NEVER)
    left = np.flatnonzero(term != NEVER)
    jh_emp = np.concatenate([ar, pre_emp, promo_emp, moved, left])
    jh_day = np.concatenate([hire, pre_day, promo_day, transfer_day[moved], term[left]])
    jh_evt = np.concatenate(
        [
            np.full(P, 0),
            np.full(len(pre_emp), 2),
            np.full(len(promo_emp), 2),
            np.full(len(moved), 1),
            np.full(len(left), 3),
        ]
    ).astype(np.int8)
    # same day: hire, promotion, transfer, termination (a decided promotion keeps its date)
    same_day_rank = np.array([0, 2, 1, 3], dtype=np.int8)[jh_evt]
    order = np.lexsort((same_day_rank, jh_day, jh_emp))
    jh_emp, jh_day, jh_evt = jh_emp[order], jh_day[order], jh_evt[order]
    first = np.r_[True, jh_emp[1:] != jh_emp[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(jh_emp)), 0))
    # "the newest row with effective_date <= day" must be unambiguous: one row per
    # person and day, later rows pushed forward by the fewest days
    pos = np.arange(len(jh_emp)) - group_start
    shifted = jh_day.astype(np.int64) - pos
    # running max within each person's rows (rows of a person are contiguous)
    offset = np.int64(1) << np.int64(40)
    keyed = np.maximum.accumulate(jh_emp.astype(np.int64) * offset + (shifted + (1 << 30)))
    run_max = keyed - jh_emp.astype(np.int64) * offset - (1 << 30)
    jh_day = (run_max + pos).astype(np.int32)
    moved_rows = jh_evt == 1
    transfer_day[jh_emp[moved_rows]] = jh_day[moved_rows]
    left_rows = jh_evt == 3
    term[jh_emp[left_rows]] = jh_day[left_rows]
    promo_step = (jh_evt == 2).astype(np.int16)
    csum = np.cumsum(promo_step)
    before = csum[group_start] - promo_step[group_start]
    jh_level = hire_level[jh_emp] + (csum - before)
    jh_unit = np.where(jh_day >= transfer_day[jh_emp], team1[jh_emp], home_unit[jh_emp])
    jh_unit = np.where(
        jh_evt == 3,
        np.where(jh_day - 1 >= transfer_day[jh_emp], team1[jh_emp], home_unit[jh_emp]),
        jh_unit,
    )
    # the manager is the unit's head, or the parent unit's head for the head itself
    mgr = org.head[jh_unit]
    up = org.head[np.maximum(org.parent[jh_unit], 0)]
    mgr = np.where(mgr == jh_emp, np.where(org.parent[jh_unit] >= 0, up, -1), mgr)
    job_history = dict(
        emp=jh_emp,
        day=jh_day.astype(np.int32),
        level=jh_level.astype(np.int16),
        family=family[jh_emp],
        unit=jh_unit,
        manager=mgr,
        event=jh_evt,
    )

    # --- leave
    emp_mask = worker_type == 0
    lo_day = np.maximum(hire, start - 30)
    hi_day = np.minimum(term - 1, end + 60)
    span_years = np.maximum(hi_day - lo_day + 1, 0) / 365.25
    specs = [  # (type, spans/year, min len, max len, min lead, max lead)
        (0, 2.5, 1, 14, 7, 60),
        (1, 1.5, 1, 3, 0, 0),
        (2, 0.012, 90, 150, 30, 90),
        (3, 0.008, 14, 60, 0, 14),
    ]
    lv_emp, lv_start, lv_end, lv_type, lv_known = [], [], [], [], []
    for t, rate, mn, mx, l0, l1 in specs:
        cnt = np.where(emp_mask, rng.poisson(rate * span_years), 0)
        e = np.repeat(ar, cnt)
        s = rng.integers(lo_day[e], np.maximum(hi_day[e], lo_day[e]) + 1)
        s = _to_weekday(s.astype(np.int32)) if t == 0 else s.astype(np.int32)
        ln = rng.integers(mn, mx + 1, len(e))
        en = np.minimum(s + ln - 1, term[e] - 1)
        ok = (en >= s) & (s >= hire[e])
        lv_emp.append(e[ok])
        lv_start.append(s[ok])
        lv_end.append(en[ok])
        lv_type.append(np.full(ok.sum(), t, np.int8))
        lv_known.append(s[ok] - rng.integers(l0, l1 + 1, ok.sum()))
    lv_emp = np.concatenate(lv_emp)
    lv_start = np.concatenate(lv_start).astype(np.int32)
    order = np.lexsort((lv_emp, lv_start))
    leave = dict(
        emp=lv_emp[order],
        start=lv_start[order],
        end=np.concatenate(lv_end).astype(np.int32)[order],
        type=np.concatenate(lv_type)[order],
        known=np.concatenate(lv_known).astype(np.int32)[order],
    )
    leave_maxlen = int((leave["end"] - leave["start"]).max(initial=0)) + 1

    # --- exceptions
    exc_days = np.full(P, -1, dtype=np.int8)
    exc_from = np.full(P, NEVER, dtype=np.int32)
    exc_to = np.full(P, NEVER, dtype=np.int32)
    disc = DISCRETION_FROM.toordinal()
    ra = indiv_remote & (rng.random(P) < 0.8)
    exc_days[ra] = 0
    exc_from[ra] = np.maximum(hire[ra], disc)
    med = (worker_type == 0) & ~remote & (rng.random(P) < 0.013)
    med_from = rng.integers(start - 180, end + 1, P).astype(np.int32)
    med_from = np.maximum(med_from, hire)
    exc_days[med] = rng.integers(0, 3, med.sum())
    exc_from[med] = med_from[med]
    exc_to[med] = med_from[med] + rng.integers(60, 366, med.sum())
    emp_exc = np.flatnonzero(exc_days >= 0)
    e_reason = np.where(
        ra[emp_exc],
        "remote_approved",
        np.where(rng.random(len(emp_exc)) < 0.6, "medical_accommodation", "caregiver"),
    )
    e_appr = org.head[org.vp[team_on(exc_from)[emp_exc]]]
    ou_exc_unit = list(remote_teams)
    ou_exc_days = [0] * len(ou_exc_unit)
    ou_exc_from = [disc] * len(ou_exc_unit)
    ou_exc_to = [int(NEVER)] * len(ou_exc_unit)
    ou_exc_reason = ["remote_team"] * len(ou_exc_unit)
    if depts >= 3:
        # a department at a site short of desks gets two days for a while
        d = int(d0 + 1 + rng.integers(0, depts - 1))
        f = max(THREE_DAYS_FROM.toordinal(), start)
        if f <= end:
            ou_exc_unit.append(d)
            ou_exc_days.append(2)
            ou_exc_from.append(f)
            ou_exc_to.append(f + 122)
            ou_exc_reason.append("space_constraints")
    n_e = len(emp_exc)
    exceptions = dict(
        scope=["employee"] * n_e + ["org_unit"] * len(ou_exc_unit),
        subject=[f"E{i + 1:06d}" for i in emp_exc] + [org.ids[u] for u in ou_exc_unit],
        days=list(exc_days[emp_exc].astype(int)) + ou_exc_days,
        reason=list(e_reason) + ou_exc_reason,
        approver=list(e_appr) + [int(org.head[org.vp[u]]) for u in ou_exc_unit],
        valid_from=list(exc_from[emp_exc].astype(int)) + ou_exc_from,
        valid_to=list(exc_to[emp_exc].astype(int)) + ou_exc_to,
    )
    exceptions["known"] = [v - 14 for v in exceptions["valid_from"]]
    ou_exc = dict(
        unit=np.array(ou_exc_unit, dtype=np.int32),
        days=np.array(ou_exc_days, dtype=np.int8),
        valid_from=np.array(ou_exc_from, dtype=np.int32),
        valid_to=np.array(ou_exc_to, dtype=np.int32),
    )

    # --- team policies (director discretion)
    tp_unit, tp_days, tp_by, tp_from, tp_to = [], [], [], [], []
    three = THREE_DAYS_FROM.toordinal()
    for d in range(d0, t0):
        if rng.random() < 0.65:
            tp_unit.append(d)
            tp_days.append(int(_pick(rng, [0.15, 0.30, 0.35, 0.20], 1)[0]))
            tp_by.append(int(org.head[d]))
            tp_from.append(disc + int(rng.integers(0, 60)))
            tp_to.append(three if rng.random() < 0.9 else int(NEVER))
    for t in range(t0, n_units):
        if rng.random() < 0.15 and not is_remote_team[t]:
            tp_unit.append(t)
            tp_days.append(int(_pick(rng, [0.2, 0.2, 0.25, 0.25, 0.07, 0.03], 1)[0]))
            tp_by.append(int(org.head[org.parent[t]]))
            tp_from.append(date(2022, 1, 3).toordinal() + int(rng.integers(0, 420)))
            tp_to.append(three)
    team_policies = dict(
        unit=np.array(tp_unit, np.int32),
        days=np.array(tp_days, np.int8),
        by=np.array(tp_by, np.int32),
        valid_from=np.array(tp_from, np.int32),
        valid_to=np.array(tp_to, np.int32),
    )

    # --- badges
    lose = rng.random(P) < 1 - (1 - 0.025) ** ((end - start + 1) / 365.25)
    lo = np.maximum(hire, start) + 1
    hi = np.minimum(term - 1, end)
    lose &= lo <= hi
    x = rng.integers(lo, np.maximum(hi, lo) + 1)
    reissue_t = np.full(P, np.iinfo(np.int64).max // 2, dtype=np.int64)
    reissue_t[lose] = (
        (x[lose] - 1).astype(np.int64) * DAY_S + 18 * 3600 + rng.integers(0, 5 * 3600, lose.sum())
    )
    visitor_n, temp_n = [], []
    site_heads = np.bincount(np.maximum(home_site, 0), minlength=len(SITES))
    for s in range(len(SITES)):
        visitor_n.append(max(3, int(round(site_heads[s] * 0.02))))
        temp_n.append(max(3, int(round(site_heads[s] * 0.005))))
    n_vis, n_tmp = sum(visitor_n), sum(temp_n)
    # issue order: by valid_from, then person; visitor and TEMP cards a year before start
    iss_t = np.concatenate(
        [
            hire.astype(np.int64) * DAY_S,
            reissue_t[lose],
            np.full(n_vis + n_tmp, (start - 365) * DAY_S, dtype=np.int64),
        ]
    )
    iss_who = np.concatenate([ar, np.flatnonzero(lose), np.full(n_vis + n_tmp, -1)])
    iss_kind = np.concatenate(
        [  # 0 first badge, 1 reissue, 2 visitor, 3 TEMP card
            np.zeros(P),
            np.ones(lose.sum()),
            np.full(n_vis, 2),
            np.full(n_tmp, 3),
        ]
    ).astype(np.int8)
    order = np.lexsort((np.arange(len(iss_t)), iss_t))
    bid = np.empty(len(order), dtype=np.int64)
    bid[order] = np.arange(len(order))
    badge0 = bid[:P]
    badge1 = badge0.copy()
    badge1[np.flatnonzero(lose)] = bid[P : P + lose.sum()]
    vis_ids = bid[P + lose.sum() : P + lose.sum() + n_vis]
    tmp_ids = bid[P + lose.sum() + n_vis :]
    visitor_badges, temp_badges = [], []
    off = toff = 0
    for s in range(len(SITES)):
        visitor_badges.append(vis_ids[off : off + visitor_n[s]])
        temp_badges.append(tmp_ids[toff : toff + temp_n[s]])
        off += visitor_n[s]
        toff += temp_n[s]
    nb = len(order)
    b_emp = np.full(nb, -1, dtype=np.int64)
    b_type = np.zeros(nb, dtype=np.int8)  # 0 EMPLOYEE 1 CONTRACTOR 2 VISITOR 3 TEMP
    b_from = np.zeros(nb, dtype=np.int64)
    b_to = np.full(nb, -1, dtype=np.int64)  # -1 open
    b_emp[bid] = iss_who
    b_from[bid] = iss_t
    b_type[bid] = np.where(iss_kind >= 2, iss_kind, worker_type[np.maximum(iss_who, 0)])
    # end of first badges: reissue or termination; of reissued badges: termination
    term_t = np.where(term != NEVER, term.astype(np.int64) * DAY_S, -1)
    first_end = np.where(lose, reissue_t, term_t)
    b_to[badge0] = first_end
    re = np.flatnonzero(lose)
    b_to[badge1[re]] = np.where(term[re] != NEVER, term[re].astype(np.int64) * DAY_S, -1)
    badges = dict(emp=b_emp, type=b_type, valid_from=b_from, valid_to=b_to)

    # forgotten badges: a TEMP card of the home site for the whole day (the
    # card is handed out again on other days, so a TEMP badge_id has many rows)
    on_site = (worker_type == 0) & (home_site >= 0)
    t_lo, t_hi = np.maximum(hire, start), np.minimum(term - 1, end)
    t_years = np.where(on_site, np.maximum(t_hi - t_lo + 1, 0) / 365.25, 0)
    t_emp = np.repeat(ar, rng.poisson(1.5 * t_years))
    t_day = _to_weekday(rng.integers(t_lo[t_emp], t_hi[t_emp] + 1).astype(np.int32))
    ok = t_day < term[t_emp]
    t_emp, t_day = t_emp[ok], t_day[ok]
    t_site = home_site[t_emp].astype(np.int64)
    order = np.lexsort((t_emp, t_site, t_day))
    t_emp, t_day, t_site = t_emp[order], t_day[order], t_site[order]
    key = t_day.astype(np.int64) * 8 + t_site
    first = np.r_[True, key[1:] != key[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))
    rank = np.arange(len(key)) - run_start
    pool_n = np.array(temp_n)[t_site]
    ok = rank < pool_n
    t_emp, t_day, t_site, rank = t_emp[ok], t_day[ok], t_site[ok], rank[ok]
    site_off = np.r_[0, np.cumsum(temp_n)[:-1]]
    t_badge = tmp_ids[site_off[t_site] + rank].astype(np.int64)
    temp = dict(emp=t_emp, day=t_day.astype(np.int32), badge=t_badge)

    # --- RIF files
    rif_notices = dict(
        round=[r[0] for r in notices],
        emp=[r[1] for r in notices],
        notified_on=[r[2] for r in notices],
        separation=[r[3] for r in notices],
        rescinded=[r[4] for r in notices],
    )

    emp_ids = [f"E{i + 1:06d}" for i in range(P)]
    name_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
    fi = name_rng.integers(0, len(FIRST), P)
    la = name_rng.integers(0, len(LAST), P)
    full_name = [f"{FIRST[a]} {LAST[b]}" for a, b in zip(fi, la, strict=True)]

    return Population(
        cfg=cfg,
        org=org,
        emp_ids=emp_ids,
        full_name=full_name,
        worker_type=worker_type,
        role=role,
        hire=hire,
        term=term,
        term_reason=reason,
        home_site=home_site,
        country=country,
        family=family,
        team0=home_unit,
        transfer_day=transfer_day,
        team1=team1,
        natural=tr["natural"],
        strength=tr["strength"],
        arrival_mu=arrival_mu,
        duration_mu=tr["duration_mu"].astype(np.int32),
        lunch_p=tr["lunch_p"],
        swipe_lam=tr["swipe_lam"],
        weekend_p=tr["weekend_p"],
        lobby_reader=tr["lobby_reader"],
        guard=guard,
        badge0=badge0,
        badge1=badge1,
        reissue_t=reissue_t,
        exc_days=exc_days,
        exc_from=exc_from,
        exc_to=exc_to,
        job_history=job_history,
        leave=leave,
        exceptions=exceptions,
        team_policies=team_policies,
        nominations=nom_cols,
        approvals=appr_cols,
        badges=badges,
        rif_rounds=rif_rows,
        rif_notices=rif_notices,
        visitor_badges=visitor_badges,
        temp=temp,
        ou_exc=ou_exc,
        leave_maxlen=leave_maxlen,
    )


def country_name(idx: int) -> str:
    return COUNTRIES[idx]
