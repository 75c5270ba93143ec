"""Cut fixed-size multi-channel stamps around candidates from aligned images.

All images share one pixel grid. A pixel position is written ``(x, y)`` with ``x`` the column and ``y`` the
row, 0-based, with pixel centres at integer coordinates (so pixel ``[row, col]`` covers
``col - 0.5 <= x < col + 0.5``). Arrays are indexed ``[row, col]`` = ``[y, x]``. Stamps are returned as
``(N, size, size, C)``: candidate, row, column, channel.

Extraction is a pixel-exact copy (no interpolation): each stamp is centred on the pixel nearest to the
candidate position, ``col = floor(x + 0.5)``, ``row = floor(y + 0.5)`` (halves round up), and stamp pixel
``[i, j]`` is image pixel ``[row - size // 2 + i, col - size // 2 + j]``.
"""

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "CHANNELS_BASE",
    "CHANNELS_EXTRA",
    "CHANNELS_ALL",
    "FLAG_EDGE",
    "FLAG_NAN",
    "extract_stamps",
]

#: Default channel order: science, aligned template, difference, and the peak-to-peak spread of the
#: sub-exposures (which lights up moving objects and cosmic rays).
CHANNELS_BASE: tuple[str, ...] = ("science", "template", "difference", "subframe_ptp")
#: Optional extra channels: per-pixel minimum and maximum over the sub-exposures.
CHANNELS_EXTRA: tuple[str, ...] = ("subframe_min", "subframe_max")
#: Every channel :func:`extract_stamps` can produce.
CHANNELS_ALL: tuple[str, ...] = CHANNELS_BASE + CHANNELS_EXTRA

#: Flag bit: the stamp reaches past the image edge; the missing pixels are 0.
FLAG_EDGE: int = 1
#: Flag bit: the stamp contained NaN or inf pixels (masked: template not covering, bad pixels); they were set to 0.
FLAG_NAN: int = 2


