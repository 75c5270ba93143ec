"""Reading ZTF alert packets: Avro object-container files to 63x63x3 stamps and one metadata row per alert.

A ZTF alert file holds one or more Avro records (schema versions 3.x and 4.x; codec null, deflate or snappy, the
last through ``cramjam``), each an alert with a ``candidate`` record and three cutouts, ``cutoutScience``,
``cutoutTemplate`` and ``cutoutDifference``, each ``{fileName, stampData}`` with ``stampData`` a gzip-compressed
single-HDU FITS image (big-endian float32, nominally 63x63). Files are streamed one record at a time by fastavro,
through :class:`bayesrb.alerts.projection.ProjectedReader`: only the fields an alert needs (:data:`SELECT`) are
decoded, and the history of previous candidates is not read: the cutouts after it are located
(:data:`CUTOUT_TAIL`).

Conventions
-----------
Sign
    ZTF's difference cutout comes oriented so that the candidate is positive: it is science minus reference
    (fileName ``...scimref.fits.gz``) when ``isdiffpos`` is ``'t'`` and reference minus science
    (``...refmsci.fits.gz``) when it is ``'f'`` (checked on the shared real packets: the centre of the difference
    cutout is positive for both). The ``difference`` channel stores science minus reference for both, as every
    stamp store does (a simulated visit's shard too): the cutout of an ``'f'`` alert is negated, so that a real
    negative subtraction looks the same here as in the data the model trained on. ``sign`` (+1 for
    ``'t'``/``'1'``, -1 for ``'f'``/``'0'``) is in the metadata.
Position
    ``x = xpos - 1`` and ``y = ypos - 1``: the candidate's 0-based position (x = column, y = row) on its readout
    quadrant, ZTF's ``xpos``/``ypos`` being 1-based (FITS) image coordinates; the stamp is centred on it.
Padding
    A cutout clipped at the quadrant's edge (fewer than 63 rows or columns) is padded with 0 back to 63x63 so that
    the candidate sits at the centre pixel ``[31, 31]`` again: along each short axis, the missing pixels go on the
    side of the edge the candidate is near (before it if the candidate lies in the lower half of the
    3080-row x 3072-column quadrant along that axis, after it otherwise; split evenly, the extra one after, when the
    position is unknown). The stamp gets :data:`~bayesrb.stamps.extract.FLAG_EDGE`.
NaN
    NaN and inf pixels (masked or uncovered regions), and pixels of magnitude at least :data:`BLANK_LIMIT` (ZTF
    fills the part of a reference cutout its reference image does not cover with float32's lowest value,
    -3.4e38), are set to 0 and the stamp gets :data:`~bayesrb.stamps.extract.FLAG_NAN`, as in the simulated
    pipeline.
Sentinels
    ZTF writes -999 where a catalogue match or measurement is missing (``ssdistnr``, ``ssmagnr``, ``srmag1``,
    ``distpsnr1``, ...); these, and null fields or fields an older schema lacks, become NaN (``""`` for text).
    ``rb`` and ``drb`` (null in old schemas) are kept for comparison only.

Cutouts
    A cutout is gunzipped (``isal``, Intel's ISA-L, about twice as fast as zlib) and its image read by
    :func:`bayesrb.alerts.fitsimage.read_image`: directly for the plain float images ZTF writes, by astropy for
    any other FITS (scaled integers, the image in an extension, ...).
"""

from typing import Any

import numpy as np

from bayesrb.alerts.packets import GZIP_MAGIC, Alert, AlertError, Survey, cutout_fits, required_fields, stack_stamps
from bayesrb.alerts.projection import ProjectedReader
from bayesrb.alerts.trailing import TrailingBlobs
from bayesrb.stamps.extract import FLAG_EDGE

__all__ = [
    "CONTEXT_FIELDS",
    "EXTRA_COLUMNS",
    "PIXEL_SCALE_ARCSEC",
    "SELECT",
    "STAMP_SIZE",
    "ZTF",
    "alert_from_record",
    "decode_cutout",
    "pad_cutout",
]

