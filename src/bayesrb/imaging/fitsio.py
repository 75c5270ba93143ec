"""Reading survey images and writing difference images, with one clear error per bad input.

Conventions: arrays are indexed ``[row, col]``; pixel coordinates are ``(x, y)`` with ``x = col`` and
``y = row``, 0-based (astropy's ``origin=0``). Every array returned here is float32 in native byte order,
so it can go straight into ``sep``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError

#: FITS errors that mean "this file cannot be read as FITS".
_FITS_ERRORS = (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, VerifyError,
                AttributeError)  # a damaged header makes astropy return a data-less _CorruptedHDU
#: The image extensions of a difference file (:func:`write_difference`).
DIFFERENCE_EXTENSIONS = ("DIFF", "NOISE", "MASK", "TEMPLATE")
#: Header keywords that describe the data layout, never copied between HDUs.
_STRUCTURAL = ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "XTENSION", "PCOUNT",
               "GCOUNT", "EXTNAME", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM")


@dataclass
class Image:
    """A 2-D image with its header and celestial WCS.

    Attributes
    ----------
    data : numpy.ndarray
        float32, native byte order, shape ``(H, W)`` indexed ``[row, col]``.
    header : astropy.io.fits.Header
        The HDU's header.
    wcs : astropy.wcs.WCS
        The celestial WCS; ``wcs.pixel_to_world(x, y)`` takes 0-based ``(x, y) = (col, row)``.
    source : str
        The file it was read from (used in error messages).
    """

    data: np.ndarray
    header: fits.Header
    wcs: WCS
    source: str = "<memory>"


class DifferenceFile(NamedTuple):
    """What :func:`read_difference` returns (a tuple, so it can be unpacked)."""

    difference: np.ndarray
    noise: np.ndarray
    mask: np.ndarray
    header: fits.Header
    wcs: WCS
    template: np.ndarray


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Mean pixel scale (arcsec / px) of a celestial WCS."""
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)


@contextmanager
def _damaged_fits(path: str | os.PathLike) -> Iterator[None]:
    """Turn astropy's errors on a damaged header or data block, met while reading ``path``, into BadInputError."""
    try:
        yield
    except _FITS_ERRORS as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(path, f"corrupt FITS file ({type(exc).__name__}: {exc})") from exc


def _open(path: str | os.PathLike) -> fits.HDUList:
    """Open a FITS file fully into memory, turning every failure into a :class:`BadInputError`."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "file does not exist (or is not a regular file)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:  # force every data block to be read now, inside the error handling
                _ = hdu.data
    except _FITS_ERRORS as exc:
        raise BadInputError(path, f"corrupt or truncated FITS file ({exc})") from exc
    for w in caught:
        if "truncated" in str(w.message).lower():
            hdul.close()
            raise BadInputError(path, f"truncated FITS file ({w.message})")
    return hdul


def _as_image_array(hdu, path, ext) -> np.ndarray:
    """Validate the data of one HDU and return it as native float32, with every non-finite pixel NaN."""
    if hdu.data is None:
        raise BadInputError(path, f"HDU {ext!r} has no image data")
    if hdu.data.ndim != 2:
        raise BadInputError(path, f"HDU {ext!r} is not a 2-D image (shape {hdu.data.shape})")
    try:
        data = np.asarray(hdu.data).astype(np.float32)  # astype to native float32 also byte-swaps
    except (TypeError, ValueError) as exc:
        raise BadInputError(path, f"HDU {ext!r} does not hold numeric image data ({exc})") from exc
    finite = np.isfinite(data)
    data[~finite] = np.nan  # inf is unusable like NaN: masked from here on
    if not finite.any():
        raise BadInputError(path, f"HDU {ext!r} contains no finite pixels (all NaN or inf)")
    values = data[finite]
    if values.min() == values.max():
        raise BadInputError(path, f"HDU {ext!r} is constant (every finite pixel = {values.min():g})")
    return data


def _celestial_wcs(header: fits.Header, shape, path, ext) -> WCS:
    """A valid 2-D celestial WCS from ``header`` or a :class:`BadInputError`."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyWarning)
            wcs = WCS(header)
    except Exception as exc:  # astropy raises several unrelated types for broken WCS keywords
        raise BadInputError(path, f"HDU {ext!r} has an invalid WCS ({exc})") from exc
    if any("'cdfix'" in str(w.message) for w in caught):  # astropy silently replaced a singular CD matrix
        raise BadInputError(path, f"HDU {ext!r} has an invalid WCS (singular CD matrix)")
    if not wcs.has_celestial or wcs.naxis != 2:
        raise BadInputError(path, f"HDU {ext!r} has no celestial WCS (need CTYPE1/2 = RA---xxx/DEC--xxx)")
    wcs = wcs.celestial
    try:
        centre = wcs.all_pix2world([[shape[1] / 2.0, shape[0] / 2.0]], 0)
        scale = proj_plane_pixel_scales(wcs)
    except Exception as exc:
        raise BadInputError(path, f"HDU {ext!r} has an unusable WCS ({exc})") from exc
    if not np.all(np.isfinite(centre)) or not np.all(np.isfinite(scale) & (scale > 0)):
        raise BadInputError(path, f"HDU {ext!r} has a degenerate WCS (non-finite or zero pixel scale)")
    return wcs


