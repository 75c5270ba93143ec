"""Synthetic transients on galaxies: a minor planet's signal placed, static, at a chosen host offset.

Minor planets (MPs) matched to detections are labelled real, but they sit on empty sky. To teach the classifier
transients on galaxies we move an MP's *signal* onto a galaxy of the same visit. The published method (gotorb)
summed the MP's stamp and the galaxy's stamp. Here the MP's stamps are first fitted with a noise-free circular
Moffat model (:func:`fit_point_source`), and only that model plus the photon noise it would carry is added
(:func:`add_static_source`, :func:`inject_point_sources`). Compared with summing whole stamps:

- **Sky and noise are counted once.** A summed science stamp holds two skies and the sky and read noise of two
  places (variance doubled); a summed difference stamp holds two subtraction noise fields. Here the galaxy's
  pixels keep their own sky and noise, and the only extra noise is the Poisson noise of the added signal
  (variance ``model / gain`` in ADU² per sub-exposure), as a real source would add.
- **The transient is static.** An MP moves between sub-exposures, so a summed stamp carries its motion into
  the sub-frame channels (``subframe_ptp`` lights up as it does for a mover). Here the same model, at the same
  position, goes into every sub-exposure; each sub-exposure gets its own noise draw, so the sub-frame channels
  show only the noise spread a real static source has.
- **The template channel is exactly the galaxy's.** A summed template stamp adds the sky, noise and any faint
  sources at the MP's place; here the template is untouched (a new transient is not in the template).

The science stack gets the model plus the *mean* of the per-sub-exposure noise draws, and the difference image
gets the model fitted to the MP's difference stamp plus that same mean draw, so science and difference carry
one noise realisation of the added signal, as they would for a real source. The survey stacks by median; the
mean is the Gaussian approximation of the added noise (the median of a few sub-exposures is at most ~25 % noisier).

A transient can also be *faded* (:func:`add_faded_source`): present in the template and gone from the science
image, as a supernova that was there when the template was taken, so that the subtraction is negative. Surveys
with a single epoch per subtraction orient nothing for the classifier: roughly two alerts in five of ZTF's are such
negative subtractions of real sources, and a classifier that only ever saw positive real ones calls them bogus.

Conventions are those of :mod:`bayesrb.stamps.extract`: a pixel position is ``(x, y)`` with ``x`` the column and
``y`` the row, 0-based, pixel centres at integers; arrays are indexed ``[row, col]`` = ``[y, x]``. Images are in
ADU per sub-exposure.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from bayesrb.stamps.extract import CHANNELS_BASE, extract_stamps

__all__ = [
    "BETA_RANGE",
    "CENTRE_RANGE_PX",
    "HOST_OFFSET_UNITS",
    "PointSource",
    "VisitImages",
    "add_faded_source",
    "add_static_source",
    "draw_host_offsets",
    "fit_point_source",
    "inject_point_sources",
]

#: Allowed Moffat index in :func:`fit_point_source`.
BETA_RANGE: tuple[float, float] = (1.5, 8.0)
#: How far (pixels, along x and along y) the fitted centre may move from the stamp centre.
CENTRE_RANGE_PX: float = 3.0
#: Smallest FWHM (pixels) a fit may return; below this a "source" is a hot pixel, not a PSF.
MIN_FWHM_PX: float = 1.0
#: Sub-pixel samples per FWHM along each axis when integrating a profile over pixels (peak pixel error < 0.4 %).
SAMPLES_PER_FWHM: int = 12
#: Units :func:`draw_host_offsets` accepts for the largest offset.
HOST_OFFSET_UNITS: tuple[str, ...] = ("arcsec", "hlr")

_START_BETA = 3.0


@dataclass(frozen=True)
class PointSource:
    """A noise-free circular Moffat point source.

    The surface brightness is ``I(r) = flux (beta - 1) / (pi alpha^2) (1 + r^2 / alpha^2)^-beta`` per pixel
    area, with ``alpha = fwhm_px / (2 sqrt(2^(1/beta) - 1))``; it integrates to ``flux`` over the infinite plane.

    Attributes
    ----------
    flux : float
        Total flux, ADU.
    x, y : float
        Centre in pixel coordinates (``x`` = column, ``y`` = row) of the array it was fitted on.
    fwhm_px : float
        Full width at half maximum, pixels; positive.
    beta : float
        Moffat index; above 1 so that the total flux is finite.
    """

    flux: float
    x: float
    y: float
    fwhm_px: float
    beta: float

    def __post_init__(self):
        if not np.isfinite([self.flux, self.x, self.y, self.fwhm_px, self.beta]).all():
            raise ValueError(f"point-source parameters must be finite, got {self}")
        if self.fwhm_px <= 0 or self.beta <= 1:
            raise ValueError(f"a Moffat needs fwhm_px > 0 and beta > 1, got fwhm_px={self.fwhm_px}, beta={self.beta}")

    @property
    def alpha_px(self) -> float:
        """Moffat core radius ``alpha``, pixels."""
        return self.fwhm_px / (2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def image(self, shape: tuple[int, int], x: float | None = None, y: float | None = None, *,
              oversample: int | None = None) -> np.ndarray:
        """Render the profile, integrated over pixels, on an array of ``shape``; no background.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)`` of the output array.
        x, y : float, optional
            Centre in pixel coordinates of the output array (``x`` = column, ``y`` = row); default the
            source's own ``(x, y)``.
        oversample : int, optional
            Sub-pixel samples per pixel along each axis (midpoint rule); default
            ``ceil(SAMPLES_PER_FWHM / fwhm_px)``, which keeps every pixel within 0.4 % of its exact integral.

        Returns
        -------
        numpy.ndarray
            ``float64`` array ``[row, col]`` in ADU. It sums to ``flux`` less the flux that falls outside it.
        """
        x = self.x if x is None else x
        y = self.y if y is None else y
        oversample = oversample or int(np.ceil(SAMPLES_PER_FWHM / self.fwhm_px))
        sub = (np.arange(oversample) + 0.5) / oversample - 0.5
        dy = np.arange(shape[0])[:, None] + sub - y  # (rows, oversample)
        dx = np.arange(shape[1])[:, None] + sub - x  # (cols, oversample)
        r2 = dy[:, :, None, None] ** 2 + dx[None, None] ** 2  # (rows, oversample, cols, oversample)
        alpha2 = self.alpha_px**2
        mean_profile = ((1.0 + r2 / alpha2) ** -self.beta).mean(axis=(1, 3))
        return self.flux * (self.beta - 1.0) / (np.pi * alpha2) * mean_profile


def fit_point_source(stamp: np.ndarray, sigma: float | np.ndarray, fwhm_guess_px: float) -> PointSource:
    """Fit a circular Moffat plus a constant background to a stamp with a source near its centre.

    Weighted least squares (``scipy.optimize.least_squares``, weights ``1 / sigma``). The centre is bounded to
    :data:`CENTRE_RANGE_PX` of the stamp centre ``((cols - 1) / 2, (rows - 1) / 2)``, ``beta`` to
    :data:`BETA_RANGE`, the FWHM to ``[max(MIN_FWHM_PX, fwhm_guess_px / 2), 3 fwhm_guess_px]`` (and at most
    half the stamp). The profile is integrated over pixels as in :meth:`PointSource.image`.

    Parameters
    ----------
    stamp : numpy.ndarray
        2-D stamp ``[row, col]``, ADU. Pixels exactly 0 (edge padding of extracted stamps) or not finite get
        zero weight.
    sigma : float or numpy.ndarray
        Noise per pixel, ADU: a scalar or an array of the stamp's shape. Pixels with non-finite or non-positive
        ``sigma`` get zero weight.
    fwhm_guess_px : float
        Starting FWHM, pixels (e.g. the visit's seeing).

    Returns
    -------
    PointSource
        Flux and shape of the fitted source, its centre ``(x, y)`` in the stamp's pixel coordinates. The
        fitted background is discarded.

    Raises
    ------
    ValueError
        If the stamp is not 2-D, ``sigma`` does not match it, there are too few usable pixels, there is no
        positive signal near the centre, the fit does not converge, or the fitted flux is not positive.
    """
    stamp = np.asarray(stamp, dtype=np.float64)
    if stamp.ndim != 2:
        raise ValueError(f"stamp must be 2-D, got shape {stamp.shape}")
    weight = _fit_weights(stamp, sigma)
    data = np.where(weight > 0, stamp, 0.0)
    start, lower, upper = _start_and_bounds(data, weight, fwhm_guess_px)
    oversample = int(np.ceil(SAMPLES_PER_FWHM / fwhm_guess_px))  # fixed, so the model is smooth in the parameters

    def residuals(params: np.ndarray) -> np.ndarray:
        flux, x, y, fwhm, beta, background = params
        model = PointSource(flux, x, y, fwhm, beta).image(stamp.shape, oversample=oversample) + background
        return ((model - data) * weight).ravel()

    result = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
    if not result.success:
        raise ValueError(f"point-source fit did not converge: {result.message}")
    flux, x, y, fwhm, beta, _ = result.x
    if not flux > 0:
        raise ValueError(f"fitted point-source flux is not positive ({flux:.4g} ADU)")
    return PointSource(float(flux), float(x), float(y), float(fwhm), float(beta))


def _fit_weights(stamp: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Per-pixel weights ``1 / sigma``, zero for padding, non-finite pixels and unusable ``sigma``."""
    try:
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), stamp.shape)
    except ValueError:
        raise ValueError(f"sigma must be a scalar or of the stamp's shape {stamp.shape}, "
                         f"got shape {np.shape(sigma)}") from None
    usable = np.isfinite(stamp) & (stamp != 0) & np.isfinite(sigma) & (sigma > 0)
    n_params = 6
    if usable.sum() <= n_params:
        raise ValueError(f"only {int(usable.sum())} usable pixels (finite, non-zero, finite positive sigma); "
                         f"need more than {n_params}")
    return np.divide(1.0, sigma, out=np.zeros(stamp.shape), where=usable)


