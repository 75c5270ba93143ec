"""Reference-image features: sources detected on the template, by hand-built templates."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from imaging_fakes import make_wcs_header

from bayesrb.context.catalogues import NO_SOURCE_MAG
from bayesrb.context.reference import REFERENCE_COLUMNS, detect_reference_sources, reference_features
from bayesrb.context.settings import FeatureSettings
from bayesrb.context.visit import visit_reference_sources

SHAPE = (160, 200)
ZERO_POINT = 25.0
PIXEL_SCALE = 1.0
STAR_SIGMA_PX = 1.3
#: (x, y, flux, sigma): bright stars that set the point-source size, one star and one galaxy to look at
STARS = [(30.0, 30.0, 2e4), (170.0, 30.0, 2e4), (30.0, 130.0, 2e4), (100.0, 130.0, 2e4), (170.0, 130.0, 2e4)]
STAR = (60.0, 80.0, 5e3)
GALAXY = (140.0, 80.0, 5e4, 4.0)


def _gaussian(x0, y0, flux, sigma):
    y, x = np.indices(SHAPE, dtype=float)
    return flux / (2 * np.pi * sigma**2) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


def _template(seed=0):
    image = np.random.default_rng(seed).normal(100.0, 2.0, SHAPE)
    for x, y, flux in [*STARS, STAR]:
        image += _gaussian(x, y, flux, STAR_SIGMA_PX)
    image += _gaussian(*GALAXY)
    image[:, :12] = np.nan  # not covered by the template
    return image.astype(np.float32)


def _nearest(sources, x, y):
    return int(np.argmin(np.hypot(sources.x - x, sources.y - y)))


def test_template_sources_have_positions_magnitudes_and_extents():
    sources = detect_reference_sources(_template(), ZERO_POINT, threshold_sigma=3.0)
    star, galaxy = _nearest(sources, *STAR[:2]), _nearest(sources, *GALAXY[:2])
    assert np.hypot(sources.x[star] - STAR[0], sources.y[star] - STAR[1]) < 0.2
    assert np.hypot(sources.x[galaxy] - GALAXY[0], sources.y[galaxy] - GALAXY[1]) < 0.3
    # isophotal magnitudes: a little fainter than the total (the wings below the threshold are left out)
    assert 0.0 < sources.mag[star] - (ZERO_POINT - 2.5 * np.log10(STAR[2])) < 0.3
    assert 0.0 < sources.mag[galaxy] - (ZERO_POINT - 2.5 * np.log10(GALAXY[2])) < 0.5
    assert sources.extent[star] == pytest.approx(1.0, abs=0.1)
    assert sources.extent[galaxy] > 2.5  # sigma 4 px against 1.3
    assert not sources.covered[:, :12].any() and sources.covered[:, 12:].all()


def test_without_a_zero_point_the_magnitudes_are_missing():
    sources = detect_reference_sources(_template(), None, threshold_sigma=3.0)
    assert len(sources) >= 7 and np.isnan(sources.mag).all()


def test_candidate_features_match_count_and_missing_where_the_template_does_not_cover():
    settings = FeatureSettings(match_radius_arcsec=2.0, count_radius_arcsec=50.0, search_radius_arcsec=60.0)
    sources = detect_reference_sources(_template(), ZERO_POINT, threshold_sigma=3.0)
    # on the star; 1.5" from the galaxy; on empty sky 40" from the star; off the template
    x = np.array([STAR[0], GALAXY[0] + 1.5, STAR[0] + 40.0, 5.0])
    y = np.array([STAR[1], GALAXY[1], STAR[1], 80.0])
    f = reference_features(sources, x, y, PIXEL_SCALE, settings)
    assert tuple(f) == REFERENCE_COLUMNS
    np.testing.assert_allclose(f["ref_sep1_arcsec"][:3], [0.0, 1.5, 40.0], atol=0.3)
    np.testing.assert_array_equal(f["ref_state"][:3], [1.0, 1.0, 0.0])
    assert f["ref_extent1"][1] > 2.5 and f["ref_extent1"][0] == pytest.approx(1.0, abs=0.1)
    assert f["ref_mag1"][0] == pytest.approx(sources.mag[_nearest(sources, *STAR[:2])])
    assert f["ref_count"][2] == np.sum(np.hypot(sources.x - x[2], sources.y - y[2]) <= 50.0)
    assert f["ref_sep2_arcsec"][0] == pytest.approx(min(np.hypot(STAR[0] - sx, STAR[1] - sy) for sx, sy, _ in
                                                        [*STARS, GALAXY[:3]]), abs=0.3)
    assert all(np.isnan(f[name][3]) for name in REFERENCE_COLUMNS)


def test_nothing_within_the_search_radius_is_a_value_and_no_template_is_missing():
    settings = FeatureSettings(search_radius_arcsec=5.0)
    sources = detect_reference_sources(_template(), ZERO_POINT, threshold_sigma=3.0)
    f = reference_features(sources, np.array([100.0]), np.array([60.0]), PIXEL_SCALE, settings)
    assert (f["ref_sep1_arcsec"][0], f["ref_sep2_arcsec"][0], f["ref_mag1"][0], f["ref_count"][0],
            f["ref_state"][0]) == (5.0, 5.0, NO_SOURCE_MAG, 0.0, 0.0)
    none = reference_features(None, np.array([100.0]), np.array([60.0]), PIXEL_SCALE, settings)
    assert all(np.isnan(values).all() for values in none.values())


def test_a_visits_template_is_resampled_onto_the_science_grid(tmp_path):
    science_header = make_wcs_header(SHAPE)
    template_header = make_wcs_header(SHAPE, shift_px=(3.0, -2.0))
    template_header["MAGZP"] = ZERO_POINT
    fits.PrimaryHDU(_template(seed=1), science_header).writeto(tmp_path / "science.fits")
    fits.PrimaryHDU(_template(), template_header).writeto(tmp_path / "template.fits")

    sources = visit_reference_sources(str(tmp_path / "science.fits"), str(tmp_path / "template.fits"), "", 3.0)

    # where the two WCS put the star of template pixel STAR on the science grid (a few pixels from STAR)
    expected = WCS(science_header).world_to_pixel(WCS(template_header).pixel_to_world(STAR[0], STAR[1]))
    assert np.hypot(expected[0] - STAR[0], expected[1] - STAR[1]) > 3
    star = _nearest(sources, *expected)
    assert np.hypot(sources.x[star] - expected[0], sources.y[star] - expected[1]) < 0.3
    assert np.isfinite(sources.mag).all()
