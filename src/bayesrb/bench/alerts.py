"""Ingest speed in alerts per second per core, and peak memory, on real alert files repeated to a number of alerts.

The records of the given files that share the first file's schema are repeated (each copy with a new ``candid``,
so none is dropped as a duplicate) to ``--alerts`` records, written uncompressed either into one Avro file or, with
``--file-per-alert``, one file per alert as ZTF distributes them, or with ``--parquet`` into one Parquet file as
brokers export them. They are then ingested by
:func:`bayesrb.alerts.ingest.ingest_alerts`; the figures are alerts per CPU second of this process (all its
threads) and its peak resident memory (``getrusage``), which should not grow with ``--alerts``::

    python -m bayesrb.bench.alerts ../shared/data/ztf_alerts --alerts 2000
    python -m bayesrb.bench.alerts ../shared/data/ztf_alerts --alerts 2000 --file-per-alert
    python -m bayesrb.bench.alerts ../shared/data/ztf_alerts --alerts 2000 --parquet
"""

import argparse
import itertools
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from bayesrb.alerts.ingest import expand_inputs, ingest_alerts

CANDID_STEP = 10**10  # added to candid per copy: unique ids, far below int64's limit for ~10^5 copies


def repeat_alerts(inputs: list[str], n_alerts: int, directory: Path, file_per_alert: bool = False,
                  parquet: bool = False) -> list[Path]:
    """Write the records of ``inputs``, repeated to ``n_alerts`` with unique candids, into ``directory``.

    Parameters
    ----------
    inputs : list of str
        Alert files, directories or glob patterns; only the files with the first file's schema are used.
    n_alerts : int
        Records to write.
    directory : pathlib.Path
        Where to write ``alerts.avro``, or with ``file_per_alert`` one ``alert-NNNNNN.avro`` per record.
    file_per_alert : bool
        Write one single-record file per alert instead of one file of every record.
    parquet : bool
        Write one Parquet file, ``alerts.parquet``, instead (``file_per_alert`` is then ignored).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    records, schema = [], None
    for file in expand_inputs(inputs):
        with file.open("rb") as handle:
            reader = fastavro.reader(handle)
            schema = schema or reader.writer_schema
            if reader.writer_schema == schema:
                records.extend(reader)
    schema = fastavro.parse_schema(schema)
    copies = _unique_copies(records, n_alerts)
    if parquet:
        pq.write_table(pa.Table.from_pylist(list(copies)), directory / "alerts.parquet")
        return [directory / "alerts.parquet"]
    batches = ([record] for record in copies) if file_per_alert else iter([copies])
    paths = []
    for i, batch in enumerate(batches):
        paths.append(directory / (f"alert-{i:06d}.avro" if file_per_alert else "alerts.avro"))
        with paths[-1].open("wb") as handle:
            fastavro.writer(handle, schema, batch)
    return paths


def _unique_copies(records: list[dict], n_alerts: int) -> Iterator[dict]:
    """Cycle through ``records`` to ``n_alerts``, the candid of each copy made unique."""
    for i, record in enumerate(itertools.islice(itertools.cycle(records), n_alerts)):
        offset = CANDID_STEP * (i // len(records))
        yield {**record, "candid": record["candid"] + offset,
               "candidate": {**record["candidate"], "candid": record["candidate"]["candid"] + offset}}


def measure(inputs: list[str], n_alerts: int, file_per_alert: bool = False, parquet: bool = False) -> str:
    """Ingest ``n_alerts`` repeated alerts into a temporary store and report alerts/s per core and peak memory.

    Parameters
    ----------
    inputs : list of str
        Alert files, directories or glob patterns.
    n_alerts : int
        Alerts to ingest.
    file_per_alert : bool
        Ingest one file per alert instead of one file of every alert.
    parquet : bool
        Ingest one Parquet file of every alert.

    Returns
    -------
    str
        One line: alerts, files, CPU and wall seconds, alerts per CPU second, peak resident memory.
    """
    with tempfile.TemporaryDirectory(prefix="bayesrb-bench-alerts-") as tmp:
        files = repeat_alerts(inputs, n_alerts, Path(tmp), file_per_alert, parquet)
        before = _peak_rss_mib()
        cpu, wall = time.process_time(), time.perf_counter()
        summary = ingest_alerts(files, Path(tmp) / "store.zarr")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return (f"ingested {summary.ingested} alerts from {len(files)} file(s) in {wall:.2f} s wall, {cpu:.2f} CPU s: "
            f"{summary.ingested / cpu:.0f} alerts/s per core; peak RSS {_peak_rss_mib():.0f} MiB "
            f"({before:.0f} MiB before the ingest)")


def _peak_rss_mib() -> float:
    """The peak resident memory of this process so far, MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.alerts INPUTS... [--alerts N] [--file-per-alert | --parquet]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="alert files, directories or glob patterns")
    parser.add_argument("--alerts", type=int, default=2000, help="alerts to ingest (default 2000)")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--file-per-alert", action="store_true", help="one single-record file per alert")
    layout.add_argument("--parquet", action="store_true", help="one Parquet file, as brokers export alerts")
    args = parser.parse_args(argv)
    print(measure(args.inputs, args.alerts, args.file_per_alert, args.parquet))


if __name__ == "__main__":
    main()
