"""Tests for bayesrb.stamps.extract: pixel-exact cutouts, centring, padding, flags, sub-frame channels."""

import numpy as np
import pytest

from bayesrb.stamps import CHANNELS_ALL, CHANNELS_BASE, FLAG_EDGE, FLAG_NAN, extract_stamps

# A non-square grid (H rows x W columns) so that swapping x/y or row/col cannot go unnoticed.
H, W = 40, 64


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    science = rng.normal(100.0, 5.0, (H, W))
    template = rng.normal(90.0, 3.0, (H, W)).astype(np.float32)
    difference = science - template
    subs = rng.normal(100.0, 5.0, (4, H, W))
    return science, template, difference, subs


def test_pixel_exact_cutouts_match_direct_slicing(images):
    science, template, difference, subs = images
    x = np.array([10.0, 30.2, 50.49, 20.0])  # columns
    y = np.array([8.0, 20.0, 31.0, 12.6])  # rows
    stamps, flags = extract_stamps(science, template, difference, subs, x, y, size=9)
    assert stamps.shape == (4, 9, 9, 4)
    assert stamps.dtype == np.float32
    assert stamps.flags.c_contiguous
    np.testing.assert_array_equal(flags, 0)
    for k, (col, row) in enumerate([(10, 8), (30, 20), (50, 31), (20, 13)]):
        window = np.s_[row - 4 : row + 5, col - 4 : col + 5]
        np.testing.assert_array_equal(stamps[k, ..., 0], science[window].astype(np.float32))
        np.testing.assert_array_equal(stamps[k, ..., 1], template[window])
        np.testing.assert_array_equal(stamps[k, ..., 2], difference[window].astype(np.float32))
        sub_window = subs[:, row - 4 : row + 5, col - 4 : col + 5]
        ptp = sub_window.max(0) - sub_window.min(0)
        np.testing.assert_array_equal(stamps[k, ..., 3], ptp.astype(np.float32))


def test_single_bright_pixel_lands_at_stamp_centre():
    x_pix, y_pix = 50, 7  # column 50, row 7: only valid this way round on a 40 x 64 image
    difference = np.zeros((H, W))
    difference[y_pix, x_pix] = 1000.0
    zeros = np.zeros((H, W))
    stamps, flags = extract_stamps(zeros, zeros, difference, None, [x_pix], [y_pix], size=11)
    diff = stamps[0, ..., CHANNELS_BASE.index("difference")]
    assert diff[5, 5] == 1000.0
    assert diff.sum() == 1000.0
    assert flags[0] == 0


@pytest.mark.parametrize(
    ("x", "y", "centre"),
    [(20.49, 10.0, (10, 20)), (20.5, 10.0, (10, 21)), (20.0, 9.5, (10, 20)), (19.51, 10.49, (10, 20))],
)
def test_rounding_to_nearest_pixel(x, y, centre):
    science = np.arange(H * W, dtype=np.float64).reshape(H, W)
    stamps, _ = extract_stamps(science, science, science, None, [x], [y], size=3, channels=("science",))
    assert stamps[0, 1, 1, 0] == science[centre]


