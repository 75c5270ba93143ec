"""Reading Rubin (LSST) alert packets: Avro object-container files to 29x29x3 stamps and one metadata row per alert.

A Rubin alert (schemas ``lsst.v7_x`` to ``lsst.v11_x`` of ``lsst/alert_packet``) is an Avro record with the
triggering detection, ``diaSource`` (a record of the DIASource table's fields), its history and object, and three
cutouts, ``cutoutScience``, ``cutoutTemplate`` and ``cutoutDifference``, each ``["null", "bytes"]``: a FITS file as
astropy's ``CCDData`` writes it, the calibrated image (nJy) in the primary HDU, its variance and the PSF in
extensions, and a WCS whose reference pixel (``CRPIX1``, ``CRPIX2``) is the source's position. Rubin's pipeline cuts
them square, at least 30 pixels on a side (larger for a larger footprint), centred on the source. The alert's id is
``alertId`` in schemas up to 10.x and ``diaSourceId`` from 11.0 on; either is accepted, and the alert is keyed by
the ``diaSource``'s own ``diaSourceId``. Only the fields an alert needs (:data:`SELECT`) are decoded
(:class:`bayesrb.alerts.projection.ProjectedReader`), and the history is not read: the cutouts after it are located
by the FITS signature of the first (:data:`CUTOUT_TAIL`, :mod:`bayesrb.alerts.trailing`), where a packet has all
three.

Conventions
-----------
Stamps
    Each cutout's primary image, in nJy, is cut to :data:`STAMP_SIZE` x :data:`STAMP_SIZE` pixels centred on the
    pixel nearest the source (``CRPIX`` - 1, 0-based; the cutout's centre if the header has no ``CRPIX``):
    29 is the largest odd side a minimum-size cutout covers around its source, so a larger cutout is cropped,
    never resampled (0.2" pixels: a stamp is 5.8" across). A stamp the cutout does not cover entirely (a cutout
    clipped at the detector's edge) is padded with 0 and gets :data:`~bayesrb.stamps.extract.FLAG_EDGE`.
Sign
    Rubin's difference image is science minus template for every source, as the ``difference`` channel of every
    stamp store is, so it is stored as it comes: a negative source (``psfFlux`` < 0, or ``isNegative``, spelled
    ``is_negative`` in 7.x, where the flux is null) stays negative, and ``sign`` is -1 in the metadata (+1
    otherwise).
NaN
    NaN and inf pixels (pixels without data) are set to 0 and the stamp gets
    :data:`~bayesrb.stamps.extract.FLAG_NAN`.
Metadata
    ``candidate_id`` is the ``diaSourceId``, ``visit`` is ``rubin-{visit}-{detector}``, ``x`` and ``y`` the
    source's 0-based position on its detector; ``mag`` and ``mag_err`` are AB magnitudes of ``psfFlux`` (of its
    absolute value: a negative source's magnitude is that of the flux it lost) and ``psfFluxErr``; ``fwhm`` is NaN
    (a packet has no FWHM; its PSF moments ``ixxPSF``, ``iyyPSF`` are kept as they are). Null fields, and fields an
    older schema lacks, are NaN (``""`` for text, 0 for an id, as Rubin writes 0 for no object). ``reliability``,
    Rubin's own real-bogus score, is kept for comparison only.
"""

from typing import Any

import numpy as np

from bayesrb.alerts.fitsimage import header_number
from bayesrb.alerts.packets import Alert, AlertError, Survey, cutout_fits, required_fields, stack_stamps
from bayesrb.alerts.projection import ProjectedReader
from bayesrb.alerts.trailing import TrailingBlobs
from bayesrb.stamps.extract import FLAG_EDGE

__all__ = ["COLUMNS", "CUTOUT_TAIL", "FLOAT_FIELDS", "PIXEL_SCALE_ARCSEC", "RUBIN", "SELECT", "STAMP_SIZE",
           "alert_from_record", "centred_stamp", "decode_cutout"]

