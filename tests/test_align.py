"""Template alignment: bilinear resampling through two WCS, checked by hand and against reproject bit for bit."""

import numpy as np
import pytest
from astropy.wcs import WCS
from imaging_fakes import make_wcs_header
from reproject import reproject_interp

from bayesrb.imaging.align import resample_bilinear


def _reproject(data, data_wcs, out_wcs, shape):
    values, footprint = reproject_interp((data, data_wcs), out_wcs, shape_out=shape, order="bilinear",
                                         return_footprint=True, roundtrip_coords=False)
    values = np.asarray(values, dtype=np.float32)
    values[footprint <= 0] = np.nan
    return values


def _sip_header(shape):
    """A TAN-SIP header: a second-order distortion of up to ~1 px at the corners."""
    header = make_wcs_header(shape, rotation_deg=1.0)
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header["A_ORDER"], header["B_ORDER"] = 2, 2
    header["A_2_0"], header["A_0_2"], header["B_1_1"] = 2e-5, -1e-5, 1.5e-5
    return header


@pytest.mark.parametrize("ra0, dec0, rotation_deg, shift_px", [
    (150.0, 2.0, 0.0, (0.0, 0.0)),
    (150.0, 2.0, 1.7, (12.3, -7.8)),
    (200.0, -60.0, -2.5, (-31.4, 25.9)),
    (45.0, 89.0, 0.4, (5.5, 5.5)),
])
def test_bilinear_resampling_matches_reproject_bit_for_bit(ra0, dec0, rotation_deg, shift_px):
    rng = np.random.default_rng(3)
    data_shape, out_shape = (140, 150), (128, 120)
    data_wcs = WCS(make_wcs_header(data_shape, ra0=ra0, dec0=dec0, rotation_deg=rotation_deg, shift_px=shift_px))
    out_wcs = WCS(make_wcs_header(out_shape, ra0=ra0, dec0=dec0))
    data = rng.normal(100.0, 10.0, data_shape).astype(np.float32)
    data[40, 60] = np.nan

    ours = resample_bilinear(data, data_wcs, out_wcs, out_shape)

    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, _reproject(data, data_wcs, out_wcs, out_shape))


def test_bilinear_resampling_with_distortion_matches_reproject():
    rng = np.random.default_rng(4)
    shape = (100, 100)
    data_wcs, out_wcs = WCS(_sip_header(shape)), WCS(make_wcs_header(shape, shift_px=(2.5, -1.5)))
    data = rng.normal(size=shape).astype(np.float32)

    np.testing.assert_array_equal(resample_bilinear(data, data_wcs, out_wcs, shape),
                                  _reproject(data, data_wcs, out_wcs, shape))


@pytest.mark.parametrize("shift_px", [0.3, -0.3, 0.7, -0.7])
def test_bilinear_resampling_by_hand_inside_and_at_the_edges(shift_px):
    shape = (6, 8)
    rows, cols = np.indices(shape)
    data = (8 * rows + cols).astype(np.float32)  # linear in both axes: bilinear interpolation is exact
    data_wcs, out_wcs = WCS(make_wcs_header(shape, shift_px=(shift_px, 0.0))), WCS(make_wcs_header(shape))
    centre_x, _ = data_wcs.all_world2pix(*out_wcs.all_pix2world(3.0, 2.0, 0), 0)
    offset = float(centre_x) - 3.0  # where the output's pixel centres fall on the data's columns
    assert abs(offset) == pytest.approx(abs(shift_px), abs=1e-6)

    out = resample_bilinear(data, data_wcs, out_wcs, shape)

    # inside: interpolated; in the outer half of an edge pixel: that pixel's value; beyond it: NaN
    position = cols + offset
    expected = np.where((position < -0.5) | (position > shape[1] - 0.5), np.nan,
                        8 * rows + np.clip(position, 0, shape[1] - 1))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.isnan(out).any() == (abs(shift_px) > 0.5)