def test_edge_padding_and_flag(images):
    science, template, difference, subs = images
    x = np.array([0.0, W - 1.0, 30.0, 30.0, 2.0])
    y = np.array([0.0, H - 1.0, 20.0, 2.0, 20.0])
    stamps, flags = extract_stamps(science, template, difference, subs, x, y, size=7)
    np.testing.assert_array_equal(flags, [FLAG_EDGE, FLAG_EDGE, 0, FLAG_EDGE, FLAG_EDGE])
    # Corner (0, 0): the top-left 3x3 block lies off the image and is zero; the rest is the image.
    sci = stamps[0, ..., 0]
    np.testing.assert_array_equal(sci[:3, :], 0.0)
    np.testing.assert_array_equal(sci[:, :3], 0.0)
    np.testing.assert_array_equal(sci[3:, 3:], science[:4, :4].astype(np.float32))
    # Opposite corner: bottom-right block off the image.
    np.testing.assert_array_equal(stamps[1, 4:, :, :], 0.0)
    np.testing.assert_array_equal(stamps[1, :, 4:, :], 0.0)
    np.testing.assert_array_equal(stamps[1, :4, :4, 0], science[-4:, -4:].astype(np.float32))
    # Near the top (row 2) and near the left (col 2) edges: one row / one column of padding.
    np.testing.assert_array_equal(stamps[3, 0], 0.0)
    np.testing.assert_array_equal(stamps[3, 1:, :, 0], science[0:6, 27:34].astype(np.float32))
    np.testing.assert_array_equal(stamps[4, :, 0], 0.0)
    np.testing.assert_array_equal(stamps[4, :, 1:, 0], science[17:24, 0:6].astype(np.float32))


def test_stamp_just_inside_is_not_flagged(images):
    science, template, difference, subs = images
    x = np.array([3.0, W - 4.0])
    y = np.array([3.0, H - 4.0])
    stamps, flags = extract_stamps(science, template, difference, subs, x, y, size=7)
    np.testing.assert_array_equal(flags, 0)
    np.testing.assert_array_equal(stamps[1, ..., 0], science[H - 7 :, W - 7 :].astype(np.float32))


def test_image_smaller_than_stamp():
    science = np.ones((5, 6))
    stamps, flags = extract_stamps(science, science, science, None, [2.0], [2.0], size=11)
    assert flags[0] == FLAG_EDGE
    assert stamps[0, ..., 0].sum() == 30.0
    np.testing.assert_array_equal(stamps[0, 3:8, 3:9, 0], 1.0)


def test_nonfinite_pixels_zeroed_and_flagged(images):
    science, template, difference, subs = images
    template = template.copy()
    template[:, :12] = np.nan  # template does not cover the left columns
    subs = subs.copy()
    subs[2, 30, 40] = np.inf
    x = np.array([14.0, 40.0, 40.0, 0.0])
    y = np.array([20.0, 30.0, 10.0, 20.0])
    stamps, flags = extract_stamps(science, template, difference, subs, x, y, size=7)
    np.testing.assert_array_equal(flags, [FLAG_NAN, FLAG_NAN, 0, FLAG_NAN | FLAG_EDGE])
    assert np.isfinite(stamps).all()
    np.testing.assert_array_equal(stamps[0, :, :1, 1], 0.0)  # columns 11 -> NaN in the template
    np.testing.assert_array_equal(stamps[0, :, 1:, 1], template[17:24, 12:18])
    np.testing.assert_array_equal(stamps[0, ..., 0], science[17:24, 11:18].astype(np.float32))  # untouched
    assert stamps[1, 3, 3, 3] == 0.0  # ptp at the inf sub-exposure pixel
    assert stamps[1, 3, 4, 3] > 0.0


def test_subframe_channels(images):
    science, template, difference, subs = images
    channels = ("subframe_max", "subframe_ptp", "subframe_min", "science")
    stamps, _ = extract_stamps(science, template, difference, subs, [30.0], [20.0], size=5, channels=channels)
    window = subs[:, 18:23, 28:33]
    np.testing.assert_array_equal(stamps[0, ..., 0], window.max(0).astype(np.float32))
    np.testing.assert_array_equal(stamps[0, ..., 1], (window.max(0) - window.min(0)).astype(np.float32))
    np.testing.assert_array_equal(stamps[0, ..., 2], window.min(0).astype(np.float32))
    # ptp is computed in float64 and then rounded: equal to max - min of the float32 channels within an ulp.
    np.testing.assert_allclose(stamps[0, ..., 1], stamps[0, ..., 0] - stamps[0, ..., 2], atol=2e-5)
    assert (stamps[0, ..., 1] > 0).all()


