"""Detector and sky artefacts, drawn in numpy: the bogus population of difference imaging.

Each function adds its artefact to an image in place (``[row, col]`` indexing) and returns the truth
rows describing what it added as a dict of columns (pixel ``x`` = column, ``y`` = row, 0-based).
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

COSMIC_RAY_ENERGY_RANGE_ADU = (300.0, 20000.0)
COSMIC_RAY_MAX_LENGTH_PX = 6
HOT_PIXEL_RANGE_ADU = (200.0, 8000.0)
BAD_COLUMN_RANGE_ADU = (100.0, 1500.0)
SATELLITE_PEAK_RANGE_ADU = (60.0, 3000.0)


def truth_rows(kind: str, x, y, **extra) -> dict[str, np.ndarray]:
    """Truth columns for artefacts of one ``kind`` at pixel positions ``(x, y)``."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return {"kind": np.full(len(x), kind), "x": x, "y": np.atleast_1d(np.asarray(y, dtype=float))} | extra


def add_cosmic_rays(image: np.ndarray, rng: np.random.Generator, per_megapixel: float) -> dict:
    """Add sharp, unconvolved cosmic-ray tracks of 1 to a few pixels.

    Parameters
    ----------
    image : numpy.ndarray
        One sub-exposure, ADU; modified in place.
    rng : numpy.random.Generator
    per_megapixel : float
        Mean number of hits per million pixels in this exposure.

    Returns
    -------
    dict
        Truth columns (kind ``cosmic_ray``) at each track's first pixel.
    """
    ny, nx = image.shape
    n = rng.poisson(per_megapixel * image.size / 1e6)
    x0, y0 = rng.integers(0, nx, n), rng.integers(0, ny, n)
    energy = np.exp(rng.uniform(*np.log(COSMIC_RAY_ENERGY_RANGE_ADU), n))
    for xi, yi, ei in zip(x0, y0, energy, strict=True):
        length = rng.integers(1, COSMIC_RAY_MAX_LENGTH_PX + 1)
        angle = rng.uniform(0, np.pi)
        steps = np.arange(length)
        xs = np.clip(np.round(xi + steps * np.cos(angle)).astype(int), 0, nx - 1)
        ys = np.clip(np.round(yi + steps * np.sin(angle)).astype(int), 0, ny - 1)
        np.add.at(image, (ys, xs), ei / length)
    return truth_rows("cosmic_ray", x0, y0)


@dataclass(frozen=True)
class CameraDefects:
    """Fixed detector defects: hot pixels and bad columns, in detector pixel coordinates."""

    hot_x: np.ndarray
    hot_y: np.ndarray
    hot_adu: np.ndarray
    bad_columns: np.ndarray
    bad_column_adu: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, shape: tuple[int, int], hot_per_megapixel: float, n_bad_columns: int):
        """Draw the defects of a camera of ``shape = (ny, nx)``."""
        ny, nx = shape
        n_hot = rng.poisson(hot_per_megapixel * ny * nx / 1e6)
        return cls(
            hot_x=rng.integers(0, nx, n_hot), hot_y=rng.integers(0, ny, n_hot),
            hot_adu=np.exp(rng.uniform(*np.log(HOT_PIXEL_RANGE_ADU), n_hot)),
            bad_columns=rng.choice(nx, size=min(n_bad_columns, nx), replace=False),
            bad_column_adu=rng.uniform(*BAD_COLUMN_RANGE_ADU, n_bad_columns),
        )

    def apply(self, image: np.ndarray) -> None:
        """Add hot pixels and bad columns to an exposure in place."""
        np.add.at(image, (self.hot_y, self.hot_x), self.hot_adu)
        image[:, self.bad_columns] += self.bad_column_adu

    def truth(self, shape: tuple[int, int]) -> list[dict]:
        """Truth rows: each hot pixel, and each bad column as a vertical line (``angle_deg`` 90)."""
        centre_row = np.full(len(self.bad_columns), (shape[0] - 1) / 2)
        return [truth_rows("hot_pixel", self.hot_x, self.hot_y),
                truth_rows("bad_column", self.bad_columns, centre_row, angle_deg=np.full(len(self.bad_columns), 90.0))]


def add_satellite_trail(image: np.ndarray, rng: np.random.Generator, fwhm_px: float) -> dict:
    """Add a straight satellite trail crossing the whole image, with a Gaussian cross-section.

    Returns
    -------
    dict
        Truth columns (kind ``satellite``) at the point of the trail nearest the image centre, with
        the trail's angle in ``angle_deg``.
    """
    ny, nx = image.shape
    cx, cy = rng.uniform(0, nx), rng.uniform(0, ny)
    angle = rng.uniform(0, np.pi)
    peak = np.exp(rng.uniform(*np.log(SATELLITE_PEAK_RANGE_ADU)))
    rows, cols = np.indices(image.shape, dtype=float)
    distance = (cols - cx) * np.sin(angle) - (rows - cy) * np.cos(angle)
    sigma = fwhm_px / 2.3548
    near = np.abs(distance) < 5 * sigma
    image[near] += peak * np.exp(-0.5 * (distance[near] / sigma) ** 2)
    return truth_rows("satellite", cx, cy, angle_deg=np.array([np.degrees(angle)]))


def saturate_with_bleed(image: np.ndarray, saturation: float) -> dict:
    """Clip at ``saturation`` and bleed each saturated region's excess charge along its column.

    The excess electrons of each connected saturated region fill the pixels above and below it in
    the region's central column, symmetrically, up to the full-well level, as in a CCD.

    Returns
    -------
    dict
        Truth columns (kind ``bleed``) at each saturated region's centroid, with the bleed length.
    """
    over = image > saturation
    labels, n = ndimage.label(over)
    if n == 0:
        return truth_rows("bleed", [], [], length_px=np.array([]))
    index = np.arange(1, n + 1)
    excess = ndimage.sum(image - saturation, labels, index)
    centroids = np.array(ndimage.center_of_mass(over, labels, index))
    objects = ndimage.find_objects(labels)
    lengths = np.ceil(excess / saturation).astype(int)
    for (_, cx), length, box in zip(centroids, lengths, objects, strict=True):
        col = int(round(cx))
        top = max(box[0].start - length // 2 - length % 2, 0)
        bottom = min(box[0].stop + length // 2, image.shape[0])
        image[top:bottom, col] = np.maximum(image[top:bottom, col], saturation)
    np.minimum(image, saturation, out=image)
    return truth_rows("bleed", centroids[:, 1], centroids[:, 0], length_px=lengths.astype(float))
