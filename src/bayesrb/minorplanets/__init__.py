"""Minor planets: MPCORB orbit files, two-body ephemerides and synthetic orbits through fields."""

from bayesrb.minorplanets.ephemeris import Ephemeris, hg_magnitude, observe, solve_kepler
from bayesrb.minorplanets.mpcorb import Orbits, read_mpcorb, write_mpcorb
from bayesrb.minorplanets.synthetic import orbits_through_fields

__all__ = [
    "Ephemeris",
    "Orbits",
    "hg_magnitude",
    "observe",
    "orbits_through_fields",
    "read_mpcorb",
    "solve_kepler",
    "write_mpcorb",
]
