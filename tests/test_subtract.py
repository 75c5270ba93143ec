"""PSF-matched subtraction on simulated pairs with known PSFs, WCS offsets and noise.

The "expected noise" is computed from the simulation's own noise realisations and the analytic matching
kernel (``FakePair.ideal_difference_noise``), never from the pipeline's noise map.
"""

import numpy as np
import pytest
import sep
from imaging_fakes import make_pair

from bayesrb.imaging.align import align_template
from bayesrb.imaging.fitsio import read_image
from bayesrb.imaging.psfmatch import SOLVERS, FourierSolver, kernel_from_sfft
from bayesrb.imaging.subtract import Difference, median_variance_factor, subtract

HW = 6  # kernel half-width used by every test (one numba compilation per tile shape for the sfft solver)


def _run(pair, **kwargs):
    sci, tmpl = read_image(pair.science_path), read_image(pair.template_path)
    return subtract(sci, align_template(tmpl, sci), tmpl.header, kernel_half_width=HW, n_threads=2, **kwargs)


def _evaluation_region(pair, diff, expected, core_radius=8, bright=2e4):
    """Unmasked, finite pixels away from the cores of stars brighter than ``bright`` ADU."""
    ok = ~diff.mask & np.isfinite(diff.difference) & np.isfinite(expected)
    for x, y, f in zip(pair.stars["x"], pair.stars["y"], pair.stars["flux"], strict=True):
        if f > bright:
            ok[max(int(y) - core_radius, 0):int(y) + core_radius + 1,
               max(int(x) - core_radius, 0):int(x) + core_radius + 1] = False
    return ok


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    pair = make_pair(tmp_path_factory.mktemp("std"), fwhm_s=3.4, fwhm_t=2.4, seed=3)
    return pair, _run(pair)


def test_result_types(standard):
    pair, diff = standard
    assert isinstance(diff, Difference)
    for arr, dtype in ((diff.difference, np.float32), (diff.noise, np.float32), (diff.mask, np.bool_)):
        assert arr.dtype == dtype and arr.shape == (192, 192)
    assert diff.convolved == "template"
    assert diff.fwhm_px == pytest.approx(3.4 / 1.24)
    assert diff.kernels.shape == (1, 2 * HW + 1, 2 * HW + 1)


def test_flux_scale(standard):
    pair, diff = standard
    assert diff.kernel_sum == pytest.approx(1.0 / pair.flux_ratio, rel=0.01)


def test_residual_rms_matches_expected_noise(standard):
    pair, diff = standard
    expected = pair.ideal_difference_noise(HW)
    region = _evaluation_region(pair, diff, expected)
    assert region.sum() > 0.6 * region.size
    ratio = np.std(diff.difference[region]) / np.std(expected[region])
    assert ratio <= 1.1, ratio
    assert abs(np.mean(diff.difference[region])) < 0.1 * np.std(expected[region])


def test_noise_map_matches_known_noise(standard):
    pair, diff = standard
    expected_noise = pair.ideal_difference_noise(HW)
    expected_sigma = pair.ideal_difference_sigma(HW)
    region = _evaluation_region(pair, diff, expected_sigma)
    # Pixel by pixel against the analytic sigma (sky and sources) ...
    ratio = diff.noise[region] / expected_sigma[region]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    assert np.percentile(ratio, 5) > 0.85 and np.percentile(ratio, 95) < 1.15
    # ... on pixels with significant source flux, where the Poisson term matters ...
    star = region & (pair.science_model - pair.params["sky_s"] > 10 * pair.science_sigma())
    assert star.sum() > 200
    assert np.median(diff.noise[star] / expected_sigma[star]) == pytest.approx(1.0, abs=0.1)
    # ... and against the empirical rms of the simulated noise.
    assert np.median(diff.noise[region]) == pytest.approx(np.std(expected_noise[region]), rel=0.1)
    assert 0.9 < diff.noise_scale < 1.1


def test_mask_covers_saturation_and_uncovered_edges(standard):
    pair, diff = standard
    x, y = int(pair.stars["x"][-1]), int(pair.stars["y"][-1])  # the saturated star
    assert diff.mask[y - 2:y + 3, x - 2:x + 3].all()
    uncovered = ~np.isfinite(diff.difference)
    assert uncovered.any() and diff.mask[uncovered].all() and np.isnan(diff.noise[uncovered]).all()
    assert diff.mask.mean() < 0.3


def test_tiles_stitch_without_seams(tmp_path):
    pair = make_pair(tmp_path, shape=(256, 256), fwhm_s=3.4, fwhm_t=2.4, seed=5, n_stars=70)
    tiled = _run(pair, tile_size=160)
    assert len(tiled.kernels) == 4
    expected = pair.ideal_difference_noise(HW)
    region = _evaluation_region(pair, tiled, expected)
    assert np.std(tiled.difference[region]) / np.std(expected[region]) <= 1.1
    # No seam: D / noise along the tile boundaries behaves like everywhere else.
    z = tiled.difference / tiled.noise
    seam = np.zeros_like(region)
    seam[118:138, :] = seam[:, 118:138] = True
    assert np.std(z[region & seam]) == pytest.approx(np.std(z[region & ~seam]), rel=0.1)


