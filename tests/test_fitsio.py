"""FITS reading/writing: round trips and one clear BadInputError per kind of bad input."""

import logging

import numpy as np
import pytest
from astropy.io import fits
from imaging_fakes import make_pair, make_wcs_header

from bayesrb.errors import BadInputError
from bayesrb.imaging.align import align_template
from bayesrb.imaging.fitsio import read_difference, read_image, read_subexposures, write_difference
from bayesrb.imaging.inputs import check_usable_area


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("pair"), shape=(64, 64), n_stars=10, saturated_star=False)


def _write(path, data, header=None):
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path


def test_read_image_and_subexposures(pair):
    img = read_image(pair.science_path)
    assert img.data.dtype == np.float32 and img.data.dtype.isnative
    assert img.data.shape == (64, 64)
    assert img.wcs.has_celestial and img.source == str(pair.science_path)
    ra, dec = img.wcs.all_pix2world([[31.5, 31.5]], 0)[0]
    assert abs(ra - 150.0) < 1e-6 and abs(dec - 2.0) < 1e-6
    subs = read_subexposures(pair.science_path)
    assert subs.shape == (3, 64, 64) and subs.dtype == np.float32
    np.testing.assert_allclose(np.median(subs, axis=0), img.data, rtol=1e-6)
    assert read_subexposures(pair.template_path).shape == (0, 64, 64)


def test_big_endian_is_swapped(tmp_path):
    data = np.arange(64.0).reshape(8, 8).astype(">f4")
    img = read_image(_write(tmp_path / "be.fits", data, make_wcs_header((8, 8))))
    assert img.data.dtype.isnative
    np.testing.assert_array_equal(img.data, np.arange(64.0).reshape(8, 8))


def test_difference_round_trip(tmp_path, pair):
    img = read_image(pair.science_path)
    rng = np.random.default_rng(1)
    d, n = rng.normal(size=(64, 64)).astype(np.float32), np.full((64, 64), 2.0, np.float32)
    d[0, 0] = np.nan
    m = np.zeros((64, 64), bool)
    m[:3] = True
    t = rng.normal(100.0, 5.0, size=(64, 64)).astype(np.float32)
    t[:, -2:] = np.nan
    out = tmp_path / "sub" / "diff.fits"
    write_difference(out, d, n, m, t, img.header)
    back = read_difference(out)
    np.testing.assert_array_equal(back.template, t)
    np.testing.assert_array_equal(back.difference, d)
    np.testing.assert_array_equal(back.noise, n)
    np.testing.assert_array_equal(back.mask, m)
    assert back.header["MAGZP"] == img.header["MAGZP"]
    np.testing.assert_allclose(back.wcs.wcs.crval, img.wcs.wcs.crval)
    assert [p.name for p in out.parent.iterdir()] == ["diff.fits"]  # no temporary left behind