def read_header(path: str | os.PathLike, ext: int | str = 0) -> fits.Header:
    """Read one HDU's header.

    Raises
    ------
    BadInputError
        Naming ``path``: missing file, corrupt or truncated FITS, missing HDU.
    """
    hdul = _open(path)
    with hdul, _damaged_fits(path):
        try:
            return hdul[ext].header.copy()
        except (KeyError, IndexError) as exc:
            raise BadInputError(path, f"has no HDU {ext!r}") from exc


def read_image(path: str | os.PathLike, ext: int | str = 0) -> Image:
    """Read one image HDU with its celestial WCS.

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file.
    ext : int or str, optional
        HDU index or EXTNAME (default: the primary HDU).

    Returns
    -------
    Image
        float32 native-endian data indexed ``[row, col]`` (inf pixels become NaN, i.e. masked), the header and the
        celestial WCS.

    Raises
    ------
    BadInputError
        Naming ``path``: missing file, corrupt or truncated FITS, missing HDU, no 2-D image data,
        missing or invalid celestial WCS, all-NaN or constant image.
    """
    hdul = _open(path)
    with hdul, _damaged_fits(path):
        try:
            hdu = hdul[ext]
        except (KeyError, IndexError) as exc:
            raise BadInputError(path, f"has no HDU {ext!r}") from exc
        data = _as_image_array(hdu, path, ext)
        header = hdu.header.copy()
    wcs = _celestial_wcs(header, data.shape, path, ext)
    return Image(data=data, header=header, wcs=wcs, source=str(path))


def _subexposure_index(hdu) -> int | None:
    """The number ``n`` of an ``EXTNAME = SUBEXPn`` HDU, else None."""
    name = str(hdu.header.get("EXTNAME", "")).strip().upper()
    if name.startswith("SUBEXP") and name[6:].isdigit():
        return int(name[6:])
    return None


def read_subexposures(path: str | os.PathLike) -> np.ndarray:
    """Read the ``SUBEXP1..n`` extensions of a science file as one stack.

    Parameters
    ----------
    path : str or os.PathLike
        A science FITS file whose primary HDU is the stack.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, H, W)`` ordered by the extension number, indexed ``[i, row, col]``, non-finite pixels
        NaN; shape ``(0, H, W)`` when the file has no sub-exposures.

    Raises
    ------
    BadInputError
        If the file cannot be read or a sub-exposure's shape differs from the primary image.
    """
    hdul = _open(path)
    with hdul, _damaged_fits(path):
        primary = hdul[0].data
        if primary is None or primary.ndim != 2:
            raise BadInputError(path, "primary HDU is not a 2-D image")
        shape = primary.shape
        subs = sorted((n, hdu) for hdu in hdul[1:] if (n := _subexposure_index(hdu)) is not None)
        stack = np.empty((len(subs), *shape), dtype=np.float32)
        for i, (n, hdu) in enumerate(subs):
            if hdu.data is None or hdu.data.shape != shape:
                got = None if hdu.data is None else hdu.data.shape
                raise BadInputError(path, f"SUBEXP{n} has shape {got}, the stack has {shape}")
            stack[i] = hdu.data
    stack[~np.isfinite(stack)] = np.nan
    return stack


def _clean_header(header: fits.Header | None) -> fits.Header:
    """A copy of ``header`` without the keywords that describe the data layout."""
    out = fits.Header() if header is None else header.copy(strip=True)
    for key in _STRUCTURAL:
        out.remove(key, ignore_missing=True, remove_all=True)
    return out


