"""Rubin-like alert packets made here, and the speed of reading and ingesting them.

No Rubin packet is among the development data, so these are made as Rubin's pipeline makes them: a schema with the
names and types of Rubin's (``lsst/alert_packet``, 7.x and 11.x layouts; a subset of the fields, optionally widened
to the width of Rubin's ``diaSource``) and cutouts written by astropy's ``CCDData`` (image, variance and PSF HDUs, a
WCS whose reference pixel is the source). The tests read them (``tests/test_alert_rubin.py``); :func:`measure`
times reading them with the cutouts located (:data:`bayesrb.alerts.rubin.CUTOUT_TAIL`) against walking the history,
and ingesting them, in alerts per CPU second::

    python -m bayesrb.bench.rubin --alerts 1000 --history 30
"""

import argparse
import dataclasses
import io
import tempfile
import time
from pathlib import Path

import astropy.units as u
import fastavro
import numpy as np
from astropy.nddata import CCDData, VarianceUncertainty
from astropy.wcs import WCS

from bayesrb.alerts.ingest import ingest_alerts
from bayesrb.alerts.packets import CHANNELS, read_avro_alerts
from bayesrb.alerts.projection import ProjectedReader
from bayesrb.alerts.rubin import RUBIN, SELECT

#: Fields added to the diaSource so that it is as wide as Rubin's (about 140 fields).
RUBIN_WIDTH_EXTRA = 120


def optional(kind) -> list:
    """A union of null and ``kind``."""
    return ["null", kind]


def rubin_schema(version: str = "11_1", extra_fields: int = 0) -> dict:
    """A Rubin alert schema with some of each record's fields, with the names and types Rubin's schemas give them.

    Parameters
    ----------
    version : str
        ``11_1`` (``diaSourceId`` first, ``isNegative``) or ``7_4`` (``alertId`` first, ``is_negative``).
    extra_fields : int
        Nullable float fields (``extra000``, ...) added to the ``diaSource`` record, to give it the width of
        Rubin's (about 140 fields in 7.x–11.x).

    Returns
    -------
    dict
        The schema, as its JSON decodes.
    """
    space = f"lsst.v{version}"
    negative = "is_negative" if version.startswith("7") else "isNegative"
    source_fields = [
        {"name": "diaSourceId", "type": "long"}, {"name": "visit", "type": "long"}, {"name": "detector", "type": "int"},
        {"name": "diaObjectId", "type": optional("long"), "default": None},
        {"name": "ssObjectId", "type": optional("long"), "default": None},
        {"name": "midpointMjdTai", "type": "double"}, {"name": "ra", "type": "double"},
        {"name": "raErr", "type": optional("float"), "default": None}, {"name": "dec", "type": "double"},
        {"name": "x", "type": "float"}, {"name": "y", "type": "float"},
        {"name": "centroid_flag", "type": optional("boolean"), "default": None},
        {"name": negative, "type": optional("boolean"), "default": None},
        {"name": "snr", "type": optional("float"), "default": None},
        {"name": "psfFlux", "type": optional("float"), "default": None},
        {"name": "psfFluxErr", "type": optional("float"), "default": None},
        {"name": "trailRa", "type": optional("double"), "default": None},
        {"name": "ixxPSF", "type": optional("float"), "default": None},
        {"name": "extendedness", "type": optional("float"), "default": None},
        {"name": "reliability", "type": optional("float"), "default": None},
        {"name": "band", "type": optional("string"), "default": None},
        {"name": "pixelFlags_edge", "type": optional("boolean"), "default": None},
        *({"name": f"extra{i:03d}", "type": optional("float"), "default": None} for i in range(extra_fields)),
    ]
    forced = {"type": "record", "name": "diaForcedSource", "namespace": space, "fields": [
        {"name": "diaForcedSourceId", "type": "long"}, {"name": "psfFlux", "type": optional("float")}]}
    fields = [
        {"name": "alertId" if version.startswith("7") else "diaSourceId", "type": "long"},
        {"name": "diaSource", "type": {"type": "record", "name": "diaSource", "namespace": space,
                                       "fields": source_fields}},
        {"name": "prvDiaSources", "type": optional({"type": "array", "items": f"{space}.diaSource"}),
         "default": None},
        {"name": "prvDiaForcedSources", "type": optional({"type": "array", "items": forced}), "default": None},
        {"name": "diaObject", "type": optional({"type": "record", "name": "diaObject", "namespace": space, "fields": [
            {"name": "diaObjectId", "type": "long"}, {"name": "nDiaSources", "type": "int"}]}), "default": None},
        *({"name": name, "type": optional("bytes"), "default": None}
          for name in ("cutoutDifference", "cutoutScience", "cutoutTemplate")),
    ]
    return {"type": "record", "name": "alert", "namespace": space, "fields": fields}