def _start_and_bounds(data: np.ndarray, weight: np.ndarray, fwhm_guess_px: float):
    """Start values and bounds of ``(flux, x, y, fwhm, beta, background)``."""
    if not (np.isfinite(fwhm_guess_px) and fwhm_guess_px > 0):
        raise ValueError(f"fwhm_guess_px must be finite and positive, got {fwhm_guess_px}")
    rows, cols = data.shape
    x0, y0 = (cols - 1) / 2, (rows - 1) / 2
    usable = weight > 0
    background = float(np.median(data[usable]))
    near = usable & (np.hypot(*np.indices(data.shape) - np.array([y0, x0])[:, None, None]) <= 2 * fwhm_guess_px)
    flux = float((data[near] - background).sum())
    if not flux > 0:
        raise ValueError(f"no positive signal within {2 * fwhm_guess_px:.3g} px of the stamp centre")
    fwhm_lo = max(MIN_FWHM_PX, fwhm_guess_px / 2)
    fwhm_hi = max(min(3 * fwhm_guess_px, min(rows, cols) / 2), 1.01 * fwhm_lo)
    fwhm = float(np.clip(fwhm_guess_px, fwhm_lo, fwhm_hi))
    start = np.array([flux, x0, y0, fwhm, _START_BETA, background])
    lower = np.array([-np.inf, x0 - CENTRE_RANGE_PX, y0 - CENTRE_RANGE_PX, fwhm_lo, BETA_RANGE[0], -np.inf])
    upper = np.array([np.inf, x0 + CENTRE_RANGE_PX, y0 + CENTRE_RANGE_PX, fwhm_hi, BETA_RANGE[1], np.inf])
    return start, lower, upper