#: Side of the stamps, pixels.
STAMP_SIZE: int = 29
#: Rubin's pixel scale, arcsec per pixel.
PIXEL_SCALE_ARCSEC: float = 0.2
#: AB magnitude of a flux of 1 nJy.
NJY_ZERO_POINT: float = 31.4
#: The packet field each channel of :data:`bayesrb.alerts.packets.CHANNELS` comes from.
CUTOUT_FIELDS: tuple[str, ...] = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Top-level fields a schema must have to be read as Rubin alerts.
ALERT_FIELDS: tuple[str, ...] = ("diaSource", *CUTOUT_FIELDS)
#: ``diaSource`` fields without which a record is malformed.
REQUIRED_FIELDS: tuple[str, ...] = ("diaSourceId", "visit", "detector", "midpointMjdTai", "ra", "dec")
#: ``diaSource`` measurements kept as float64 columns (null as NaN).
FLOAT_FIELDS: tuple[str, ...] = (
    "psfFlux", "psfFluxErr", "apFlux", "apFluxErr", "scienceFlux", "scienceFluxErr", "templateFlux",
    "templateFluxErr", "extendedness", "trailLength", "dipoleMeanFlux", "dipoleFluxDiff", "dipoleLength",
    "ixxPSF", "iyyPSF", "ixyPSF",
)
NEGATIVE_FLAGS: tuple[str, ...] = ("isNegative", "is_negative")
#: Columns beyond the shard's required ones, and their dtypes (``str``: text).
COLUMNS: dict[str, Any] = {
    "diaObjectId": np.dtype(np.int64), "ssObjectId": np.dtype(np.int64), "visit_id": np.dtype(np.int64),
    "detector": np.dtype(np.int64), "midpointMjdTai": np.dtype(np.float64), "band": str,
    **dict.fromkeys(FLOAT_FIELDS, np.dtype(np.float64)),
    "reliability": np.dtype(np.float32), "stamp_flags": np.dtype(np.uint8),
    "source_file": str, "record_index": np.dtype(np.int64),
}
#: The cutouts, the packet's last fields in this order, located by the first's FITS signature rather than walked to.
CUTOUT_TAIL = TrailingBlobs(("cutoutDifference", "cutoutScience", "cutoutTemplate"), b"SIMPLE  =")
#: The packet fields decoded (:data:`bayesrb.alerts.projection.Select`): the others are skipped.
SELECT: dict[str, Any] = {
    **dict.fromkeys(CUTOUT_FIELDS),
    "diaSource": dict.fromkeys((*REQUIRED_FIELDS, "diaObjectId", "ssObjectId", "x", "y", "snr", "band",
                                "reliability", *FLOAT_FIELDS, *NEGATIVE_FLAGS)),
}


def alert_from_record(record: dict) -> Alert:
    """Convert one decoded Avro Rubin alert record to stamps and metadata (see the module docstring).

    Parameters
    ----------
    record : dict
        A Rubin alert as fastavro decodes it, or its :data:`SELECT` fields only.

    Returns
    -------
    Alert

    Raises
    ------
    AlertError
        If the ``diaSource`` or a required field of it is missing, or a cutout is missing, is not a FITS image or
        does not cover the source.
    """
    source = required_fields(record, "diaSource", REQUIRED_FIELDS)
    stamps, flags = stack_stamps([centred_stamp(*decode_cutout(record.get(field), field), STAMP_SIZE)
                                  for field in CUTOUT_FIELDS])
    return Alert(int(source["diaSourceId"]), stamps, flags, _meta(source, flags), "Rubin")


