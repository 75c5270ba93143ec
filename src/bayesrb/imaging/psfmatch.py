"""Fit and apply a constant PSF-matching kernel on one tile: ``J ~ K * I + B``.

Conventions: arrays are indexed ``[row, col]``. The kernel is stored as ``K[row offset + hw, col offset + hw]``
and applied as a true, periodic convolution over the tile, ``(K * I)[r, c] = sum_ab K[a + hw, b + hw]
I[(r - a) mod n_rows, (c - b) mod n_cols]``. ``B`` is a polynomial of total order ``background_order`` in the
tile's pixel coordinates. ``I`` is the side that is convolved and ``J`` the other; both are NaN-free, and the
fit is made on copies whose bad pixels were replaced by the background.

Two solvers of the same least-squares problem (minimise ``sum over the tile of (J - K * I - B)^2``):

``fourier`` (:class:`FourierSolver`, the default)
    The normal equations in closed form. With a periodic convolution, the products of two shifted copies of
    ``I`` are its circular autocorrelation at the difference of the shifts, and the products of a shifted
    ``I`` with ``J`` or a background term are cross-correlations; all of them come from a handful of FFTs
    of the tile. Then one dense solve of ``(2 hw + 1)^2 + n_background`` unknowns: fast, and small in memory
    (README.md, *Benchmark*, gives the measured cost).
``sfft`` (:class:`SfftSolver`)
    The sfft package's NumPy backend (Hu et al. 2022) with a constant kernel: the same kernel to ~1e-9
    (tested), some tens of times slower and with gigabytes of memory per 1024² tile. Its first call for a tile
    shape compiles numba kernels, cached in ``NUMBA_CACHE_DIR`` (set here to ``~/.cache/bayesrb/numba`` unless
    already set).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Solution:
    """A fitted tile.

    Attributes
    ----------
    kernel : numpy.ndarray
        float64 ``(2 hw + 1, 2 hw + 1)``, ``K[row offset + hw, col offset + hw]``.
    coefficients : numpy.ndarray
        The solver's own parameter vector (kernel and background terms in its basis), for its ``apply``.
    """

    kernel: np.ndarray
    coefficients: np.ndarray


def _offsets(half_width: int) -> np.ndarray:
    """``((2 hw + 1)^2, 2)`` kernel offsets ``(row, col)`` in row-major kernel order."""
    span = np.arange(-half_width, half_width + 1)
    return np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1).reshape(-1, 2)


def _background_terms(shape: tuple[int, int], order: int) -> np.ndarray:
    """The background terms ``u^i v^j`` (``i + j <= order``) on a tile, ``(n_terms, rows, cols)``.

    ``u`` and ``v`` are the column and row coordinates scaled to [-1, 1].
    """
    v = np.linspace(-1.0, 1.0, shape[0])[:, None]
    u = np.linspace(-1.0, 1.0, shape[1])[None, :]
    return np.array([np.broadcast_to(u ** (total - j) * v**j, shape) for total in range(order + 1)
                     for j in range(total + 1)])


def _wrapped(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel placed on a tile-sized array with offset ``(a, b)`` at ``[a mod rows, b mod cols]``."""
    half_width = kernel.shape[0] // 2
    out = np.zeros(shape)
    rows, cols = _offsets(half_width).T
    out[rows % shape[0], cols % shape[1]] = kernel.ravel()
    return out


def convolve_periodic(image: np.ndarray, kernel: np.ndarray, n_threads: int = 1) -> np.ndarray:
    """``K * image`` with periodic boundaries, by FFT (float64).

    Parameters
    ----------
    image : numpy.ndarray
        2-D array, indexed ``[row, col]``.
    kernel : numpy.ndarray
        Odd square kernel, ``K[row offset + hw, col offset + hw]``, smaller than the image.
    n_threads : int, optional
        FFT workers.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``image``.
    """
    shape = image.shape
    spectrum = scipy.fft.rfft2(image.astype(np.float64), workers=n_threads)
    spectrum *= scipy.fft.rfft2(_wrapped(kernel, shape), workers=n_threads)
    return scipy.fft.irfft2(spectrum, s=shape, workers=n_threads)