#: Side of a full ZTF cutout, pixels.
STAMP_SIZE: int = 63
#: ZTF's pixel scale, arcsec per pixel.
PIXEL_SCALE_ARCSEC: float = 1.01
#: The packet field each channel of :data:`bayesrb.alerts.packets.CHANNELS` comes from.
CUTOUT_FIELDS: tuple[str, ...] = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Pixels of at least this magnitude are blanks (ZTF writes -3.4e38 where a reference does not cover), not data.
BLANK_LIMIT: float = 1e30
#: Shape (rows, columns) of a ZTF readout-quadrant image, which the cutouts are cut from.
QUADRANT_SHAPE: tuple[int, int] = (3080, 3072)
#: ZTF's value for a missing match or measurement.
MISSING: float = -999.0
#: Top-level fields an Avro file's schema must have to be read as ZTF alerts.
ALERT_FIELDS: tuple[str, ...] = ("objectId", "candidate", *CUTOUT_FIELDS)
#: Candidate fields without which a record is malformed.
REQUIRED_FIELDS: tuple[str, ...] = ("candid", "jd", "fid", "pid", "ra", "dec", "magpsf", "sigmapsf", "isdiffpos")
#: Catalogue-context and quality fields kept as float64 columns (-999 and null as NaN): nearest reference source
#: (``*nr``), PS1 (``sgscore*``, ``distpsnr*``, ``s?mag1``), solar-system (``ss*``) and Gaia matches, history.
CONTEXT_FIELDS: tuple[str, ...] = (
    "distnr", "magnr", "sigmagnr", "sharpnr", "chinr", "sgscore1", "distpsnr1", "sgmag1", "srmag1", "simag1",
    "szmag1", "sgscore2", "distpsnr2", "sgscore3", "distpsnr3", "ssdistnr", "ssmagnr", "neargaia", "maggaia",
    "neargaiabright", "maggaiabright", "classtar", "ndethist", "ncovhist", "jdstarthist", "jdendhist",
    "diffmaglim", "scorr", "elong", "nbad",
)
#: Columns beyond the shard's required ones, and their dtypes (``str``: text).
EXTRA_COLUMNS: dict[str, Any] = {
    "objectId": str, "jd": np.dtype(np.float64), "fid": np.dtype(np.int8), "pid": np.dtype(np.int64),
    "isdiffpos": str, "schemavsn": str, "ssnamenr": str,
    **dict.fromkeys(CONTEXT_FIELDS, np.dtype(np.float64)),
    "rb": np.dtype(np.float32), "drb": np.dtype(np.float32), "stamp_flags": np.dtype(np.uint8),
    "source_file": str, "record_index": np.dtype(np.int64),
}
#: The packet fields decoded (:data:`bayesrb.alerts.projection.Select`): the others are skipped.
SELECT: dict[str, Any] = {
    "objectId": None, "schemavsn": None, **dict.fromkeys(CUTOUT_FIELDS),
    "candidate": dict.fromkeys((*REQUIRED_FIELDS, "xpos", "ypos", "fwhm", "ssnamenr", *CONTEXT_FIELDS, "rb", "drb")),
}
SIGNS: dict[str, int] = {"t": 1, "1": 1, "f": -1, "0": -1}
#: The cutouts, the packet's last fields: located by their gzip signature (magic and deflate method) rather than
#: walked to through the history (:mod:`bayesrb.alerts.trailing`).
CUTOUT_TAIL = TrailingBlobs(CUTOUT_FIELDS, GZIP_MAGIC + b"\x08")
#: The reader of alert files: its schemas are made once per writer schema met.
READER = ProjectedReader(SELECT, CUTOUT_TAIL)


def alert_from_record(record: dict) -> Alert:
    """Convert one decoded Avro alert record to stamps and metadata (see the module docstring).

    Parameters
    ----------
    record : dict
        A ZTF alert as fastavro decodes it, or its :data:`SELECT` fields only.

    Returns
    -------
    Alert

    Raises
    ------
    AlertError
        If the candidate or a required field of it is missing, ``isdiffpos`` is not one of t/f/1/0, or a cutout
        is missing or not a FITS image of at most 63x63 pixels.
    """
    candidate = required_fields(record, "candidate", REQUIRED_FIELDS)
    x, y = _optional(candidate.get("xpos")) - 1.0, _optional(candidate.get("ypos")) - 1.0
    stamps, flags = stack_stamps([pad_cutout(decode_cutout(record.get(field), field), x, y)
                                  for field in CUTOUT_FIELDS], BLANK_LIMIT)
    meta = _meta(record, candidate, x, y, flags)
    if meta["sign"] < 0:
        difference = stamps[..., CUTOUT_FIELDS.index("cutoutDifference")]
        np.negative(difference, out=difference, where=difference != 0)  # no -0.0 in the padding
    return Alert(int(candidate["candid"]), stamps, flags, meta, "ZTF")


