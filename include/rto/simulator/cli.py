"""`rto-simulate`: write simulated source files under a folder.

    rto-simulate --out var/source --employees 300 --start 2023-01-02 \\
        --end 2023-06-30 --seed 7 [--messy] [--workers 2] [--nightly-until DATE | --until DATE]
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from .config import QuirkRates, SimulatorConfig
from .generate import generate, generate_nights


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2023-06-30") from exc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rto-simulate", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="source root folder to write under")
    p.add_argument("--employees", type=int, default=300, help="headcount on --start")
    p.add_argument("--start", type=_date, default=date(2023, 1, 2), help="first local day")
    p.add_argument(
        "--end",
        type=_date,
        default=None,
        help="last local day (default: --nightly-until, else 2023-06-30)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes writing event files (output does not depend on it)",
    )
    p.add_argument("--compresslevel", type=int, default=6, help="gzip level of .csv.gz files")
    p.add_argument(
        "--messy", action="store_true", help="inject every messy-delivery quirk at demo rates"
    )
    p.add_argument(
        "--nightly-until",
        type=_date,
        default=None,
        metavar="DATE",
        help="write night by night from --start to DATE, only what each night"
        " delivers (HR snapshot dated each night, late files later)",
    )
    p.add_argument(
        "--until",
        type=_date,
        default=None,
        metavar="DATE",
        help="write the deliveries up to DATE only, of a company simulated to --end "
        "(later nights: generate_night with the same --end)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    end = args.end or args.nightly_until or date(2023, 6, 30)
    if args.nightly_until and args.nightly_until > end:
        print(f"--nightly-until {args.nightly_until} is after --end {end}", file=sys.stderr)
        return 2
    try:
        cfg = SimulatorConfig(
            out=args.out,
            employees=args.employees,
            start=args.start,
            end=end,
            seed=args.seed,
            workers=args.workers,
            compresslevel=args.compresslevel,
            quirks=QuirkRates.demo(args.start, end) if args.messy else QuirkRates(),
            progress=not args.no_progress,
        )
    except ValueError as exc:
        print(f"rto-simulate: {exc}", file=sys.stderr)
        return 2
    if args.nightly_until and args.until:
        print("--until and --nightly-until exclude each other", file=sys.stderr)
        return 2
    if args.nightly_until:
        summary = generate_nights(cfg, args.nightly_until)
    else:
        try:
            summary = generate(cfg, until=args.until)
        except ValueError as exc:
            print(f"rto-simulate: {exc}", file=sys.stderr)
            return 2
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