class FourierSolver:
    """Constant-kernel least squares through FFT correlations (see the module docstring).

    Parameters
    ----------
    shape : tuple of int
        Tile shape ``(rows, cols)``.
    half_width : int
        Kernel half-width ``hw``.
    background_order : int
        Total polynomial order of the differential background (0-3).
    n_threads : int
        FFT workers.
    """

    def __init__(self, shape: tuple[int, int], half_width: int, background_order: int, n_threads: int):
        self.shape, self.half_width, self.n_threads = tuple(shape), half_width, n_threads
        self.offsets = _offsets(half_width)
        self.terms = _background_terms(self.shape, background_order)
        self.term_spectra = scipy.fft.rfft2(self.terms, axes=(-2, -1), workers=n_threads)
        self.term_products = np.einsum("kij,lij->kl", self.terms, self.terms)

    def _correlation_at_offsets(self, spectrum_i, spectrum_x, lags) -> np.ndarray:
        """``sum_p I(p) X(p + d)`` at each lag ``d`` (rows of ``lags``), from both spectra."""
        correlation = scipy.fft.irfft2(np.conj(spectrum_i) * spectrum_x, s=self.shape, axes=(-2, -1),
                                       workers=self.n_threads)
        return correlation[..., lags[:, 0] % self.shape[0], lags[:, 1] % self.shape[1]]

    def solve(self, masked_i: np.ndarray, masked_j: np.ndarray) -> Solution:
        """Fit ``J ~ K * I + B`` on the masked (NaN-free) copies of one tile.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the normal equations are singular (e.g. a featureless tile).
        """
        i_img, j_img = np.asarray(masked_i, np.float64), np.asarray(masked_j, np.float64)
        spectrum_i = scipy.fft.rfft2(i_img, workers=self.n_threads)
        n_kernel = len(self.offsets)
        differences = (self.offsets[:, None, :] - self.offsets[None, :, :]).reshape(-1, 2)
        normal = np.empty((n_kernel + len(self.terms),) * 2)
        normal[:n_kernel, :n_kernel] = self._correlation_at_offsets(spectrum_i, spectrum_i, differences).reshape(
            n_kernel, n_kernel)
        cross_terms = self._correlation_at_offsets(spectrum_i, self.term_spectra, self.offsets)
        normal[:n_kernel, n_kernel:] = cross_terms.T
        normal[n_kernel:, :n_kernel] = cross_terms
        normal[n_kernel:, n_kernel:] = self.term_products
        rhs = np.concatenate([
            self._correlation_at_offsets(spectrum_i, scipy.fft.rfft2(j_img, workers=self.n_threads), self.offsets),
            np.einsum("kij,ij->k", self.terms, j_img)])
        coefficients = np.linalg.solve(normal, rhs)
        size = 2 * self.half_width + 1
        return Solution(coefficients[:n_kernel].reshape(size, size), coefficients)

    def apply(self, i_img: np.ndarray, j_img: np.ndarray, solution: Solution) -> np.ndarray:
        """``J - (K * I + B)`` on one tile (NaN-free inputs; periodic at the tile edges)."""
        background = np.tensordot(solution.coefficients[len(self.offsets):], self.terms, axes=1)
        return np.asarray(j_img, np.float64) - convolve_periodic(i_img, solution.kernel, self.n_threads) - background


