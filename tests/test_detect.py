"""Detection on difference images: injected transients of both signs, empty results and flag bits."""

import numpy as np
import pytest
import sep
from astropy.wcs import WCS
from imaging_fakes import PIXSCALE, make_pair, make_wcs_header, render_gaussians

from bayesrb.imaging.align import align_template
from bayesrb.imaging.detect import (
    COLUMNS,
    FLAG_DIPOLE,
    FLAG_NEAR_EDGE,
    FLAG_NEAR_MASK,
    detect,
)
from bayesrb.imaging.fitsio import read_image
from bayesrb.imaging.subtract import Difference, subtract

TRANSIENT = (100.4, 95.7, 800.0)      # (x, y, flux in science ADU): science only
VANISHED = (140.2, 50.5, 2500.0)       # template only -> negative in D


def _aperture_fraction(fwhm_arcsec, radius_px):
    """Flux fraction of a pixel-integrated Gaussian inside a circle of ``radius_px``."""
    sigma2 = (fwhm_arcsec / PIXSCALE / 2.3548200450309493) ** 2 + 1.0 / 12.0
    return 1.0 - np.exp(-(radius_px**2) / (2.0 * sigma2))


def _nearest(table, x, y):
    d = np.hypot(table["x"] - x, table["y"] - y)
    i = int(np.argmin(d))
    return table[i], d[i]


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    pair = make_pair(tmp_path_factory.mktemp("det"), fwhm_s=3.4, fwhm_t=2.4, seed=21, transient=TRANSIENT,
                     template_only=VANISHED)
    sci, tmpl = read_image(pair.science_path), read_image(pair.template_path)
    diff = subtract(sci, align_template(tmpl, sci), tmpl.header, kernel_half_width=6, n_threads=2)
    return pair, sci, diff, detect(diff, sci.wcs, sci.header["MAGZP"])


def _check_columns(table):
    assert table.colnames == [name for name, _, _ in COLUMNS]
    for name, dtype, _ in COLUMNS:
        assert table[name].dtype == np.dtype(dtype), name


def test_positive_transient(found):
    pair, sci, diff, table = found
    _check_columns(table)
    row, dist = _nearest(table, *TRANSIENT[:2])
    assert dist < 1.0 and row["sign"] == 1
    expected = TRANSIENT[2] * _aperture_fraction(3.4, diff.fwhm_px)
    assert row["flux"] == pytest.approx(expected, abs=3 * row["flux_err"] + 0.05 * expected)
    assert row["snr"] > 10
    assert row["mag"] == pytest.approx(sci.header["MAGZP"] - 2.5 * np.log10(row["flux"]))
    assert row["mag_err"] == pytest.approx(1.0857 / row["snr"], rel=1e-3)
    assert row["fwhm"] == pytest.approx(3.4, rel=0.25)
    ra, dec = sci.wcs.all_pix2world([[TRANSIENT[0], TRANSIENT[1]]], 0)[0]
    assert np.hypot((row["ra"] - ra) * np.cos(np.deg2rad(dec)), row["dec"] - dec) * 3600 < PIXSCALE
    assert row["flags"] & (FLAG_NEAR_EDGE | FLAG_NEAR_MASK) == 0


def test_negative_source(found):
    _, _, diff, table = found
    row, dist = _nearest(table, *VANISHED[:2])
    assert dist < 1.0 and row["sign"] == -1
    expected = VANISHED[2] * _aperture_fraction(3.4, diff.fwhm_px)
    assert row["flux"] == pytest.approx(expected, abs=3 * row["flux_err"] + 0.05 * expected)
    assert np.isfinite(row["mag"])


def test_few_false_detections(found):
    pair, _, _, table = found
    injected = np.array([TRANSIENT[:2], VANISHED[:2]])
    stars = np.column_stack([pair.stars["x"], pair.stars["y"]])
    bright = stars[pair.stars["flux"] > 2e4]
    others = [r for r in table if np.hypot(*(injected - [r["x"], r["y"]]).T).min() > 2
              and (len(bright) == 0 or np.hypot(*(bright - [r["x"], r["y"]]).T).min() > 6)]
    assert len(others) <= 2


