"""Source-data simulator: writes the files of DOMAIN.md section 3.

    from rto.simulator import SimulatorConfig, generate
    summary = generate(SimulatorConfig(out=Path("var/source"), employees=300,
                                       start=date(2023, 1, 2), end=date(2023, 6, 30), seed=7))

See README.md next to this file for the behaviour model and the quirks.
"""

from .config import QuirkRates, SimulatorConfig
from .generate import generate, generate_night, generate_nights
from .population import Population, build_population
from .writers import Summary

__all__ = [
    "Population",
    "QuirkRates",
    "SimulatorConfig",
    "Summary",
    "build_population",
    "generate",
    "generate_night",
    "generate_nights",
]