def kernel_from_sfft(solution: np.ndarray, half_width: int, n_pixels: int) -> np.ndarray:
    """Convert a constant-kernel sfft solution vector to a standard kernel array.

    sfft expresses the kernel on a "modified delta" basis (``delta_ab - delta_00`` for off-centre
    terms) scaled by the number of tile pixels; this undoes both.

    Parameters
    ----------
    solution : numpy.ndarray
        sfft's solution vector for ``KerPolyOrder = 0``.
    half_width : int
        Kernel half-width ``hw``.
    n_pixels : int
        Number of pixels in the tile the solution was fitted on.

    Returns
    -------
    numpy.ndarray
        ``(2 hw + 1, 2 hw + 1)`` kernel, ``K[row offset + hw, col offset + hw]``.
    """
    size = 2 * half_width + 1
    coeffs = np.asarray(solution[: size * size], dtype=np.float64) / n_pixels
    kernel = coeffs.reshape(size, size).copy()
    kernel[half_width, half_width] = 2.0 * coeffs[(size * size) // 2] - coeffs.sum()
    return kernel


def _ensure_numba_cache_dir() -> None:
    """Point NUMBA_CACHE_DIR at a writable directory unless the user already chose one."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    for candidate in (Path.home() / ".cache" / "bayesrb" / "numba",
                      Path(tempfile.gettempdir()) / f"bayesrb-numba-{os.getuid()}"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            os.environ["NUMBA_CACHE_DIR"] = str(candidate)
            return


@contextlib.contextmanager
def _quiet():
    """Route anything sfft prints to the debug log."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("sfft: %s", buffer.getvalue().strip())


class SfftSolver:
    """sfft's NumPy core for one tile shape, constant kernel: configured once, then solve/apply per tile.

    Parameters are those of :class:`FourierSolver`; ``n_threads`` also sets numba's threads.
    """

    def __init__(self, shape: tuple[int, int], half_width: int, background_order: int, n_threads: int):
        _ensure_numba_cache_dir()
        import numba
        from numba.np.ufunc.parallel import set_num_threads as set_threads
        from sfft.sfftcore.SFFTConfigure import SingleSFFTConfigure
        from sfft.sfftcore.SFFTSubtract import ElementalSFFTSubtract

        self._ess = ElementalSFFTSubtract.ESS
        self.shape, self.half_width, self.n_threads = tuple(shape), half_width, n_threads
        set_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        with _quiet():
            self.config = SingleSFFTConfigure.SSC(
                NX=shape[0], NY=shape[1], KerHW=half_width, KerPolyOrder=0, BGPolyOrder=background_order,
                ConstPhotRatio=True, BACKEND_4SUBTRACT="Numpy", NUM_CPU_THREADS_4SUBTRACT=n_threads,
                NUMBA_CACHE=True, VERBOSE_LEVEL=0)
        numba.set_num_threads = set_threads  # sfft overwrites this function with an int; put it back

    def _run(self, i_img, j_img, coefficients, subtract):
        with _quiet():
            return self._ess(PixA_I=np.ascontiguousarray(i_img, np.float64),
                             PixA_J=np.ascontiguousarray(j_img, np.float64), SFFTConfig=self.config,
                             SFFTSolution=coefficients, Subtract=subtract, BACKEND_4SUBTRACT="Numpy",
                             NUM_CPU_THREADS_4SUBTRACT=self.n_threads, VERBOSE_LEVEL=0)

    def solve(self, masked_i: np.ndarray, masked_j: np.ndarray) -> Solution:
        """Fit ``J ~ K * I + B`` on the masked (NaN-free) copies of one tile."""
        coefficients = self._run(masked_i, masked_j, None, False)[0]
        return Solution(kernel_from_sfft(coefficients, self.half_width, self.shape[0] * self.shape[1]),
                        coefficients)

    def apply(self, i_img: np.ndarray, j_img: np.ndarray, solution: Solution) -> np.ndarray:
        """``J - (K * I + B)`` on one tile (NaN-free inputs; periodic at the tile edges)."""
        return self._run(i_img, j_img, solution.coefficients, True)[1]


#: The solvers by their config name (``imaging.kernel_fit``).
SOLVERS = {"fourier": FourierSolver, "sfft": SfftSolver}
