"""Which minor planets fall on an image at a given instant, and where."""

import numpy as np
from astropy.coordinates import EarthLocation
from astropy.table import Table
from astropy.wcs import WCS

from bayesrb.minorplanets.ephemeris import observe
from bayesrb.minorplanets.mpcorb import Orbits


def minor_planets_on_image(orbits: Orbits, mjd_utc: float, wcs: WCS, shape: tuple[int, int],
                           location: EarthLocation, *, margin_px: float = 0.0,
                           limit_mag: float = np.inf) -> Table:
    """Propagate every orbit to ``mjd_utc`` and keep the minor planets that fall on the image.

    Parameters
    ----------
    orbits : Orbits
        The orbit file.
    mjd_utc : float
        The instant (MJD, UTC).
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    shape : tuple of int
        Image shape ``(rows, cols)``.
    location : astropy.coordinates.EarthLocation
        The observatory: positions are topocentric and light-time corrected.
    margin_px : float, optional
        Also keep objects up to this many pixels beyond the image edge (negative: inside it).
    limit_mag : float, optional
        Keep objects brighter than this predicted V magnitude.

    Returns
    -------
    astropy.table.Table
        One row per object: ``designation``, ``ra``, ``dec`` (deg), ``x``, ``y`` (0-based pixel, ``x`` the
        column) and ``mag`` (predicted V).
    """
    ephemeris = observe(orbits, mjd_utc, location)
    x, y = wcs.all_world2pix(ephemeris.ra_deg, ephemeris.dec_deg, 0)
    rows, cols = shape
    on = ((x > -0.5 - margin_px) & (x < cols - 0.5 + margin_px) & (y > -0.5 - margin_px)
          & (y < rows - 0.5 + margin_px) & (ephemeris.mag_v < limit_mag))
    table = Table({"designation": np.asarray(orbits.designation, dtype=str)[on], "ra": ephemeris.ra_deg[on],
                   "dec": ephemeris.dec_deg[on], "x": x[on], "y": y[on], "mag": ephemeris.mag_v[on]})
    for column, unit in (("ra", "deg"), ("dec", "deg"), ("x", "pix"), ("y", "pix"), ("mag", "mag")):
        table[column].unit = unit
    return table