def decode_cutout(cutout: dict | None, field: str) -> np.ndarray:
    """Decode one cutout's gzip-compressed (or plain) FITS image to a native ``float32`` array.

    Parameters
    ----------
    cutout : dict or None
        The packet's ``{fileName, stampData}`` record.
    field : str
        The cutout's field name, for the messages.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``[row, col]``, at most 63x63: the primary HDU's image, else the first image extension's.

    Raises
    ------
    AlertError
        If the cutout is missing or empty, or is not a 2-D FITS image of at most 63x63 pixels.
    """
    image, _ = cutout_fits(cutout.get("stampData") if isinstance(cutout, dict) else None, field)
    if image is None or image.ndim != 2 or not all(1 <= n <= STAMP_SIZE for n in image.shape):
        shape = "no data" if image is None else "x".join(map(str, image.shape))
        raise AlertError(f"{field} is not a 2-D image of at most {STAMP_SIZE}x{STAMP_SIZE} pixels ({shape})")
    return image


def pad_cutout(image: np.ndarray, x: float, y: float) -> tuple[np.ndarray, int]:
    """Pad a cutout clipped at the quadrant's edge to 63x63 with 0, candidate at the centre (module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        ``[row, col]``, at most 63x63.
    x, y : float
        The candidate's 0-based position on the quadrant (x = column, y = row); NaN if unknown.

    Returns
    -------
    stamp : numpy.ndarray
        63x63 (``image`` itself when it is full size).
    flag : int
        :data:`~bayesrb.stamps.extract.FLAG_EDGE` if padded, else 0.
    """
    missing = (STAMP_SIZE - image.shape[0], STAMP_SIZE - image.shape[1])
    if missing == (0, 0):
        return image, 0
    axes = zip(missing, (y, x), QUADRANT_SHAPE, strict=True)
    before = [_pad_before(n, position, extent) for n, position, extent in axes]
    return np.pad(image, [(b, n - b) for b, n in zip(before, missing, strict=True)]), FLAG_EDGE


def _pad_before(missing: int, position: float, extent: int) -> int:
    """Pixels to pad before the cutout along one axis: all on the side of the nearer quadrant edge."""
    if not np.isfinite(position):
        return missing // 2
    return missing if position < extent / 2 else 0


def _optional(value) -> float:
    """A numeric packet field as float: null and ZTF's -999 sentinel become NaN."""
    if value is None or value == MISSING:
        return float("nan")
    return float(value)


def _meta(record: dict, candidate: dict, x: float, y: float, flags: int) -> dict[str, Any]:
    """The metadata row of one alert: shard columns first, then the ZTF columns."""
    isdiffpos = str(candidate["isdiffpos"])
    if isdiffpos not in SIGNS:
        raise AlertError(f"isdiffpos is {isdiffpos!r}, not one of t, f, 1, 0")
    ssnamenr = candidate.get("ssnamenr")
    return {
        "candidate_id": str(candidate["candid"]), "visit": f"ztf-pid{candidate['pid']}", "x": x, "y": y,
        "ra": float(candidate["ra"]), "dec": float(candidate["dec"]), "mag": float(candidate["magpsf"]),
        "mag_err": float(candidate["sigmapsf"]), "snr": float("nan"), "fwhm": _optional(candidate.get("fwhm")),
        "sign": SIGNS[isdiffpos], "flags": 0, "label": -1, "kind": "",
        "objectId": str(record.get("objectId") or ""), "jd": float(candidate["jd"]), "fid": int(candidate["fid"]),
        "pid": int(candidate["pid"]), "isdiffpos": isdiffpos, "schemavsn": str(record.get("schemavsn") or ""),
        "ssnamenr": "" if ssnamenr in (None, "null") else str(ssnamenr),
        **{name: _optional(candidate.get(name)) for name in CONTEXT_FIELDS},
        "rb": _optional(candidate.get("rb")), "drb": _optional(candidate.get("drb")), "stamp_flags": flags,
    }


#: ZTF's alerts: how its files are recognised and read, and what a store of its alerts holds.
ZTF = Survey(
    name="ZTF", alert_fields=ALERT_FIELDS, reader=READER, convert=alert_from_record, stamp_size=STAMP_SIZE,
    columns=EXTRA_COLUMNS,
    attrs={"units": "DN", "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC, "difference_sign":
           "candidate positive: ZTF's science - reference if isdiffpos t, reference - science if f"},
)