def write_difference(path: str | os.PathLike, difference: np.ndarray, noise: np.ndarray, mask: np.ndarray,
                     template: np.ndarray, header: fits.Header | None) -> None:
    """Write a difference image atomically.

    The file has an empty primary HDU carrying ``header`` (minus layout keywords) and the image
    extensions ``DIFF`` (float32 ADU), ``NOISE`` (float32, 1-sigma of DIFF per pixel, ADU), ``MASK``
    (uint8, 1 where DIFF is meaningless) and ``TEMPLATE`` (float32, the template resampled onto this grid,
    template ADU, NaN where it has no coverage; stamps are cut from it). Each extension also carries
    ``header``'s WCS keywords.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written to a temporary sibling and renamed on success.
    difference, noise, mask, template : numpy.ndarray
        Same-shape 2-D arrays indexed ``[row, col]``.
    header : astropy.io.fits.Header or None
        Usually the science header (WCS, MJD-OBS, MAGZP, ...).

    Raises
    ------
    ValueError
        If the four arrays are not 2-D of one shape.
    """
    arrays = {name: np.asarray(a) for name, a in
              (("difference", difference), ("noise", noise), ("mask", mask), ("template", template))}
    if arrays["difference"].ndim != 2 or len({a.shape for a in arrays.values()}) != 1:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{shapes} must be 2-D arrays of one shape")
    primary_header = _clean_header(header)
    ext_header = fits.Header()
    if header is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            ext_header = WCS(header).celestial.to_header()
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=primary_header),
        fits.ImageHDU(arrays["difference"].astype(np.float32), header=ext_header, name="DIFF"),
        fits.ImageHDU(arrays["noise"].astype(np.float32), header=ext_header, name="NOISE"),
        fits.ImageHDU(arrays["mask"].astype(np.uint8), header=ext_header, name="MASK"),
        fits.ImageHDU(arrays["template"].astype(np.float32), header=ext_header, name="TEMPLATE"),
    ])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp)


def check_same_grid(science: Image, shape: tuple[int, ...], path: str | os.PathLike) -> None:
    """Raise :class:`BadInputError` naming both files unless an image of ``path`` has the science image's shape.

    Parameters
    ----------
    science : Image
        The science image that defines the grid.
    shape : tuple of int
        Shape of the other image.
    path : str or os.PathLike
        The other image's file.
    """
    if tuple(shape) != science.data.shape:
        raise BadInputError(path, f"image shape {tuple(shape)} differs from the science image {science.source} "
                                  f"{science.data.shape}; both must be on one pixel grid")


def is_difference_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a FITS file of :func:`write_difference` (DIFF, NOISE, MASK and TEMPLATE extensions)."""
    try:
        with fits.open(path) as hdul:
            return all(name in hdul for name in DIFFERENCE_EXTENSIONS)
    except _FITS_ERRORS:
        return False


def read_difference(path: str | os.PathLike) -> DifferenceFile:
    """Read a file written by :func:`write_difference`.

    Parameters
    ----------
    path : str or os.PathLike
        The difference-image file.

    Returns
    -------
    DifferenceFile
        ``(difference, noise, mask, header, wcs, template)``: float32, float32 and bool arrays indexed
        ``[row, col]``, the primary header, the celestial WCS and the resampled template (float32).

    Raises
    ------
    BadInputError
        If the file cannot be read, lacks one of DIFF/NOISE/MASK/TEMPLATE, they differ in shape, or it has no
        celestial WCS.
    """
    hdul = _open(path)
    with hdul, _damaged_fits(path):
        arrays = {}
        for name in DIFFERENCE_EXTENSIONS:
            if name not in hdul:
                raise BadInputError(path, f"has no {name} extension (not a bayesrb difference image)")
            if hdul[name].data is None or hdul[name].data.ndim != 2:
                raise BadInputError(path, f"extension {name} is not a 2-D image")
            arrays[name] = np.asarray(hdul[name].data)
        shapes = {name: array.shape for name, array in arrays.items()}
        if len(set(shapes.values())) > 1:
            raise BadInputError(path, f"its extensions have different shapes {shapes}")
        header = hdul[0].header.copy()
        wcs_header = hdul["DIFF"].header.copy()
    wcs = _celestial_wcs(wcs_header, arrays["DIFF"].shape, path, "DIFF")
    return DifferenceFile(difference=arrays["DIFF"].astype(np.float32), noise=arrays["NOISE"].astype(np.float32),
                          mask=arrays["MASK"].astype(bool), header=header, wcs=wcs,
                          template=arrays["TEMPLATE"].astype(np.float32))