def decode_cutout(data: bytes | None, field: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Decode one cutout's FITS file (gzip-compressed or not) to its image and the source's position on it.

    Parameters
    ----------
    data : bytes or None
        The packet's cutout field.
    field : str
        The cutout's field name, for the messages.

    Returns
    -------
    image : numpy.ndarray
        Native ``float32`` ``[row, col]``: the primary HDU's image, else the first image extension's.
    position : tuple of float
        The source's 0-based ``(row, col)`` on the image: ``(CRPIX2 - 1, CRPIX1 - 1)`` of the primary header, the
        image's centre where it has none.

    Raises
    ------
    AlertError
        If the cutout is missing or empty, or is not a 2-D FITS image.
    """
    image, raw = cutout_fits(data, field)
    if image is None or image.ndim != 2:
        raise AlertError(f"{field} is not a 2-D image ({'no data' if image is None else image.shape})")
    centre = [(n - 1) / 2 for n in image.shape]
    position = [header_number(raw, f"CRPIX{axis}") for axis in (2, 1)]
    return image, tuple(c if p is None else p - 1.0 for c, p in zip(centre, position, strict=True))


def centred_stamp(image: np.ndarray, position: tuple[float, float], size: int) -> tuple[np.ndarray, int]:
    """Cut a ``size`` x ``size`` stamp of an image centred on the pixel nearest a position, padded with 0.

    Parameters
    ----------
    image : numpy.ndarray
        ``[row, col]``.
    position : tuple of float
        0-based ``(row, col)`` of the source.
    size : int
        The stamp's side (odd).

    Returns
    -------
    stamp : numpy.ndarray
        ``float32`` ``(size, size)``, the source's pixel at ``[size // 2, size // 2]``.
    flag : int
        :data:`~bayesrb.stamps.extract.FLAG_EDGE` if the image does not cover the whole stamp, else 0.

    Raises
    ------
    AlertError
        If the source's pixel is not on the image.
    """
    centre = [int(np.floor(p + 0.5)) for p in position]
    if not all(0 <= c < n for c, n in zip(centre, image.shape, strict=True)):
        raise AlertError(f"the source's pixel {tuple(centre)} is not on its {image.shape} cutout")
    first = [c - size // 2 for c in centre]
    inside = [slice(max(f, 0), min(f + size, n)) for f, n in zip(first, image.shape, strict=True)]
    stamp = np.zeros((size, size), np.float32)
    stamp[tuple(slice(s.start - f, s.stop - f) for s, f in zip(inside, first, strict=True))] = image[tuple(inside)]
    covered = all(s.stop - s.start == size for s in inside)
    return stamp, 0 if covered else FLAG_EDGE


def _optional(value) -> float:
    """A numeric packet field as float: null becomes NaN."""
    return float("nan") if value is None else float(value)


def _sign(source: dict) -> int:
    """-1 for a negative source (``psfFlux`` < 0, or flagged negative where the flux is null), else +1."""
    flux = source.get("psfFlux")
    if flux is not None:
        return -1 if flux < 0 else 1
    return -1 if any(source.get(name) for name in NEGATIVE_FLAGS) else 1


def _meta(source: dict, flags: int) -> dict[str, Any]:
    """The metadata row of one alert: shard columns first, then the Rubin columns."""
    flux, flux_err = abs(_optional(source.get("psfFlux"))), _optional(source.get("psfFluxErr"))
    mag = NJY_ZERO_POINT - 2.5 * np.log10(flux) if flux > 0 else float("nan")
    mag_err = 2.5 / np.log(10.0) * flux_err / flux if flux > 0 else float("nan")
    return {
        "candidate_id": str(source["diaSourceId"]), "visit": f"rubin-{source['visit']}-{source['detector']}",
        "x": _optional(source.get("x")), "y": _optional(source.get("y")), "ra": float(source["ra"]),
        "dec": float(source["dec"]), "mag": float(mag), "mag_err": float(mag_err),
        "snr": _optional(source.get("snr")), "fwhm": float("nan"), "sign": _sign(source), "flags": 0, "label": -1,
        "kind": "", "diaObjectId": int(source.get("diaObjectId") or 0),
        "ssObjectId": int(source.get("ssObjectId") or 0), "visit_id": int(source["visit"]),
        "detector": int(source["detector"]), "midpointMjdTai": float(source["midpointMjdTai"]),
        "band": str(source.get("band") or ""), **{name: _optional(source.get(name)) for name in FLOAT_FIELDS},
        "reliability": _optional(source.get("reliability")), "stamp_flags": flags,
    }


#: Rubin's alerts: how its files are recognised and read, and what a store of its alerts holds.
RUBIN = Survey(
    name="Rubin", alert_fields=ALERT_FIELDS, reader=ProjectedReader(SELECT, CUTOUT_TAIL), convert=alert_from_record,
    stamp_size=STAMP_SIZE, columns=COLUMNS,
    attrs={"units": "nJy", "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC,
           "difference_sign": "science - template for every source (Rubin's difference image, as it comes)"},
)