def cutout_bytes(image: np.ndarray, source_rc: tuple[float, float]) -> bytes:
    """A cutout as Rubin's pipeline writes it: CCDData (nJy) with variance and PSF, CRPIX at the source."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [source_rc[1] + 1.0, source_rc[0] + 1.0]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cd = np.array([[-0.2, 0.0], [0.0, 0.2]]) / 3600
    psf = np.exp(-np.add.outer(*(2 * [np.arange(-7, 8) ** 2])) / 8.0).astype(np.float32)
    ccd = CCDData(image.astype(np.float32), uncertainty=VarianceUncertainty(np.ones_like(image, np.float32)),
                  wcs=wcs, psf=psf / psf.sum(), meta={"cutMinX": 100, "cutMinY": 200}, unit=u.nJy)
    with io.BytesIO() as buffer:
        ccd.write(buffer, format="fits")
        return buffer.getvalue()


def source_record(source_id: int, **fields) -> dict:
    """A ``diaSource`` of :func:`rubin_schema` (its extra fields left out: null), ``fields`` replacing values."""
    return {"diaSourceId": source_id, "visit": 2025120300123, "detector": 42, "diaObjectId": 9_000_000 + source_id,
            "ssObjectId": None, "midpointMjdTai": 61012.25, "ra": 150.0, "raErr": 1e-6, "dec": 2.0, "x": 1000.5,
            "y": 2000.25, "centroid_flag": False, "snr": 12.5, "psfFlux": 5000.0, "psfFluxErr": 400.0,
            "trailRa": None, "ixxPSF": 0.09, "extendedness": 0.1, "reliability": 0.93, "band": "r",
            "pixelFlags_edge": False, **fields}


def packet(source_id: int, images=None, source_rc=(14.6, 15.2), version: str = "11_1", history: int = 2,
           **fields) -> dict:
    """One alert of ``rubin_schema(version)``.

    Parameters
    ----------
    source_id : int
        The ``diaSourceId`` (and alert id); earlier sources count down from it.
    images : sequence of numpy.ndarray or None, optional
        Science, template and difference images (None for a null cutout); by default 30x30 noise.
    source_rc : tuple of float
        The source's 0-based (row, col) on the cutouts.
    version : str
        The schema's layout (:func:`rubin_schema`).
    history : int
        Earlier sources and forced sources.
    **fields
        ``diaSource`` values replacing those of :func:`source_record`.

    Returns
    -------
    dict
    """
    rng = np.random.default_rng(source_id)
    images = images or [rng.normal(100.0, 5.0, (30, 30)) for _ in CHANNELS]
    source = source_record(source_id, **fields)
    if version.startswith("7"):
        source["is_negative"] = source.pop("isNegative", None)
    cutouts = dict(zip(("cutoutScience", "cutoutTemplate", "cutoutDifference"),
                       (None if image is None else cutout_bytes(image, source_rc) for image in images), strict=True))
    return {"alertId" if version.startswith("7") else "diaSourceId": source_id, "diaSource": source,
            "prvDiaSources": [source_record(source_id - k - 1) for k in range(history)] or None,
            "prvDiaForcedSources": [{"diaForcedSourceId": k, "psfFlux": 1.0} for k in range(history)],
            "diaObject": {"diaObjectId": 9_000_000 + source_id, "nDiaSources": history + 1}, **cutouts}


def write_packets(path: Path, records: list[dict], version: str = "11_1", codec: str = "null",
                  extra_fields: int = 0) -> Path:
    """Write packets into an Avro container file of ``rubin_schema(version, extra_fields)``; returns ``path``."""
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(rubin_schema(version, extra_fields)), records, codec=codec)
    return path


def measure(n_alerts: int, history: int, extra_fields: int = RUBIN_WIDTH_EXTRA, repeats: int = 3) -> str:
    """Time reading ``n_alerts`` packets (cutouts located, then walked to) and ingesting them.

    Parameters
    ----------
    n_alerts : int
        Packets, written into one file (uncompressed).
    history : int
        Earlier sources and forced sources per packet.
    extra_fields : int
        Fields added to each ``diaSource`` (:func:`rubin_schema`).
    repeats : int
        Readings of the file per method; the fastest counts.

    Returns
    -------
    str
        One line: alerts per CPU second read located and walked, and ingested.
    """
    walked = dataclasses.replace(RUBIN, reader=ProjectedReader(SELECT))
    records = [packet(1000 + k, history=history) for k in range(n_alerts)]
    with tempfile.TemporaryDirectory(prefix="bayesrb-bench-rubin-") as tmp:
        path = write_packets(Path(tmp) / "alerts.avro", records, extra_fields=extra_fields)
        rates = {name: n_alerts / min(_cpu_seconds(path, survey) for _ in range(repeats))
                 for name, survey in (("located", RUBIN), ("walked", walked))}
        cpu = time.process_time()
        summary = ingest_alerts([path], Path(tmp) / "store.zarr")
        ingest_rate = summary.ingested / (time.process_time() - cpu)
        size = path.stat().st_size / n_alerts / 1024
    width = len(rubin_schema("11_1", extra_fields)["fields"][1]["type"]["fields"])
    return (f"{n_alerts} Rubin-like packets ({history} earlier sources, {width} "
            f"diaSource fields, {size:.0f} KiB each): read {rates['located']:.0f} alerts/s per core with the "
            f"cutouts located, {rates['walked']:.0f} walked to; ingested {ingest_rate:.0f} alerts/s per core")


def _cpu_seconds(path: Path, survey) -> float:
    """CPU seconds to read every alert of a file as ``survey``."""
    cpu = time.process_time()
    for _ in read_avro_alerts(path, [survey]):
        pass
    return time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.rubin [--alerts N] [--history H]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1000, help="packets (default 1000)")
    parser.add_argument("--history", type=int, default=30, help="earlier sources per packet (default 30)")
    args = parser.parse_args(argv)
    print(measure(args.alerts, args.history))


if __name__ == "__main__":
    main()
