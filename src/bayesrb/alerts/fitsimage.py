"""Decoding the FITS image of an alert cutout: a direct path for plain float images, astropy for everything else.

Alert cutouts are tiny single-HDU FITS files (ZTF: a 63x63 big-endian ``float32`` primary image with a six-card
header), and astropy's general header parsing costs far more than the pixels. :func:`read_image` therefore reads
such a file directly when its header is exactly the simple case (:func:`plain_image`) and hands anything else
(other ``BITPIX``, scaling keywords, no primary data, a short file, ...) to astropy (:func:`astropy_image`). Both
return the same native ``float32`` array for a plain image, bit for bit.
"""

import functools
import io
import warnings

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

__all__ = ["astropy_image", "header_number", "plain_image", "read_image"]

BLOCK = 2880  # bytes per FITS header or data block
CARD = 80  # bytes per header card
#: The mandatory cards of a plain image, in the order the FITS standard prescribes, and the values read directly.
PLAIN_CARDS: tuple[tuple[bytes, bytes | None], ...] = (
    (b"SIMPLE", b"T"), (b"BITPIX", b"-32"), (b"NAXIS", b"2"), (b"NAXIS1", None), (b"NAXIS2", None),
)
#: Scaling keywords and the values that leave the stored pixels unchanged.
IDENTITY_SCALING: dict[bytes, float] = {b"BSCALE": 1.0, b"BZERO": 0.0}
#: What :func:`_first_block_layout` returns for a header longer than one block.
LONG_HEADER = object()


def read_image(raw: bytes) -> np.ndarray | None:
    """Decode a FITS file's image to a native ``float32`` array.

    Parameters
    ----------
    raw : bytes
        The whole (uncompressed) FITS file.

    Returns
    -------
    numpy.ndarray or None
        ``float32`` ``[row, col, ...]``: the primary HDU's data, else the first image extension's; None if no HDU
        holds image data.

    Raises
    ------
    OSError, ValueError, TypeError, IndexError, EOFError
        If astropy cannot read the file.
    """
    image = plain_image(raw)
    return astropy_image(raw) if image is None else image


def plain_image(raw: bytes) -> np.ndarray | None:
    """Read a plain 2-D big-endian ``float32`` primary image directly, without astropy.

    A file is plain when its header starts with exactly ``SIMPLE = T``, ``BITPIX = -32``, ``NAXIS = 2`` and
    positive integer ``NAXIS1`` and ``NAXIS2``, any ``BSCALE``/``BZERO`` are 1 and 0, it has an ``END`` card,
    and it holds all ``NAXIS1 * NAXIS2`` pixels.

    Parameters
    ----------
    raw : bytes
        The whole (uncompressed) FITS file.

    Returns
    -------
    numpy.ndarray or None
        Native ``float32`` ``(NAXIS2, NAXIS1)``; None if the file is not plain (then astropy must read it).
    """
    layout = _first_block_layout(raw[:BLOCK])
    if layout is LONG_HEADER:
        layout = _layout(_header(raw))
    if layout is None:
        return None
    shape, data_start = layout
    if len(raw) < data_start + 4 * shape[0] * shape[1]:
        return None
    pixels = np.frombuffer(raw, dtype=">f4", count=shape[0] * shape[1], offset=data_start)
    return pixels.reshape(shape).astype(np.float32)


def astropy_image(raw: bytes) -> np.ndarray | None:
    """Decode a FITS file's image with astropy (see :func:`read_image`, which it serves as the fallback of).

    Astropy's warning that a card is not in the standard's fixed format is silenced: such cards (ZTF's ``SIMPLE``
    among them) decode correctly.

    Parameters
    ----------
    raw : bytes
        The whole (uncompressed) FITS file.

    Returns
    -------
    numpy.ndarray or None
        Native ``float32``, scaled as the header says; None if no HDU holds image data.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        with fits.open(io.BytesIO(raw), memmap=False) as hdus:
            data = next((hdu.data for hdu in hdus if hdu.is_image and hdu.data is not None), None)
            return None if data is None else np.array(data, dtype=np.float32)


def header_number(raw: bytes, keyword: str) -> float | None:
    """The value of a numeric card of a FITS file's primary header.

    Parameters
    ----------
    raw : bytes
        The whole (uncompressed) FITS file.
    keyword : str
        The card's keyword (its first card counts if it is repeated).

    Returns
    -------
    float or None
        None if the header has no such card, no ``END`` card, or the value is not a finite number.
    """
    header = _header(raw)
    text = None if header is None else header[0].get(keyword.encode())
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


@functools.lru_cache(maxsize=64)
def _first_block_layout(block: bytes) -> tuple[tuple[int, int], int] | None | object:
    """:func:`_layout` of a header that ends in the file's first block, :data:`LONG_HEADER` if it does not.

    Cached: a survey's cutouts share a few header blocks (ZTF's: one per cutout size).
    """
    header = _header(block)
    return LONG_HEADER if header is None else _layout(header)


def _layout(header: tuple[dict[bytes, bytes], int] | None) -> tuple[tuple[int, int], int] | None:
    """``((NAXIS2, NAXIS1), offset of the data)`` of a plain image's parsed header (:func:`_header`), else None."""
    if header is None:
        return None
    values, data_start = header
    shape = _plain_shape(values)
    return None if shape is None else (shape, data_start)


def _header(raw: bytes) -> tuple[dict[bytes, bytes], int] | None:
    """Parse the primary header: ``({keyword: value text}, offset of the data)``, or None without an ``END`` card.

    The keywords are in the order of their cards; of a repeated keyword, the first card counts.
    """
    values: dict[bytes, bytes] = {}
    for start in range(0, len(raw) - CARD + 1, CARD):
        card = raw[start:start + CARD]
        keyword = card[:8].rstrip()
        if keyword == b"END":
            return values, -(-(start + CARD) // BLOCK) * BLOCK
        if card[8:10] == b"= ":
            values.setdefault(keyword, card[10:].split(b"/", 1)[0].strip())
    return None


def _plain_shape(values: dict[bytes, bytes]) -> tuple[int, int] | None:
    """``(NAXIS2, NAXIS1)`` if the header cards describe a plain image (:func:`plain_image`), else None."""
    if list(values)[:len(PLAIN_CARDS)] != [keyword for keyword, _ in PLAIN_CARDS]:
        return None
    if any(wanted is not None and values[keyword] != wanted for keyword, wanted in PLAIN_CARDS):
        return None
    try:
        width, height = int(values[b"NAXIS1"]), int(values[b"NAXIS2"])
        scaled = any(float(values.get(keyword, identity)) != identity for keyword, identity in IDENTITY_SCALING.items())
    except ValueError:
        return None
    return None if scaled or width < 1 or height < 1 else (height, width)