@dataclass
class VisitImages:
    """The images of one visit on the science pixel grid, in ADU per sub-exposure.

    Attributes
    ----------
    science : numpy.ndarray
        Stacked science image ``[row, col]``.
    template : numpy.ndarray
        Template aligned to the science grid (may hold NaN where it does not cover).
    difference : numpy.ndarray
        Difference image.
    subexposures : numpy.ndarray
        Sub-exposures ``(n_sub, rows, cols)``; ``n_sub = 0`` when the science file has none.
    gain : float
        Electrons per ADU; positive (``inf`` adds no photon noise).
    """

    science: np.ndarray
    template: np.ndarray
    difference: np.ndarray
    subexposures: np.ndarray
    gain: float

    def __post_init__(self):
        self.subexposures = np.asarray(self.subexposures)
        shape = np.shape(self.science)
        if len(shape) != 2 or np.shape(self.template) != shape or np.shape(self.difference) != shape:
            raise ValueError("science, template and difference must be 2-D on one grid, got shapes "
                             f"{[np.shape(a) for a in (self.science, self.template, self.difference)]}")
        subs = self.subexposures.shape
        if len(subs) != 3 or subs[1:] != shape:
            raise ValueError(f"subexposures must have shape (n_sub, {shape[0]}, {shape[1]}), got {subs}")
        if not self.gain > 0:
            raise ValueError(f"gain must be positive, got {self.gain}")

    def cutout(self, rows: slice, cols: slice) -> "VisitImages":
        """The images over ``[rows, cols]`` (views, not copies)."""
        return VisitImages(self.science[rows, cols], self.template[rows, cols], self.difference[rows, cols],
                           self.subexposures[:, rows, cols], self.gain)


