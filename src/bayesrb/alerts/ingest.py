"""Ingesting alert files (Avro, brokers' Parquet and JSON: :mod:`bayesrb.alerts.exports`) into one stamp store.

The store has the layout of a stamp shard (:mod:`bayesrb.stamps.shard`), with channels ``science``, ``template``,
``difference`` of ``float32`` stamps, the shard's required meta columns and the survey's own
(:class:`bayesrb.alerts.packets.Survey`): for ZTF, 63x63 stamps in DN and the columns of
:data:`bayesrb.alerts.ztf.EXTRA_COLUMNS`, ``visit`` ``ztf-pid{pid}``, ZTF's processing id of the exposure quadrant
the alert was found on (:mod:`bayesrb.alerts.ztf` has the sign, padding and sentinel conventions); for Rubin,
29x29 stamps in nJy and the columns of :data:`bayesrb.alerts.rubin.COLUMNS` (conventions in
:mod:`bayesrb.alerts.rubin`). ``label`` is -1 and ``kind`` ``""`` (unlabelled). A store holds one survey's alerts,
that of the first alert read: a file of another survey is skipped with a warning.

Alerts are streamed: each is written in a block of the store as soon as the block is full
(:class:`bayesrb.alerts.store.BlockWriter`), so memory does not grow with the number of alerts. The store is
written into a temporary directory renamed onto the output path when complete (:func:`bayesrb.atomic.atomic_path`):
if anything fails, nothing is left at the output path.

Bad input is skipped with one warning line (logger ``bayesrb.alerts.ingest``) and counted in the summary:
a malformed record or cutout (naming the file and the record's 0-based index), and a whole file that does not
exist, is not Avro or is not of alerts (naming the file). A duplicate ``candid`` is kept once, the first seen.
If no alert at all could be ingested, :class:`~bayesrb.errors.BadInputError` is raised and nothing is written.
"""

import glob
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayesrb.alerts.exports import ALERT_SUFFIXES, SURVEYS, read_alerts
from bayesrb.alerts.packets import CHANNELS, Alert, Survey
from bayesrb.alerts.store import BlockWriter
from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError
from bayesrb.stamps.shard import SHARD_META_COLUMNS

__all__ = ["IngestSummary", "expand_inputs", "ingest_alerts", "store_attrs", "store_columns"]

log = logging.getLogger(__name__)


def store_columns(survey: Survey) -> dict[str, Any]:
    """The meta columns of a store of a survey's alerts and their dtypes: the shard's, then the survey's."""
    return {**SHARD_META_COLUMNS, **survey.columns}


def store_attrs(survey: Survey) -> dict[str, Any]:
    """The attributes of a store of a survey's alerts."""
    attrs = dict(survey.attrs)
    return {"units": attrs.pop("units"), "pixel_scale_arcsec": attrs.pop("pixel_scale_arcsec"),
            "stamp_size": survey.stamp_size, "seed": 0, "config_hash": "", "survey": survey.name, **attrs}


@dataclass
class IngestSummary:
    """Counts of one ingest.

    Attributes
    ----------
    out : str
        The store written.
    survey : str
        The survey whose alerts it holds (``""`` until one is read).
    files : int
        Input files found.
    ingested : int
        Alerts written.
    duplicates : int
        Records dropped because their ``candid`` was already ingested.
    skipped_records : int
        Malformed records skipped (one per damaged file tail).
    skipped_files : int
        Files that could not be read at all.
    """

    out: str
    survey: str = ""
    files: int = 0
    ingested: int = 0
    duplicates: int = 0
    skipped_records: int = 0
    skipped_files: int = 0

    def __str__(self) -> str:
        return (f"ingested {self.ingested} {self.survey} alerts from {self.files} file(s) -> {self.out}; skipped "
                f"{self.skipped_records} malformed record(s) and {self.skipped_files} unreadable file(s); "
                f"{self.duplicates} duplicate candid(s) kept once")


def expand_inputs(items: Iterable[str | os.PathLike]) -> list[Path]:
    """Turn files, directories (searched recursively for alert files) and glob patterns into a list of files.

    A directory is searched for the names of :data:`bayesrb.alerts.exports.ALERT_SUFFIXES` (Avro, Parquet, JSON).

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Input paths as given; a path that matches nothing is kept, so that reading it reports it.

    Returns
    -------
    list of pathlib.Path
        Each file once, in the order given (sorted within a directory or pattern).
    """
    files: dict[Path, None] = {}
    for item in map(str, items):
        if os.path.isdir(item):
            found = sorted(path for path in Path(item).rglob("*") if path.suffix.lower() in ALERT_SUFFIXES)
        elif glob.has_magic(item):
            found = [Path(match) for match in sorted(glob.glob(item, recursive=True)) if os.path.isfile(match)]
        else:
            found = [Path(item)]
        files.update(dict.fromkeys(found))
    return list(files)


def ingest_alerts(inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
                  survey: str | None = None) -> IngestSummary:
    """Read alert files and write their alerts as one stamp store (see the module docstring).

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Alert files, directories or glob patterns (:func:`expand_inputs`).
    out : str or os.PathLike
        The store directory to write (replaced if it is a previous store).
    survey : str, optional
        The survey whose alerts to ingest (a key of :data:`bayesrb.alerts.exports.SURVEYS`); files of another are
        skipped with a warning. By default, that of the first alert read.

    Returns
    -------
    IngestSummary

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``survey`` is unknown, no alert could be ingested (nothing is written), or ``out`` may not be written.
    """
    if survey is not None and survey not in SURVEYS:
        raise BadInputError("survey", f"{survey!r} is not one of {', '.join(SURVEYS)}")
    files = expand_inputs(inputs)
    summary = IngestSummary(out=str(out), survey=survey or "", files=len(files))
    with atomic_path(out, directory_signature="zarr.json") as tmp:
        writer = None
        for alert, source, index in _unique_alerts(files, summary):
            if writer is None:
                survey = SURVEYS[alert.survey]
                writer = BlockWriter(tmp, CHANNELS, store_columns(survey), (survey.stamp_size,) * 2,
                                     survey.attrs["units"])
            writer.append(alert.stamps, {**alert.meta, "source_file": source, "record_index": index})
        if writer is None:
            source = str(files[0]) if len(files) == 1 else f"{len(files)} input files"
            raise BadInputError(source, f"no alert could be ingested ({summary})")
        summary.ingested = writer.close(store_attrs(survey))
    return summary


def _unique_alerts(files: list[Path], summary: IngestSummary) -> Iterator[tuple[Alert, str, int]]:
    """Yield ``(alert, source file, record index)`` for each first-seen candid of the first alert's survey.

    Warn about and count the rest; the survey is set in ``summary`` at the first alert.
    """
    seen: set[int] = set()
    for path in files:
        try:
            for index, alert in read_alerts(path):
                if not isinstance(alert, Alert):
                    log.warning("%s: record %d: %s; skipped", path, index, alert)
                    summary.skipped_records += 1
                    continue
                summary.survey = summary.survey or alert.survey
                if alert.survey != summary.survey:
                    log.warning("%s: holds %s alerts but the store %s alerts (a store holds one survey's); skipped",
                                path, alert.survey, summary.survey)
                    summary.skipped_files += 1
                    break
                if alert.candid in seen:
                    summary.duplicates += 1
                else:
                    seen.add(alert.candid)
                    yield alert, str(path), index
        except BadInputError as error:
            log.warning("%s; skipped", error)
            summary.skipped_files += 1

