"""HR snapshot, badge assignments and RIF deliveries as known on a night.

A snapshot of night `n` is a filter of the simulated population: what HR
knows by then. Hires appear on their hire date, terminations on their
termination date, job-history rows on their effective date, leave when it is
requested (vacation weeks ahead, sick leave the same day), exceptions two
weeks before they start, team policies a week before, nominations on
`nominated_on` (outcome `pending` and decided_on null until decided_on),
approvals on `approved_on`. Badge assignments appear on their valid_from
day; a valid_to appears once it has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

import numpy as np

from rto.ingest.sources import column_names, specs_for

from .calendar import SITES, holiday_rows
from .population import (
    COUNTRIES,
    EVENT_NAMES,
    FAMILIES,
    KIND_NAMES,
    LEAVE_TYPES,
    NEVER,
    REASONS,
    Population,
)

DAY_S = 86_400

# Column lists of DOMAIN.md section 3, declared once for the loader in rto.ingest.sources.
HR_COLUMNS: dict[str, list[str]] = {
    spec.entity: column_names("hr", spec.entity) for spec in specs_for("hr")
}
ASSIGNMENT_COLUMNS = column_names("badge", "assignments")
EVENT_COLUMNS = column_names("badge", "events")
RIF_ROUND_COLUMNS = column_names("layoffs", "rif_rounds")
RIF_NOTICE_COLUMNS = column_names("layoffs", "rif_notices")
BADGE_TYPES = ("EMPLOYEE", "CONTRACTOR", "VISITOR", "TEMP")


def iso(ordinal: int) -> str:
    return date.fromordinal(int(ordinal)).isoformat()


def iso_or_none(ordinal: int) -> str | None:
    return None if int(ordinal) >= int(NEVER) else iso(ordinal)


def stamp(seconds: int) -> str:
    day, rest = divmod(int(seconds), DAY_S)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{iso(day)} {h:02d}:{m:02d}:{s:02d}"


def badge_id(idx: int) -> str:
    return f"B{int(idx) + 1:07d}"


def hr_tables(pop: Population, night: date) -> dict[str, Iterable[tuple]]:
    """Rows of every HR file of the snapshot dated `night` (lazy: big tables are
    generators, so 350,000 people never sit in memory as Python tuples)."""
    n = night.toordinal()
    org, ids = pop.org, pop.emp_ids
    out: dict[str, Iterable[tuple]] = {}
    out["sites"] = [(s.site_id, s.name, s.city, s.country, s.timezone) for s in SITES]
    out["org_units"] = [
        (
            org.ids[u],
            org.names[u],
            org.ids[org.parent[u]] if org.parent[u] >= 0 else None,
            KIND_NAMES[org.kind[u]],
            ids[org.head[u]],
        )
        for u in range(len(org.ids))
    ]
    out["employees"] = _employees(pop, n)
    jh = pop.job_history
    sel = np.flatnonzero(jh["day"] <= n)
    out["job_history"] = (
        (
            ids[jh["emp"][k]],
            iso(jh["day"][k]),
            int(jh["level"][k]),
            FAMILIES[jh["family"][k]],
            org.ids[jh["unit"][k]],
            ids[jh["manager"][k]] if jh["manager"][k] >= 0 else None,
            EVENT_NAMES[jh["event"][k]],
        )
        for k in sel.tolist()
    )
    lv = pop.leave
    sel = np.flatnonzero(lv["known"] <= n)
    out["leave"] = (
        (
            f"L{k + 1:08d}",
            ids[lv["emp"][k]],
            iso(lv["start"][k]),
            iso(lv["end"][k]),
            LEAVE_TYPES[lv["type"][k]],
        )
        for k in sel.tolist()
    )
    years = (pop.cfg.start.year - 1, max(pop.cfg.end.year, night.year) + 1)
    out["holidays"] = [(c, d.isoformat(), name) for c, d, name in holiday_rows(*years)]
    tp = pop.team_policies
    out["team_policies"] = [
        (
            org.ids[tp["unit"][k]],
            int(tp["days"][k]),
            ids[tp["by"][k]],
            iso(tp["valid_from"][k]),
            iso_or_none(tp["valid_to"][k]),
        )
        for k in range(len(tp["unit"]))
        if tp["valid_from"][k] - 7 <= n
    ]
    ex = pop.exceptions
    out["exceptions"] = [
        (
            f"X{k + 1:06d}",
            ex["scope"][k],
            ex["subject"][k],
            int(ex["days"][k]),
            ex["reason"][k],
            ids[ex["approver"][k]],
            iso(ex["valid_from"][k]),
            iso_or_none(ex["valid_to"][k]),
        )
        for k in range(len(ex["scope"]))
        if ex["known"][k] <= n
    ]
    nm = pop.nominations
    noms = []
    for k in range(len(nm["emp"])):
        if nm["nominated_on"][k] > n:
            continue
        decided = nm["decided_on"][k] <= n
        noms.append(
            (
                f"N{k + 1:06d}",
                nm["cycle"][k],
                ids[nm["emp"][k]],
                nm["from_level"][k],
                nm["from_level"][k] + 1,
                iso(nm["nominated_on"][k]),
                iso(nm["decided_on"][k]) if decided else None,
                nm["outcome"][k] if decided else "pending",
            )
        )
    out["nominations"] = noms
    ap = pop.approvals
    out["approvals"] = [
        (
            f"A{k + 1:06d}",
            f"N{ap['nom'][k] + 1:06d}",
            ids[ap["approver"][k]],
            iso(ap["approved_on"][k]),
        )
        for k in range(len(ap["nom"]))
        if ap["approved_on"][k] <= n and nm["nominated_on"][ap["nom"][k]] <= n
    ]
    return out


def _employees(pop: Population, n: int) -> Iterator[tuple]:
    ids = pop.emp_ids
    for i in np.flatnonzero(pop.hire <= n).tolist():
        ended = pop.term[i] <= n
        site = pop.home_site[i]
        first, last = pop.full_name[i].split(" ", 1)
        email = f"{first}.{last}.{ids[i][1:]}@example.com".lower().replace("'", "")
        yield (
            ids[i],
            pop.full_name[i],
            email,
            iso(pop.hire[i]),
            iso(pop.term[i]) if ended else None,
            REASONS[pop.term_reason[i]] if ended else None,
            "contractor" if pop.worker_type[i] else "employee",
            SITES[site].site_id if site >= 0 else None,
            COUNTRIES[pop.country[i]],
        )


def assignment_rows(pop: Population, night: date) -> Iterator[tuple]:
    """Badge assignment history known on `night` (valid_from day <= night)."""
    b = pop.badges
    limit = (night.toordinal() + 1) * DAY_S
    for k in np.flatnonzero((b["valid_from"] < limit) & (b["type"] != 3)).tolist():
        to = int(b["valid_to"][k])
        emp = int(b["emp"][k])
        yield (
            badge_id(k),
            pop.emp_ids[emp] if emp >= 0 else None,
            BADGE_TYPES[b["type"][k]],
            stamp(b["valid_from"][k]),
            stamp(to) if 0 <= to < limit else None,
        )
    t = pop.temp
    n = night.toordinal()
    for k in np.flatnonzero(t["day"] <= n).tolist():
        day = int(t["day"][k])
        yield (
            badge_id(t["badge"][k]),
            pop.emp_ids[t["emp"][k]],
            "TEMP",
            stamp(day * DAY_S),
            stamp((day + 1) * DAY_S) if day < n else None,
        )


def rif_deliveries(pop: Population) -> dict[date, tuple[list[tuple], list[tuple]]]:
    """RIF files by delivery date.

    On a round's announcement date: the round and its notices (`notified`).
    On its separation date: the round again and every notice with its final
    status (`separated` or `rescinded`), superseding the first delivery.
    """
    out: dict[date, tuple[list[tuple], list[tuple]]] = {}
    rn = pop.rif_notices
    by_round: dict[str, list[int]] = {}
    for k, r in enumerate(rn["round"]):
        by_round.setdefault(r, []).append(k)
    org = pop.org
    comm = int(org.levels[2][0])  # department 0 is Communications
    for rnd in pop.rif_rounds:
        ks = by_round.get(rnd.rif_round_id, [])
        scope = org.ids[comm] if rnd.scope == "communications" else org.ids[0]
        round_row = [(rnd.rif_round_id, rnd.name, rnd.announced_on.isoformat(), scope, len(ks))]

        def notice(k: int, status: str) -> tuple:
            return (
                f"{rn['round'][k]}-{k + 1:06d}",
                rn["round"][k],
                pop.emp_ids[rn["emp"][k]],
                iso(rn["notified_on"][k]),
                iso(rn["separation"][k]),
                status,
            )

        out.setdefault(rnd.announced_on, ([], []))
        out[rnd.announced_on][0].extend(round_row)
        out[rnd.announced_on][1].extend(notice(k, "notified") for k in ks)
        final = [notice(k, "rescinded" if rn["rescinded"][k] else "separated") for k in ks]
        out.setdefault(rnd.separation_date, ([], []))
        out[rnd.separation_date][0].extend(round_row)
        out[rnd.separation_date][1].extend(final)
    return out
