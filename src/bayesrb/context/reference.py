"""Reference-image sources: what the survey's own template shows at a candidate's position.

Catalogues are incomplete (a faint host, a galaxy taken for a star, a field no deep survey covers); the template
is not, down to its own depth. Its sources are detected once per visit on the template resampled onto the science
grid (sep: background, then extraction at ``reference_threshold_sigma`` times the background RMS), each with its
isophotal magnitude (the template's zero point) and its *extent*: the half-light radius over the median one of
the template's bright, compact sources, ~1 for a point source and larger for a galaxy. A candidate gets, like a
catalogue family: the separation of the nearest and second-nearest source, the nearest one's magnitude and extent,
the count within the count radius and the state (1 a source within the match radius, 0 none, NaN where the
template does not cover the candidate). ZTF's alert packets carry the same kind of context, measured on ZTF's
reference images: ``distnr``, ``magnr``, ``sharpnr`` (:mod:`bayesrb.alerts.context`).
"""

from dataclasses import dataclass

import numpy as np
import sep
from scipy.spatial import cKDTree

from bayesrb.context.catalogues import NO_SOURCE_MAG
from bayesrb.context.settings import FeatureSettings
from bayesrb.imaging.detect import raise_sep_limits

__all__ = ["REFERENCE_COLUMNS", "ReferenceSources", "detect_reference_sources", "reference_features"]

#: Reference-image features; NaN where the template does not cover the candidate.
REFERENCE_COLUMNS: tuple[str, ...] = ("ref_sep1_arcsec", "ref_sep2_arcsec", "ref_mag1", "ref_extent1", "ref_count",
                                      "ref_state")
#: Smallest area of a reference source, pixels.
MIN_AREA_PX = 5
#: Peak over background RMS above which a source is bright enough to measure the point-source size on.
BRIGHT_PEAK_SIGMA = 30.0


@dataclass(frozen=True)
class ReferenceSources:
    """Sources of a template resampled onto the science grid.

    Attributes
    ----------
    x, y : numpy.ndarray
        Pixel positions on the science grid (x the column, 0-based).
    mag : numpy.ndarray
        Isophotal magnitudes; NaN without the template's zero point.
    extent : numpy.ndarray
        Half-light radius over the median one of the bright compact sources.
    covered : numpy.ndarray
        Boolean image: where the template covers the science grid.
    """

    x: np.ndarray
    y: np.ndarray
    mag: np.ndarray
    extent: np.ndarray
    covered: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def detect_reference_sources(template: np.ndarray, zero_point: float | None,
                             threshold_sigma: float) -> ReferenceSources:
    """Detect the sources of a resampled template (NaN where it does not cover).

    Parameters
    ----------
    template : numpy.ndarray
        The template on the science grid, ``[row, col]``.
    zero_point : float or None
        ``mag = zero_point - 2.5 log10(flux)``; None leaves the magnitudes NaN.
    threshold_sigma : float
        Detection threshold in units of the background RMS.

    Returns
    -------
    ReferenceSources
    """
    covered = np.isfinite(template)
    data = np.where(covered, template, 0.0).astype(np.float32)
    background = sep.Background(data, mask=~covered)
    signal = data - background.back()
    rms = background.globalrms
    raise_sep_limits(data.size)
    objects = sep.extract(signal, threshold_sigma, err=rms, mask=~covered, minarea=MIN_AREA_PX)
    x, y = objects["x"].astype(float), objects["y"].astype(float)
    radius, _ = sep.flux_radius(signal, x, y, np.clip(6.0 * objects["a"], 3.0, 30.0), 0.5, mask=~covered,
                                subpix=5)
    flux = objects["flux"].astype(float)
    mag = zero_point - 2.5 * np.log10(np.where(flux > 0, flux, np.nan)) if zero_point is not None else \
        np.full(len(x), np.nan)
    return ReferenceSources(x, y, mag, radius / _point_source_radius(radius, objects["peak"] / rms), covered)


def _point_source_radius(radius: np.ndarray, peak_sigma: np.ndarray) -> float:
    """The half-light radius of a point source: the median of the bright sources' smaller half."""
    bright = radius[(peak_sigma > BRIGHT_PEAK_SIGMA) & np.isfinite(radius) & (radius > 0)]
    if len(bright) == 0:
        bright = radius[np.isfinite(radius) & (radius > 0)]
    if len(bright) == 0:
        return np.nan
    return float(np.median(bright[bright <= np.median(bright)]))


def reference_features(sources: ReferenceSources | None, x: np.ndarray, y: np.ndarray, pixel_scale_arcsec: float,
                       settings: FeatureSettings) -> dict[str, np.ndarray]:
    """The reference-image features (:data:`REFERENCE_COLUMNS`) of candidates at pixels ``(x, y)``.

    Parameters
    ----------
    sources : ReferenceSources
        The visit's template sources, or None for no template (every feature missing).
    x, y : numpy.ndarray
        Candidate positions on the science grid.
    pixel_scale_arcsec : float
    settings : FeatureSettings
        Match, count and search radii.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    n = len(x)
    sep1, sep2, mag1, extent1, count, state = (np.full(n, np.nan) for _ in REFERENCE_COLUMNS)
    covered = _covered(sources, x, y)
    sep1[covered] = sep2[covered] = settings.search_radius_arcsec
    mag1[covered], extent1[covered], count[covered] = NO_SOURCE_MAG, 0.0, 0.0
    if covered.any() and len(sources):
        points = np.column_stack([x[covered], y[covered]]) * pixel_scale_arcsec
        tree = cKDTree(np.column_stack([sources.x, sources.y]) * pixel_scale_arcsec)
        distance, index = tree.query(points, k=2, distance_upper_bound=settings.search_radius_arcsec)
        found = np.isfinite(distance)
        nearest = np.minimum(index[:, 0], len(sources) - 1)
        sep1[covered] = np.where(found[:, 0], distance[:, 0], settings.search_radius_arcsec)
        sep2[covered] = np.where(found[:, 1], distance[:, 1], settings.search_radius_arcsec)
        mag1[covered] = np.where(found[:, 0], sources.mag[nearest], NO_SOURCE_MAG)
        extent1[covered] = np.where(found[:, 0], sources.extent[nearest], 0.0)
        count[covered] = tree.query_ball_point(points, settings.count_radius_arcsec, return_length=True)
    state[covered] = (sep1[covered] <= settings.match_radius_arcsec).astype(float)
    return dict(zip(REFERENCE_COLUMNS, (sep1, sep2, mag1, extent1, count, state), strict=True))


def _covered(sources: ReferenceSources | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the template covers each candidate's pixel."""
    if sources is None:
        return np.zeros(len(x), dtype=bool)
    rows = np.clip(np.round(y).astype(int), 0, sources.covered.shape[0] - 1)
    cols = np.clip(np.round(x).astype(int), 0, sources.covered.shape[1] - 1)
    inside = (x > -0.5) & (y > -0.5) & (x < sources.covered.shape[1] - 0.5) & (y < sources.covered.shape[0] - 0.5)
    return inside & sources.covered[rows, cols]