def _expect_bad(path, fragment, reader=read_image):
    with pytest.raises(BadInputError) as info:
        reader(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def _header(**cards) -> fits.Header:
    """A valid 8×8 TAN header with ``cards`` changed."""
    header = make_wcs_header((8, 8))
    header.update(cards)
    return header


NOISE = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
ZERO_CD = {"CD1_1": 0.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.0}


@pytest.mark.parametrize("name, data, header, fragment", [
    ("empty", None, _header(), "no image data"),
    ("cube", np.ones((2, 8, 8), np.float32), None, "not a 2-D image"),
    ("no_wcs", NOISE, None, "no celestial WCS"),
    ("singular_wcs", NOISE, _header(**ZERO_CD), "WCS"),
    ("unknown_projection", NOISE, _header(CTYPE1="RA---XYZ", CTYPE2="DEC--XYZ"), "WCS"),
    ("all_nan", np.full((8, 8), np.nan, np.float32), _header(), "no finite pixels"),
    ("constant", np.full((8, 8), 7.0, np.float32), _header(), "constant"),
])
def test_bad_image_is_one_error_naming_the_file(tmp_path, name, data, header, fragment):
    _expect_bad(_write(tmp_path / f"{name}.fits", data, header), fragment)


def test_missing_file(tmp_path):
    _expect_bad(tmp_path / "nope.fits", "does not exist")


def test_truncated_file(tmp_path, pair):
    raw = pair.science_path.read_bytes()
    path = tmp_path / "truncated.fits"
    path.write_bytes(raw[: 2880 + 4000])  # header plus part of the primary data
    _expect_bad(path, "truncated")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.fits"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    _expect_bad(path, "corrupt")
    _expect_bad(path, "corrupt", reader=read_subexposures)


def test_inf_pixels_read_as_nan_and_all_inf_is_rejected(tmp_path):
    data = np.arange(64.0, dtype=np.float32).reshape(8, 8)
    data[2, 3], data[4, 5] = np.inf, -np.inf
    img = read_image(_write(tmp_path / "inf.fits", data, make_wcs_header((8, 8))))
    assert np.isnan(img.data[2, 3]) and np.isnan(img.data[4, 5]) and np.isfinite(img.data).sum() == 62
    _expect_bad(_write(tmp_path / "allinf.fits", np.full((8, 8), np.inf, np.float32), make_wcs_header((8, 8))),
                "no finite pixels")


def test_inf_subexposure_pixels_read_as_nan(tmp_path):
    header = make_wcs_header((8, 8))
    sub = fits.ImageHDU(np.ones((8, 8), np.float32), name="SUBEXP1")
    sub.data[1, 1] = np.inf
    fits.HDUList([fits.PrimaryHDU(np.arange(64.0, dtype=np.float32).reshape(8, 8), header), sub]).writeto(
        tmp_path / "subs.fits")
    stack = read_subexposures(tmp_path / "subs.fits")
    assert np.isnan(stack[0, 1, 1]) and np.isfinite(stack).sum() == 63


@pytest.mark.parametrize("fail", [False, True])
def test_low_usable_area_warns_or_fails_naming_the_file(tmp_path, caplog, fail):
    data = np.arange(100.0, dtype=np.float32).reshape(10, 10)
    data[:8] = np.nan  # 20 % usable, like a science image mostly off the detector
    img = read_image(_write(tmp_path / "holey.fits", data, make_wcs_header((10, 10))))
    assert check_usable_area(img, 0.1, fail=fail) == pytest.approx(0.2)
    if fail:
        with pytest.raises(BadInputError, match=r"holey.fits: only 20.0 % of the pixels are finite"):
            check_usable_area(img, 0.5, fail=True)
    else:
        with caplog.at_level(logging.WARNING, logger="bayesrb"):
            check_usable_area(img, 0.5, fail=False)
        assert "holey.fits: only 20.0 % of the pixels are finite" in caplog.text


def test_template_without_overlap(tmp_path, pair):
    sci = read_image(pair.science_path)
    far = make_wcs_header((64, 64), ra0=151.0)
    tmpl_path = _write(tmp_path / "far.fits", read_image(pair.template_path).data, far)
    with pytest.raises(BadInputError) as info:
        align_template(read_image(tmpl_path), sci)
    assert str(tmpl_path) in str(info.value) and "does not overlap" in str(info.value)


def test_template_with_too_little_overlap(tmp_path, pair):
    sci = read_image(pair.science_path)
    edge = make_wcs_header((64, 64), shift_px=(60.0, 0.0))  # 4 columns of overlap = 6 %
    tmpl_path = _write(tmp_path / "edge.fits", read_image(pair.template_path).data, edge)
    aligned = align_template(read_image(tmpl_path), sci, min_coverage=0.01)
    assert 0.02 < np.isfinite(aligned).mean() < 0.1
    with pytest.raises(BadInputError, match="covers only"):
        align_template(read_image(tmpl_path), sci, min_coverage=0.2)