def add_static_source(images: VisitImages, x: float, y: float, science_model: PointSource,
                      difference_model: PointSource, rng: np.random.Generator) -> VisitImages:
    """Return new images with a static point source and its photon noise added at pixel ``(x, y)``.

    Every sub-exposure gets ``science_model`` centred at ``(x, y)`` plus its own Gaussian noise draw of variance
    ``model / gain``; the science stack gets the model plus the mean of those draws; the difference gets
    ``difference_model`` at ``(x, y)`` plus the same mean draw; the template is returned as is. Meant for small
    windows (every pixel of the window gets the rendered profile).

    Parameters
    ----------
    images : VisitImages
        Images to add to (e.g. a :meth:`VisitImages.cutout`); not modified.
    x, y : float
        Centre in the pixel coordinates of ``images`` (``x`` = column, ``y`` = row).
    science_model, difference_model : PointSource
        Profiles (flux, FWHM, beta) for the science frames and for the difference image; their own centres
        are ignored.
    rng : numpy.random.Generator
        Source of the noise draws; ``max(n_sub, 1) * rows * cols`` standard normals are drawn.

    Returns
    -------
    VisitImages
        ``float64`` science, difference and sub-exposures; the template object of ``images``.
    """
    shape = images.science.shape
    signal = science_model.image(shape, x, y)
    n_draws = max(images.subexposures.shape[0], 1)  # a science image without sub-exposures is one exposure
    noise = rng.standard_normal((n_draws, *shape)) * np.sqrt(np.clip(signal, 0.0, None) / images.gain)
    mean_noise = noise.mean(axis=0)
    return VisitImages(
        science=images.science + signal + mean_noise,
        template=images.template,
        difference=images.difference + difference_model.image(shape, x, y) + mean_noise,
        subexposures=images.subexposures + signal + noise[: images.subexposures.shape[0]],
        gain=images.gain,
    )


def add_faded_source(images: VisitImages, x: float, y: float, template_model: PointSource,
                     difference_model: PointSource, rng: np.random.Generator) -> VisitImages:
    """Return new images with a point source in the template that is gone from the science image, at ``(x, y)``.

    The template gets ``template_model`` plus one Gaussian noise draw of variance ``model / gain`` (the photon
    noise of one exposure: a deep template has less, so this errs on the noisy side); the difference loses
    ``difference_model`` and that same draw (difference = science - template); science and sub-exposures are
    returned as they are.

    Parameters
    ----------
    images : VisitImages
        Images to add to (e.g. a :meth:`VisitImages.cutout`); not modified.
    x, y : float
        Centre in the pixel coordinates of ``images`` (``x`` = column, ``y`` = row).
    template_model, difference_model : PointSource
        Profiles for the template (its PSF) and for the difference image (the science PSF the template was
        matched to); their own centres are ignored.
    rng : numpy.random.Generator
        Source of the noise draw; ``rows * cols`` standard normals are drawn.

    Returns
    -------
    VisitImages
        ``float64`` template and difference; the science and sub-exposure objects of ``images``.
    """
    shape = images.template.shape
    signal = template_model.image(shape, x, y)
    noise = rng.standard_normal(shape) * np.sqrt(np.clip(signal, 0.0, None) / images.gain)
    return VisitImages(science=images.science, template=images.template + signal + noise,
                       difference=images.difference - difference_model.image(shape, x, y) - noise,
                       subexposures=images.subexposures, gain=images.gain)


