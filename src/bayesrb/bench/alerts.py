"""Ingest speed in alerts per second per core, on real alert files repeated to a given number of alerts.

The records of the given files that share the first file's schema are repeated (each copy with a new ``candid``,
so none is dropped as a duplicate) into one uncompressed Avro file of ``--alerts`` records, which is then ingested
by :func:`bayesrb.alerts.ingest.ingest_alerts`; the figure is alerts per CPU second of this process::

    python -m bayesrb.bench.alerts ../shared/data/ztf_alerts --alerts 2000
"""

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import fastavro

from bayesrb.alerts.ingest import expand_inputs, ingest_alerts

CANDID_STEP = 10**10  # added to candid per copy: unique ids, far below int64's limit for ~10^5 copies


def repeat_alerts(inputs: list[str], n_alerts: int, path: Path) -> int:
    """Write ``path``: the records of ``inputs``, repeated to ``n_alerts`` with unique candids; return the count.

    Parameters
    ----------
    inputs : list of str
        Alert files, directories or glob patterns; only the files with the first file's schema are used.
    n_alerts : int
        Records to write.
    path : pathlib.Path
        The Avro file to write.

    Returns
    -------
    int
        Records written.
    """
    records, schema = [], None
    for file in expand_inputs(inputs):
        with file.open("rb") as handle:
            reader = fastavro.reader(handle)
            schema = schema or reader.writer_schema
            if reader.writer_schema == schema:
                records.extend(reader)
    copies = itertools.islice(itertools.cycle(records), n_alerts)
    unique = ({**record, "candid": record["candid"] + CANDID_STEP * (i // len(records)),
               "candidate": {**record["candidate"], "candid": record["candidate"]["candid"]
                             + CANDID_STEP * (i // len(records))}} for i, record in enumerate(copies))
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), unique)
    return n_alerts


def measure(inputs: list[str], n_alerts: int) -> str:
    """Ingest ``n_alerts`` repeated alerts into a temporary store and report alerts/s per core.

    Parameters
    ----------
    inputs : list of str
        Alert files, directories or glob patterns.
    n_alerts : int
        Alerts to ingest.

    Returns
    -------
    str
        One line: alerts, CPU and wall seconds, alerts per CPU second.
    """
    with tempfile.TemporaryDirectory(prefix="bayesrb-bench-alerts-") as tmp:
        source = Path(tmp) / "alerts.avro"
        repeat_alerts(inputs, n_alerts, source)
        cpu, wall = time.process_time(), time.perf_counter()
        summary = ingest_alerts([source], Path(tmp) / "store.zarr")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return (f"ingested {summary.ingested} alerts in {wall:.2f} s wall, {cpu:.2f} CPU s: "
            f"{summary.ingested / cpu:.0f} alerts/s per core")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bayesrb.bench.alerts INPUTS... [--alerts N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="alert files, directories or glob patterns")
    parser.add_argument("--alerts", type=int, default=2000, help="alerts to ingest (default 2000)")
    args = parser.parse_args(argv)
    print(measure(args.inputs, args.alerts))


if __name__ == "__main__":
    main()
