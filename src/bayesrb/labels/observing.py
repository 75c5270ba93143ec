"""When and from where a visit was observed, read from its science FITS file as a telescope pipeline writes it."""

import os
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

from bayesrb.errors import BadInputError
from bayesrb.imaging.fitsio import read_image
from bayesrb.minorplanets.mpcorb import read_mpcorb
from bayesrb.minorplanets.visibility import minor_planets_on_image

#: Predicted minor planets this far off the image still matter (they spill light onto it, pixels).
PREDICTION_MARGIN_PX = 20.0


@dataclass(frozen=True)
class VisitObservation:
    """Epoch, site and geometry of one visit.

    Attributes
    ----------
    mjd_utc : float
        Mid-point of the visit (MJD, UTC): the mean of the sub-exposures' ``MJD-OBS`` when the file has
        ``SUBEXPn`` extensions, else the primary's ``MJD-OBS`` (or ``DATE-OBS``) plus half of ``EXPTIME``.
    location : astropy.coordinates.EarthLocation
        The observatory, from the FITS standard keys ``OBSGEO-L/B/H`` (degrees, degrees, metres) or
        ``OBSGEO-X/Y/Z`` (metres).
    wcs : astropy.wcs.WCS
        Celestial WCS of the science image.
    shape : tuple of int
        Image shape ``(rows, cols)``.
    """

    mjd_utc: float
    location: EarthLocation
    wcs: WCS
    shape: tuple[int, int]


def _header_number(header: fits.Header, key: str, path) -> float:
    """``header[key]`` as a finite float; BadInputError naming ``path`` and the card if it is not one."""
    try:
        value = float(header[key])
    except (TypeError, ValueError):
        value = np.nan
    if not np.isfinite(value):
        raise BadInputError(path, f"header card {key} = {header[key]!r} is not a finite number")
    return value


def _start_mjd(header: fits.Header, path) -> float:
    if "MJD-OBS" in header:
        return _header_number(header, "MJD-OBS", path)
    if "DATE-OBS" in header:
        try:
            return float(Time(header["DATE-OBS"], scale="utc").mjd)
        except ValueError as error:
            raise BadInputError(path, f"unreadable DATE-OBS {header['DATE-OBS']!r} ({error})") from error
    raise BadInputError(path, "no observation time (need MJD-OBS or DATE-OBS in the primary header)")


def _location(header: fits.Header, path) -> EarthLocation:
    if all(f"OBSGEO-{k}" in header for k in "LBH"):
        longitude, latitude, height = (_header_number(header, f"OBSGEO-{k}", path) for k in "LBH")
        return EarthLocation.from_geodetic(longitude * u.deg, latitude * u.deg, height * u.m)
    if all(f"OBSGEO-{k}" in header for k in "XYZ"):
        return EarthLocation.from_geocentric(*(_header_number(header, f"OBSGEO-{k}", path) for k in "XYZ"), unit=u.m)
    raise BadInputError(path, "no observatory location (need OBSGEO-L/B/H or OBSGEO-X/Y/Z in the primary header); "
                              "minor-planet positions are topocentric")


def _subexposure_mjds(path) -> list[float]:
    with fits.open(path, memmap=False) as hdul:
        return [_header_number(h.header, "MJD-OBS", f"{path}[{h.name}]") for h in hdul[1:]
                if str(h.header.get("EXTNAME", "")).upper().startswith("SUBEXP") and "MJD-OBS" in h.header]


def read_visit_observation(science_path: str | os.PathLike) -> VisitObservation:
    """Read a visit's epoch, site, WCS and shape from its science FITS file.

    Parameters
    ----------
    science_path : str or os.PathLike
        Science FITS (primary HDU the stack, optional ``SUBEXPn`` extensions).

    Returns
    -------
    VisitObservation

    Raises
    ------
    BadInputError
        Naming the file, for anything :func:`bayesrb.imaging.fitsio.read_image` rejects, no observation
        time or no observatory location, or a time, exposure or location card that is not a number.
    """
    image = read_image(science_path)
    header = image.header
    sub_mjds = _subexposure_mjds(science_path)
    if sub_mjds:
        mjd = float(np.mean(sub_mjds))
    else:
        exposure = _header_number(header, "EXPTIME", science_path) if "EXPTIME" in header else 0.0
        mjd = _start_mjd(header, science_path) + exposure / 2 / 86400
    return VisitObservation(mjd_utc=mjd, location=_location(header, science_path), wcs=image.wcs,
                            shape=image.data.shape)


def predicted_minor_planets(observation: VisitObservation, orbits_path: str | os.PathLike,
                            max_bad_orbit_fraction: float) -> Table:
    """Every minor planet of an orbit file predicted on (or just off) a visit's image, at the visit's epoch.

    Parameters
    ----------
    observation : VisitObservation
        The visit (:func:`read_visit_observation`).
    orbits_path : str or os.PathLike
        MPCORB-format orbit file.
    max_bad_orbit_fraction : float
        Malformed orbit lines above this fraction reject the file.

    Returns
    -------
    astropy.table.Table
        ``designation``, ``ra``, ``dec`` (deg), ``x``, ``y`` (pixels) and ``mag``, any magnitude, within
        :data:`PREDICTION_MARGIN_PX` of the image.
    """
    orbits = read_mpcorb(orbits_path, max_bad_fraction=max_bad_orbit_fraction)
    return minor_planets_on_image(orbits, observation.mjd_utc, observation.wcs, observation.shape,
                                  observation.location, margin_px=PREDICTION_MARGIN_PX)