def test_broader_template_convolves_science(tmp_path):
    flux = 4000.0
    pair = make_pair(tmp_path, fwhm_s=2.6, fwhm_t=3.4, seed=7, transient=(120.3, 70.6, flux))
    diff = _run(pair)
    assert diff.convolved == "science"
    assert diff.fwhm_px == pytest.approx(3.4 / 1.24)
    assert diff.kernel_sum == pytest.approx(pair.flux_ratio, rel=0.01)
    d = np.ascontiguousarray(np.nan_to_num(diff.difference), dtype=np.float64)
    measured, measured_err, _ = sep.sum_circle(d, [120.3], [70.6], 3.0 * diff.fwhm_px, err=np.nan_to_num(diff.noise))
    assert measured[0] == pytest.approx(flux, abs=3 * measured_err[0] + 0.03 * flux)
    z = diff.difference / diff.noise
    ok = ~diff.mask & np.isfinite(z)
    assert np.median(np.abs(z[ok])) == pytest.approx(0.6745, rel=0.1)


def test_missing_optional_keys_fall_back(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = make_pair(tmp_path / "a", seed=11, fwhm_s=3.4, fwhm_t=2.4)
    bare = make_pair(tmp_path / "b", seed=11, fwhm_s=3.4, fwhm_t=2.4, drop_keys=("GAIN", "RDNOISE", "SATURATE"))
    d_full, d_bare = _run(full), _run(bare)
    ok = ~d_full.mask & ~d_bare.mask
    assert np.median(d_bare.noise[ok] / d_full.noise[ok]) == pytest.approx(1.0, abs=0.1)
    x, y = int(bare.stars["x"][-1]), int(bare.stars["y"][-1])
    assert d_bare.mask[y - 2:y + 3, x - 2:x + 3].all()  # saturation found from the clipped plateau


def test_kernel_conversion_and_median_factor():
    hw = 1
    # sfft basis: centre coefficient a00, off-centre a_ab multiply (delta_ab - delta_00); scaled by N.
    sfft = np.array([0.1, 0.0, 0.0, 0.2, 0.9, 0.0, 0.0, 0.0, 0.0]) * 100
    kernel = kernel_from_sfft(np.append(sfft, [5.0, 0.0, 0.0]), hw, 100)
    np.testing.assert_allclose(kernel.ravel(), [0.1, 0, 0, 0.2, 0.9 - 0.3, 0, 0, 0, 0])
    assert kernel.sum() == pytest.approx(0.9)
    assert median_variance_factor(1) == 1.0
    assert median_variance_factor(3) == pytest.approx(1.347, abs=0.01)
    assert median_variance_factor(101) == pytest.approx(np.pi / 2)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_kernel_orientation_matches_array_axes(solver):
    # J[r, c] = 0.5 * I[r - 1, c + 2] + 3  =>  K[hw + 1, hw - 2] = 0.5 in the documented [row, col] layout.
    rng = np.random.default_rng(0)
    i_img = rng.normal(100.0, 10.0, (192, 192))
    j_img = 0.5 * np.roll(i_img, (1, -2), axis=(0, 1)) + 3.0
    engine = SOLVERS[solver]((192, 192), HW, 1, 2)
    solution = engine.solve(i_img, j_img)
    expected = np.zeros_like(solution.kernel)
    expected[HW + 1, HW - 2] = 0.5
    np.testing.assert_allclose(solution.kernel, expected, atol=1e-6)
    assert np.abs(engine.apply(i_img, j_img, solution)).max() < 1e-6


def test_fourier_solver_recovers_a_kernel_and_a_second_order_background():
    rng = np.random.default_rng(1)
    i_img = rng.normal(100.0, 10.0, (96, 128))
    kernel = np.zeros((2 * 3 + 1,) * 2)
    kernel[3, 3], kernel[2, 4], kernel[5, 1] = 0.6, 0.25, -0.1
    rows, cols = np.mgrid[0:96, 0:128]
    background = 2.0 + 0.01 * cols - 0.02 * rows + 1e-4 * rows * cols - 3e-5 * cols**2
    j_img = sum(kernel[a + 3, b + 3] * np.roll(i_img, (a, b), axis=(0, 1))
                for a in range(-3, 4) for b in range(-3, 4)) + background
    engine = FourierSolver((96, 128), 3, 2, 1)
    solution = engine.solve(i_img, j_img)
    np.testing.assert_allclose(solution.kernel, kernel, atol=1e-9)
    assert np.abs(engine.apply(i_img, j_img, solution)).max() < 1e-8


def test_fourier_and_sfft_solvers_agree_on_a_star_field(standard):
    pair, fourier = standard
    sfft = _run(pair, kernel_fit="sfft")
    np.testing.assert_allclose(fourier.kernels, sfft.kernels, rtol=0, atol=1e-7)
    ok = ~fourier.mask & np.isfinite(fourier.difference)
    assert np.abs(fourier.difference[ok] - sfft.difference[ok]).max() < 1e-4 * np.std(fourier.difference[ok])
    np.testing.assert_allclose(fourier.noise[ok], sfft.noise[ok], rtol=1e-5)