def _synthetic(shape=(128, 128), seed=0):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=shape).astype(np.float32)
    return d, np.ones(shape, np.float32), np.zeros(shape, bool)


def test_empty_difference_gives_empty_table():
    wcs = WCS(make_wcs_header((128, 128)))
    d, n, m = _synthetic()
    table = detect(Difference(d, n, m, fwhm_px=2.7), wcs, 25.0, threshold=6.0)
    assert len(table) == 0
    _check_columns(table)
    all_masked = detect(Difference(d, n, np.ones_like(m), fwhm_px=2.7), wcs, 25.0)
    assert len(all_masked) == 0
    _check_columns(all_masked)


def test_flags_and_big_endian_input():
    shape = (128, 128)
    wcs = WCS(make_wcs_header(shape))
    d, n, m = _synthetic(shape, seed=1)
    sigma = 1.2
    d += render_gaussians(shape, [5.0, 40.0, 44.5, 90.0], [64.0, 40.0, 40.0, 90.0], [400.0, 400, -400, 400],
                          sigma).astype(np.float32)
    m[88:92, 93:97] = True  # masked pixels next to the source at (90, 90)
    diff = Difference(d.astype(">f4"), n.astype(">f4"), m, fwhm_px=2.8)
    table = detect(diff, wcs, 25.0, edge_margin_px=8)
    assert len(table) == 4
    edge, _ = _nearest(table, 5.0, 64.0)
    assert edge["flags"] & FLAG_NEAR_EDGE
    plus, _ = _nearest(table, 40.0, 40.0)
    minus, _ = _nearest(table, 44.5, 40.0)
    assert plus["sign"] == 1 and minus["sign"] == -1
    assert plus["flags"] & FLAG_DIPOLE and minus["flags"] & FLAG_DIPOLE
    near_mask, _ = _nearest(table, 90.0, 90.0)
    assert near_mask["flags"] & FLAG_NEAR_MASK and not near_mask["flags"] & FLAG_DIPOLE
    assert not edge["flags"] & (FLAG_NEAR_MASK | FLAG_DIPOLE)


def test_windowed_centroids_beat_isophotal_barycentres_on_faint_sources():
    # the barycentre of a faint source's isophote wanders with the noise; the windowed centroid stays nearer
    rng = np.random.default_rng(5)
    shape, sigma = (600, 600), 1.2
    grid = np.arange(20, 590, 20, dtype=float)
    x_true = np.repeat(grid, len(grid)) + rng.uniform(-0.5, 0.5, len(grid) ** 2)
    y_true = np.tile(grid, len(grid)) + rng.uniform(-0.5, 0.5, len(grid) ** 2)
    image = render_gaussians(shape, x_true, y_true, np.full(len(x_true), 110.0), sigma)
    noise = np.ones(shape)
    image += rng.normal(0.0, 1.0, shape)
    table = detect(Difference(image.astype(np.float32), noise, np.zeros(shape, bool), fwhm_px=2.355 * sigma),
                   WCS(make_wcs_header(shape)), 25.0)
    objects = sep.extract(image, 5.0, err=noise, minarea=5)
    windowed, barycentre = [], []
    for xt, yt in zip(x_true, y_true, strict=True):
        windowed.append(np.min(np.hypot(table["x"] - xt, table["y"] - yt)))
        barycentre.append(np.min(np.hypot(objects["x"] - xt, objects["y"] - yt)))
    windowed, barycentre = np.array(windowed), np.array(barycentre)
    assert len(table) == len(x_true) and windowed.max() < 1.0  # S/N ~ 26: every source found, near its truth
    assert np.median(windowed) < 0.85 * np.median(barycentre)  # measured: ~0.78
    assert np.percentile(windowed, 90) < 0.9 * np.percentile(barycentre, 90)