def inject_point_sources(
    images: VisitImages,
    x: np.ndarray,
    y: np.ndarray,
    science_models: Sequence[PointSource],
    difference_models: Sequence[PointSource],
    rng: np.random.Generator,
    size: int = 55,
    channels: Sequence[str] = CHANNELS_BASE,
    *,
    faded: Sequence[bool] | None = None,
    template_fwhm_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut stamps of synthetic static transients injected at pixel positions ``(x, y)``.

    For each position, the stamp's window of the images is cut (no whole-image copies), the models are added
    with :func:`add_static_source` (or, for a faded transient, put in the template with :func:`add_faded_source`),
    and the stamp is cut from the window with
    :func:`bayesrb.stamps.extract.extract_stamps`, so the channel logic is shared. Transients are independent:
    each is injected into the original images, never into another's window.

    Parameters
    ----------
    images : VisitImages
        The visit's images; not modified.
    x, y : numpy.ndarray
        Target positions on the visit grid, ``x`` = column, ``y`` = row; 1-D of length ``N``.
    science_models, difference_models : sequence of PointSource
        ``N`` profiles each (see :func:`add_static_source`), e.g. fitted to minor planets' science and
        difference stamps with :func:`fit_point_source`.
    rng : numpy.random.Generator
        Source of the noise draws, used in the order of the positions.
    size : int, optional
        Stamp side in pixels; odd.
    channels : sequence of str, optional
        Channels in output order, as for ``extract_stamps``.
    faded : sequence of bool, optional
        Per position, whether the transient is faded: in the template with the science model's flux and beta at
        ``template_fwhm_px``, and subtracted in the difference. None: none is.
    template_fwhm_px : float, optional
        The template's FWHM in pixels; None: the science model's.

    Returns
    -------
    stamps : numpy.ndarray
        ``float32`` ``(N, size, size, C)``, indexed ``[transient, row, col, channel]``.
    flags : numpy.ndarray
        ``uint8`` ``(N,)`` flags as from ``extract_stamps`` (only ``FLAG_NAN`` can be set).

    Raises
    ------
    ValueError
        If the inputs differ in length, a position is not finite, or a stamp would reach past the image edge
        (checked for all positions before any is injected), or ``size``/``channels`` are invalid.
    """
    x, y = _check_positions(x, y, len(science_models), len(difference_models))
    faded = np.zeros(len(x), bool) if faded is None else np.asarray(faded, bool)
    if faded.shape != x.shape:
        raise ValueError(f"faded must have one entry per position ({len(x)}), got shape {faded.shape}")
    empty_stamps, empty_flags = _empty_stamps(images, size, channels)
    windows = [_stamp_window(xi, yi, size, images.science.shape) for xi, yi in zip(x, y, strict=True)]
    stamps, flags = [empty_stamps], [empty_flags]
    for xi, yi, (rows, cols), science_model, difference_model, fade in zip(
            x, y, windows, science_models, difference_models, faded, strict=True):
        x_local, y_local = xi - cols.start, yi - rows.start
        window = images.cutout(rows, cols)
        if fade:
            template_model = replace(science_model, fwhm_px=template_fwhm_px or science_model.fwhm_px)
            local = add_faded_source(window, x_local, y_local, template_model, difference_model, rng)
        else:
            local = add_static_source(window, x_local, y_local, science_model, difference_model, rng)
        stamp, flag = extract_stamps(local.science, local.template, local.difference, local.subexposures,
                                     [x_local], [y_local], size, channels)
        stamps.append(stamp)
        flags.append(flag)
    return np.concatenate(stamps), np.concatenate(flags)


def _check_positions(x, y, n_science: int, n_difference: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x`` and ``y`` as float arrays after checking they are finite and match the model counts."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.ndim != 1 or x.shape != y.shape or not len(x) == n_science == n_difference:
        raise ValueError(f"x, y, science_models and difference_models must have one length, got {x.shape}, "
                         f"{y.shape}, {n_science} and {n_difference}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _empty_stamps(images: VisitImages, size: int, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """No stamps, in the requested layout; ``extract_stamps`` on a 1-pixel corner validates size and channels."""
    corner = images.cutout(slice(0, 1), slice(0, 1))
    return extract_stamps(corner.science, corner.template, corner.difference, corner.subexposures,
                          [], [], size, channels)


def _stamp_window(x: float, y: float, size: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The ``[rows, cols]`` slices of the stamp that ``extract_stamps`` cuts at pixel ``(x, y)``.

    Raises ValueError if the stamp reaches past the edge of an image of ``shape`` ``(rows, cols)``.
    """
    half = size // 2
    row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
    if row - half < 0 or col - half < 0 or row + half >= shape[0] or col + half >= shape[1]:
        raise ValueError(f"the {size}x{size} stamp at (x, y) = ({x}, {y}) reaches past the edge of the "
                         f"{shape[1]}x{shape[0]} (x by y) image")
    return slice(row - half, row + half + 1), slice(col - half, col + half + 1)


def draw_host_offsets(rng: np.random.Generator, hlr_arcsec: np.ndarray, max_offset: float,
                      unit: str = "hlr") -> tuple[np.ndarray, np.ndarray]:
    """Draw one transient offset from its host per galaxy, uniform in offset so all offsets are covered evenly.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draws: first ``N`` offsets, then ``N`` angles.
    hlr_arcsec : numpy.ndarray
        Half-light radius of each host, arcsec; 1-D of length ``N``. With ``unit="hlr"`` it must be finite and
        positive; with ``unit="arcsec"`` only its length is used.
    max_offset : float
        Largest offset, non-negative, in ``unit``.
    unit : {"hlr", "arcsec"}, optional
        ``"arcsec"``: offsets uniform in ``[0, max_offset]`` arcsec. ``"hlr"``: ``u`` uniform in
        ``[0, max_offset]`` and the offset is ``u * hlr_arcsec`` (uniform in units of each host's radius).

    Returns
    -------
    offset_arcsec : numpy.ndarray
        ``(N,)`` offsets, arcsec.
    angle_rad : numpy.ndarray
        ``(N,)`` directions, uniform in ``[0, 2 pi)``; the caller fixes the convention (the draw is isotropic).

    Raises
    ------
    ValueError
        If ``unit`` is unknown, ``max_offset`` is negative or not finite, or ``hlr_arcsec`` is not 1-D (or,
        with ``unit="hlr"``, not finite and positive).
    """
    if unit not in HOST_OFFSET_UNITS:
        raise ValueError(f"unit must be one of {list(HOST_OFFSET_UNITS)}, got {unit!r}")
    if not (np.isfinite(max_offset) and max_offset >= 0):
        raise ValueError(f"max_offset must be finite and non-negative, got {max_offset}")
    hlr_arcsec = np.asarray(hlr_arcsec, dtype=np.float64)
    if hlr_arcsec.ndim != 1:
        raise ValueError(f"hlr_arcsec must be 1-D, got shape {hlr_arcsec.shape}")
    if unit == "hlr" and not (np.isfinite(hlr_arcsec).all() and (hlr_arcsec > 0).all()):
        raise ValueError("hlr_arcsec must be finite and positive when offsets are in half-light radii")
    offset = rng.uniform(0.0, max_offset, hlr_arcsec.shape)
    angle = rng.uniform(0.0, 2.0 * np.pi, hlr_arcsec.shape)
    return (offset * hlr_arcsec if unit == "hlr" else offset), angle