def test_moving_object_shows_in_ptp():
    subs = np.zeros((3, H, W))
    for k, col in enumerate((20, 22, 24)):  # moves two pixels per sub-exposure along x
        subs[k, 15, col] = 50.0
    stack = np.median(subs, axis=0)
    stamps, _ = extract_stamps(stack, stack, stack, subs, [22.0], [15.0], size=9)
    ptp = stamps[0, ..., 3]
    np.testing.assert_array_equal(np.argwhere(ptp == 50.0), [[4, 2], [4, 4], [4, 6]])
    assert ptp.sum() == 150.0


@pytest.mark.parametrize("n_sub", [0, 1])
def test_few_subexposures(images, n_sub):
    science, template, difference, subs = images
    subs = subs[:n_sub]
    stamps, flags = extract_stamps(science, template, difference, subs, [30.0], [20.0], size=5, channels=CHANNELS_ALL)
    np.testing.assert_array_equal(stamps[0, ..., 3], 0.0)  # ptp
    expected = 0.0 if n_sub == 0 else subs[0, 18:23, 28:33].astype(np.float32)
    np.testing.assert_array_equal(stamps[0, ..., 4], expected)
    np.testing.assert_array_equal(stamps[0, ..., 5], expected)
    assert flags[0] == 0


def test_no_candidates(images):
    stamps, flags = extract_stamps(*images, np.array([]), np.array([]), size=55)
    assert stamps.shape == (0, 55, 55, 4)
    assert stamps.dtype == np.float32
    assert flags.shape == (0,)


def test_channel_order_follows_request(images):
    science, template, difference, subs = images
    a, _ = extract_stamps(science, template, difference, subs, [30.0], [20.0], size=5)
    b, _ = extract_stamps(science, template, difference, subs, [30.0], [20.0], size=5, channels=CHANNELS_BASE[::-1])
    np.testing.assert_array_equal(a[..., ::-1], b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 10}, "odd"),
        ({"size": 0}, "odd"),
        ({"channels": ("science", "bogus")}, "unknown channel"),
        ({"channels": ("science", "science")}, "repeats"),
        ({"x": [70.0]}, "off the"),
        ({"y": [-0.6]}, "off the"),
        ({"x": [np.nan]}, "finite"),
        ({"x": [1.0, 2.0]}, "equal length"),
    ],
)
def test_bad_arguments(images, kwargs, match):
    science, template, difference, subs = images
    args = {"x": [10.0], "y": [10.0], "size": 5} | kwargs
    with pytest.raises(ValueError, match=match):
        extract_stamps(science, template, difference, subs, **args)


def test_mismatched_grids(images):
    science, template, difference, subs = images
    with pytest.raises(ValueError, match="one grid"):
        extract_stamps(science, template[:, :-1], difference, subs, [10.0], [10.0], size=5)
    with pytest.raises(ValueError, match="subexposures"):
        extract_stamps(science, template, difference, subs[:, :-1], [10.0], [10.0], size=5)


def test_nan_flags_across_batches():
    science = np.ones((H, W))
    science[5, 5] = np.nan
    rng = np.random.default_rng(3)
    x = rng.uniform(0, W - 1, 2500)  # more candidates than one NaN-scan batch (1024)
    y = rng.uniform(0, H - 1, 2500)
    stamps, flags = extract_stamps(science, science, science, None, x, y, size=3, channels=("science",))
    cols, rows = np.floor(x + 0.5), np.floor(y + 0.5)
    near_nan = (np.abs(cols - 5) <= 1) & (np.abs(rows - 5) <= 1)
    assert near_nan[1024:].any()
    np.testing.assert_array_equal((flags & FLAG_NAN) > 0, near_nan)
    assert not np.isnan(stamps).any()
    inside = (flags & FLAG_EDGE) == 0
    np.testing.assert_array_equal(stamps.sum(axis=(1, 2, 3))[inside], (9 - near_nan)[inside])