def extract_stamps(
    science: np.ndarray,
    template: np.ndarray,
    difference: np.ndarray,
    subexposures: np.ndarray | Sequence[np.ndarray] | None,
    x: np.ndarray,
    y: np.ndarray,
    size: int = 55,
    channels: Sequence[str] = CHANNELS_BASE,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``size`` x ``size`` stamps of the requested channels around each candidate.

    Parameters
    ----------
    science, template, difference : numpy.ndarray
        2-D images ``[row, col]`` on one common grid. The template must already be aligned to the science
        grid; it may hold NaN where it does not cover the science image.
    subexposures : numpy.ndarray or sequence of numpy.ndarray or None
        Sub-exposures ``(n_sub, H, W)`` on the same grid. With ``n_sub == 0`` (or ``None``) the sub-frame
        channels carry no information and are all 0. With ``n_sub == 1`` ``subframe_ptp`` is 0 and
        ``subframe_min`` = ``subframe_max`` = the single sub-exposure.
    x, y : numpy.ndarray
        Candidate pixel positions, 0-based, ``x`` = column and ``y`` = row; 1-D of equal length ``N``.
        The nearest pixel must lie on the image.
    size : int, optional
        Stamp side in pixels; must be odd and positive so that the centre pixel is defined.
    channels : sequence of str, optional
        Channels in output order, each one of :data:`CHANNELS_ALL`, no repeats.

    Returns
    -------
    stamps : numpy.ndarray
        ``float32`` array ``(N, size, size, C)`` indexed ``[candidate, row, col, channel]``; the candidate
        pixel is at ``[:, size // 2, size // 2]``. Pixels beyond the image edge and NaN pixels are 0.
    flags : numpy.ndarray
        ``uint8`` array ``(N,)``, a bitmask of :data:`FLAG_EDGE` and :data:`FLAG_NAN`.

    Raises
    ------
    ValueError
        If ``size`` is not odd and positive, a channel is unknown or repeated, the images do not share one
        grid, ``x`` and ``y`` differ in length or are not finite, or a candidate lies off the image.

    Notes
    -----
    The requested channels are first assembled into one zero-padded ``(H + size - 1, W + size - 1, C)``
    ``float32`` cube (sub-frame statistics computed in the input precision), then all stamps are gathered
    at once from a sliding-window view with fancy indexing. The cost is one pass over the image plus a
    copy per stamp.
    """
    size = check_stamp_size(size)
    channels = _check_channels(channels)
    science, template, difference, subs = _check_images(science, template, difference, subexposures)
    rows, cols = _nearest_pixels(x, y, science.shape)
    cube = _channel_cube(science, template, difference, subs, channels, size // 2)
    windows = sliding_window_view(cube, (size, size), axis=(0, 1))  # (H, W, C, size, size)
    stamps = windows.transpose(0, 1, 3, 4, 2)[rows, cols]  # padded offset cancels the half-width
    flags = _edge_flags(rows, cols, science.shape, size // 2)
    flags |= _zero_nonfinite(stamps)
    return stamps, flags


def check_stamp_size(size: int) -> int:
    """Return ``size`` as an int if it is odd and positive, else raise ValueError."""
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"stamp size must be an odd positive integer, got {size!r}")
    return int(size)


def _check_channels(channels: Sequence[str]) -> tuple[str, ...]:
    """Validate channel names: known, non-empty, no repeats."""
    channels = tuple(channels)
    unknown = [c for c in channels if c not in CHANNELS_ALL]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; choose from {list(CHANNELS_ALL)}")
    if not channels or len(set(channels)) != len(channels):
        raise ValueError(f"channels must be non-empty without repeats, got {list(channels)}")
    return channels


def _check_images(science, template, difference, subexposures):
    """Return the images as arrays after checking they share one 2-D grid."""
    images = [np.asarray(a) for a in (science, template, difference)]
    shape = images[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in images):
        shapes = [a.shape for a in images]
        raise ValueError(f"science, template and difference must be 2-D on one grid, got shapes {shapes}")
    if subexposures is None or len(subexposures) == 0:
        subs = np.zeros((0, *shape), dtype=np.float32)
    else:
        subs = np.asarray(subexposures)
    if subs.ndim != 3 or subs.shape[1:] != shape:
        raise ValueError(f"subexposures must have shape (n_sub, {shape[0]}, {shape[1]}), got {subs.shape}")
    return *images, subs


def _nearest_pixels(x, y, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(row, col)`` indices of the pixels nearest to positions ``(x, y)``."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    cols = np.floor(x + 0.5).astype(np.int64)
    rows = np.floor(y + 0.5).astype(np.int64)
    off = (rows < 0) | (rows >= shape[0]) | (cols < 0) | (cols >= shape[1])
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"{int(off.sum())} candidate(s) lie off the {shape[1]}x{shape[0]} (x by y) image, "
            f"first at index {i}: (x, y) = ({x[i]}, {y[i]})"
        )
    return rows, cols


def _channel_cube(science, template, difference, subs, channels, half: int) -> np.ndarray:
    """Assemble the requested channels into a ``float32`` cube padded with ``half`` zeros on every side."""
    height, width = science.shape
    cube = np.zeros((height + 2 * half, width + 2 * half, len(channels)), dtype=np.float32)
    inner = cube[half : half + height, half : half + width]
    direct = {"science": science, "template": template, "difference": difference}
    lo, hi = _subframe_extremes(subs, channels)
    for k, name in enumerate(channels):
        if name in direct:
            inner[..., k] = direct[name]
        elif subs.shape[0] == 0:
            continue  # no sub-exposures: the channel stays 0
        elif name == "subframe_ptp":
            np.subtract(hi, lo, out=inner[..., k], casting="same_kind")
        else:
            inner[..., k] = lo if name == "subframe_min" else hi
    return cube


def _subframe_extremes(subs: np.ndarray, channels) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-pixel minimum and maximum over the sub-exposures, or ``None`` if not needed or none exist."""
    if subs.shape[0] == 0 or not any(c.startswith("subframe_") for c in channels):
        return None, None
    return subs.min(axis=0), subs.max(axis=0)


def _edge_flags(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], half: int) -> np.ndarray:
    """Return :data:`FLAG_EDGE` for stamps reaching past the image edge, else 0 (``uint8``)."""
    edge = (rows < half) | (rows >= shape[0] - half) | (cols < half) | (cols >= shape[1] - half)
    return edge.astype(np.uint8) * np.uint8(FLAG_EDGE)


def _zero_nonfinite(stamps: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Set NaN and inf pixels to 0 in place; return :data:`FLAG_NAN` for the stamps that had any (``uint8``).

    Works on ``batch`` stamps at a time so that the temporary mask stays small.
    """
    had_nan = np.zeros(stamps.shape[0], dtype=bool)
    for start in range(0, stamps.shape[0], batch):
        block = stamps[start : start + batch]
        bad = ~np.isfinite(block)
        had_nan[start : start + batch] = bad.any(axis=(1, 2, 3))
        if had_nan[start : start + batch].any():
            block[bad] = 0.0
    return had_nan.astype(np.uint8) * np.uint8(FLAG_NAN)
