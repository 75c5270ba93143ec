"""The consolidated data set: every labelled stamp of the survey in one zarr v3 group, split by field.

Layout of a data-set store::

    zarr.json        group attrs: channels, stamp_size, units, pixel_scale_arcsec, n_stamps, split_ranges,
                     split_fields, kind_counts, class_counts, human_labels, fractions, seed, excluded_visits
                     (visit -> why it was left out), bayesrb_version and the caller's attrs
    stamps/          float32 (N, H, W, C) = [stamp, row, col, channel] with the sharding codec: inner chunks of
                     ``chunk_stamps`` stamps (the unit of a random mini-batch read, blosc zstd) packed into shard
                     files of ``shard_stamps`` stamps; attrs: channels, units, axes
    meta/<column>/   1-D arrays of length N: every column of SHARD_META_COLUMNS, then ``field``, ``split``,
                     ``label_source`` (``auto``, ``human`` or ``augment``), then the extra columns of the stamp
                     shards, label tables and augmentation shards in name order (missing values: NaN for floats,
                     -1 for integers, "" for text)

Rows are grouped by split, in the order train, val, test, eval, each split one contiguous range
(``split_ranges``). Within a split the visits come in a seeded random order and the rows of a visit (its labelled
candidates together with its augmentation rows) in a seeded random permutation. This only breaks up the ordering
by visit; the trainer's loader shuffles further (over chunks and within mini-batches) each epoch.

The store is written in two passes so that memory stays bounded by about one shard of stamps plus one visit: the
first pass reads every visit's meta (and checks it), assigns the splits and fixes the row order; the second pass
reads the visits again in that order and writes their stamps in shard-aligned blocks. Identical inputs and seed give
a byte-identical store.
"""

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from astropy.table import Table

from bayesrb import __version__
from bayesrb.atomic import atomic_path
from bayesrb.dataset.human import apply_human_labels, read_human_labels
from bayesrb.dataset.purity import value_counts
from bayesrb.dataset.splits import EVAL_SPLIT, SPLITS, assign_splits, check_fractions
from bayesrb.errors import BadInputError
from bayesrb.seeding import rng_for
from bayesrb.stamps.shard import SHARD_META_COLUMNS, STAMP_CODECS, read_shard, read_shard_meta, write_meta_columns
from bayesrb.stamps.store import open_store
from bayesrb.vocabulary import BOGUS, CLASS_NAMES, INJECTED_PREFIX, REAL

__all__ = ["VisitSource", "Dataset", "build_dataset", "open_dataset"]

#: Columns the data set adds after SHARD_META_COLUMNS.
DATASET_COLUMNS: tuple[str, ...] = ("field", "split", "label_source")
_LABEL_KEYS = ("candidate_id", "label", "kind")
_SHOWN = 5  # ids or visits quoted in a message
LOG = logging.getLogger(__name__)


@dataclass
class VisitSource:
    """The inputs of one visit.

    Attributes
    ----------
    visit : str
        Visit id (unique among the sources).
    field : str
        The field the visit observed; splits are made of whole fields.
    shard : str or os.PathLike
        The visit's stamp shard (:func:`bayesrb.stamps.shard.write_shard`).
    labels : str or os.PathLike
        ECSV table of the automatic labels: ``candidate_id``, ``label`` (1 real, 0 bogus), ``kind`` and any extra
        columns, which are carried into the data set.
    augment : str or os.PathLike, optional
        A stamp shard of augmentation rows (every row labelled), or None.
    evaluation : bool
        Whether the field is reserved for evaluation (all its rows go to the ``eval`` split).
    truth : str or os.PathLike, optional
        Simulated surveys: ECSV table of every shard candidate (``candidate_id`` in shard order) with the
        simulator's truth matched to it (``truth_*`` columns), which become data-set columns.
    """

    visit: str
    field: str
    shard: str | os.PathLike
    labels: str | os.PathLike
    augment: str | os.PathLike | None = None
    evaluation: bool = False
    truth: str | os.PathLike | None = None


@dataclass
class Dataset:
    """A data-set store opened lazily.

    Attributes
    ----------
    stamps : zarr.Array
        ``float32`` ``(N, H, W, C)`` indexed ``[stamp, row, col, channel]``; read on indexing.
    meta : dict of str to numpy.ndarray
        One 1-D array of length ``N`` per column (SHARD_META_COLUMNS, then DATASET_COLUMNS, then the others by
        name), text as NumPy ``str`` arrays.
    attrs : dict
        The group attributes (see :mod:`bayesrb.dataset.store`).
    """

    stamps: zarr.Array
    meta: dict[str, np.ndarray]
    attrs: dict[str, Any]

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names in the order of the last axis of ``stamps``."""
        return tuple(self.attrs["channels"])

    def __len__(self) -> int:
        return int(self.stamps.shape[0])


@dataclass
class _VisitRows:
    """The rows one visit contributes, in data-set order, and where each row's stamp is."""

    source: VisitSource
    meta: dict[str, np.ndarray]
    from_augment: np.ndarray
    index: np.ndarray


@dataclass
class _Geometry:
    """Stamp geometry and units that every shard of a data set must share."""

    shape: tuple[int, int, int]
    channels: tuple[str, ...]
    units: Any
    pixel_scale_arcsec: float


def build_dataset(
    out_path: str | os.PathLike,
    sources: Sequence[VisitSource],
    *,
    fractions: Mapping[str, float],
    seed: int,
    human_labels: str | os.PathLike | None = None,
    chunk_stamps: int = 64,
    shard_stamps: int = 1024,
    attrs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the consolidated data set from per-visit shards, label tables and augmentation shards, atomically.

    The rows are every labelled candidate (the automatic labels joined to the shard by ``candidate_id``, then the
    human labels applied; unlabelled candidates are dropped) plus every augmentation row. A visit whose shard or
    augmentation shard holds NaN or inf pixels is left out with an ERROR log line naming the visit and the shard
    (attr ``excluded_visits``), so one bad visit does not block the rest. Fields are assigned to splits with
    :func:`bayesrb.dataset.splits.assign_splits` from their numbers of rows; the fields of evaluation visits go to
    ``eval``.

    Parameters
    ----------
    out_path : str or os.PathLike
        The store directory to create or replace.
    sources : sequence of VisitSource
        One per visit.
    fractions : mapping of str to float
        Wanted fraction of the non-evaluation rows in ``train``, ``val`` and ``test``; must sum to 1.
    seed : int
        Seed of the split assignment and the row order.
    human_labels : str or os.PathLike, optional
        CSV of human labels (:func:`bayesrb.dataset.human.read_human_labels`); they take precedence.
    chunk_stamps : int
        Stamps per inner chunk of ``stamps``.
    shard_stamps : int
        Stamps per shard file of ``stamps``; a multiple of ``chunk_stamps``.
    attrs : mapping, optional
        Extra JSON-serialisable group attributes (e.g. config hash); must not reuse the keys set here.

    Returns
    -------
    dict
        The group attributes written, without the caller's ``attrs``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If a shard, label table or the human-labels CSV is missing or malformed, a label table names a candidate
        that is not in its shard, or the shards disagree on channels, stamp size or units (naming the shard).
    ValueError
        If the arguments are inconsistent (fractions, chunk and shard sizes, duplicate visits or candidate ids, a
        field both evaluation and not, too few fields), or evaluation-only rows (``injected_*`` kinds, rows of
        evaluation fields) would land outside the ``eval`` split.
    """
    check_fractions(fractions)
    check_block_sizes(chunk_stamps, shard_stamps)
    _check_sources(sources)
    sources, excluded = _exclude_nonfinite(sources)
    geometry, visits, human_summary = _collect_rows(sources, human_labels)
    assignment = _assign_fields(visits, fractions, seed, sources)
    ordered = _order_rows(visits, assignment, seed)
    meta = _order_columns(_concat_columns([v.meta for v in ordered]))
    _check_evaluation_only(meta, {s.field for s in sources if s.evaluation})
    summary = _summary(meta, assignment, geometry, human_summary, fractions, seed) | {"excluded_visits": excluded}
    group_attrs = _merge_attrs(summary, attrs or {})
    with atomic_path(out_path, directory_signature="zarr.json") as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        group.attrs.update(group_attrs)
        stamps = _create_stamps(group, len(meta["candidate_id"]), geometry, chunk_stamps, shard_stamps)
        _write_stamps(stamps, ordered, shard_stamps)
        write_meta_columns(group.create_group("meta"), meta)
    return summary


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open a data-set store written by :func:`build_dataset`; stamps stay on disk until indexed.

    Parameters
    ----------
    path : str or os.PathLike
        The store directory.

    Returns
    -------
    Dataset

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``path`` is not a stamp store (:func:`bayesrb.stamps.store.open_store`), or not a data set (missing
        attrs or meta columns).
    """
    store = open_store(path, "data-set store")
    missing = [key for key in ("channels", "split_ranges", "n_stamps") if key not in store.attrs]
    if missing:
        raise BadInputError(path, f"not a data set: missing attrs {missing}")
    meta = store.read_meta((*SHARD_META_COLUMNS, *DATASET_COLUMNS))
    return Dataset(stamps=store.stamps, meta=meta, attrs=store.attrs)


def check_block_sizes(chunk_stamps: int, shard_stamps: int) -> None:
    """Raise ValueError unless ``shard_stamps`` is a positive multiple of ``chunk_stamps``."""
    if chunk_stamps < 1 or shard_stamps < 1 or shard_stamps % chunk_stamps:
        raise ValueError(f"shard_stamps ({shard_stamps}) must be a positive multiple of chunk_stamps "
                         f"({chunk_stamps})")


def _check_sources(sources: Sequence[VisitSource]) -> None:
    """Raise ValueError for no sources, repeated visits, or a field with both evaluation and training visits."""
    if not sources:
        raise ValueError("no visits to build a data set from")
    visits = [s.visit for s in sources]
    repeated = sorted({v for v in visits if visits.count(v) > 1})
    if repeated:
        raise ValueError(f"visit(s) listed more than once: {repeated[:_SHOWN]}")
    mixed = sorted({s.field for s in sources if s.evaluation} & {s.field for s in sources if not s.evaluation})
    if mixed:
        raise ValueError(f"field(s) {mixed} have both evaluation and training visits; a field is one or the other")


def _exclude_nonfinite(sources: Sequence[VisitSource]) -> tuple[list[VisitSource], dict[str, str]]:
    """Leave out every visit whose shard or augmentation shard holds NaN or inf pixels, logging each as an error.

    Returns the visits kept and, per visit left out, the reason (the shard and the first bad row).

    Raises
    ------
    ValueError
        If every visit is left out.
    """
    kept, excluded = [], {}
    for source in sources:
        problem = next(filter(None, (_nonfinite_rows(path) for path in (source.shard, source.augment) if path)), None)
        if problem is None:
            kept.append(source)
            continue
        excluded[source.visit] = problem
        LOG.error("visit %s left out of the data set: %s", source.visit, problem)
    if not kept:
        raise ValueError(f"every visit holds non-finite stamps; none is left to build a data set from: {excluded}")
    return kept, excluded


def _nonfinite_rows(path) -> str | None:
    """Describe the non-finite stamps of a shard (``None`` if every pixel is finite)."""
    finite = np.isfinite(read_shard(path).stamps).all(axis=(1, 2, 3))
    if finite.all():
        return None
    rows = np.flatnonzero(~finite)
    return f"{path}: {len(rows)} stamp(s) hold NaN or inf pixels, e.g. row(s) {rows[:_SHOWN].tolist()}"


def _collect_rows(sources, human_labels) -> tuple[_Geometry, list[_VisitRows], dict | None]:
    """First pass: read every visit's meta, join the labels, apply human labels, keep the labelled rows."""
    geometry = None
    metas, augments = [], []
    for source in sources:
        meta, attrs = read_shard_meta(source.shard)
        geometry = _check_geometry(geometry, attrs, source.shard)
        meta = _join_labels(meta, source)
        metas.append(_join_truth(meta, source) if source.truth else meta)
        augment = None
        if source.augment is not None:
            augment, attrs = read_shard_meta(source.augment)
            geometry = _check_geometry(geometry, attrs, source.augment)
            augment = _augment_meta(augment, source.augment)
        augments.append(augment)
    human_summary = None
    if human_labels is not None:
        human_summary = apply_human_labels(metas, read_human_labels(human_labels))
    visits = [_labelled_rows(source, meta, augment)
              for source, meta, augment in zip(sources, metas, augments, strict=True)]
    _check_unique_ids(visits)
    return geometry, visits, human_summary


def _check_geometry(reference: _Geometry | None, attrs: dict, path) -> _Geometry:
    """Return a shard's geometry from its attrs; BadInputError naming it if it disagrees with ``reference``."""
    channels, size = tuple(attrs.get("channels", ())), attrs.get("stamp_size")
    if not channels or not isinstance(size, int):
        raise BadInputError(path, "shard attrs lack 'channels' or an integer 'stamp_size'")
    geometry = _Geometry(shape=(size, size, len(channels)), channels=channels, units=attrs.get("units"),
                         pixel_scale_arcsec=attrs.get("pixel_scale_arcsec"))
    if reference is None:
        return geometry
    if geometry.channels != reference.channels:
        raise BadInputError(path, f"channels {list(geometry.channels)} differ from the other shards' "
                                  f"{list(reference.channels)}")
    if geometry.shape[:2] != reference.shape[:2]:
        raise BadInputError(path, f"stamp size {geometry.shape[:2]} differs from the other shards' "
                                  f"{reference.shape[:2]}")
    if geometry.units != reference.units:
        raise BadInputError(path, f"units {geometry.units!r} differ from the other shards' {reference.units!r}")
    return reference


def _join_labels(shard_meta: dict[str, np.ndarray], source: VisitSource) -> dict[str, np.ndarray]:
    """Return the shard's meta with the label table's labels, kinds and extra columns joined by candidate_id."""
    table = _read_label_table(source.labels)
    ids = shard_meta["candidate_id"]
    position = {cid: i for i, cid in enumerate(ids)}
    table_ids = np.asarray(table["candidate_id"], dtype=str)
    unknown = [cid for cid in table_ids if cid not in position]
    if unknown:
        raise BadInputError(source.labels, f"{len(unknown)} candidate_id(s) are not in the shard {source.shard}, "
                                           f"e.g. {unknown[:_SHOWN]}")
    extra = [name for name in table.colnames if name not in _LABEL_KEYS]
    clash = [name for name in extra if name in shard_meta]
    if clash:
        raise BadInputError(source.labels, f"column(s) {clash} are also columns of the shard {source.shard}")
    rows = np.array([position[cid] for cid in table_ids], dtype=int)
    labelled = np.zeros(len(ids), dtype=bool)
    labelled[rows] = True
    meta = dict(shard_meta)
    meta["label"] = shard_meta["label"].copy()
    meta["label"][rows] = np.asarray(table["label"], dtype=np.int8)
    meta["kind"] = np.where(labelled, _scatter(np.asarray(table["kind"], dtype=str), rows, len(ids)), meta["kind"])
    meta |= {name: _scatter(_column_values(table[name]), rows, len(ids)) for name in extra}
    meta["label_source"] = np.where(meta["label"] >= 0, "auto", "")
    return meta


def _join_truth(meta: dict[str, np.ndarray], source: VisitSource) -> dict[str, np.ndarray]:
    """Return the shard's meta with the columns of its truth table, which must list the shard's candidates."""
    table = _read_ecsv(source.truth, "truth table")
    ids = np.asarray(table["candidate_id"], dtype=str) if "candidate_id" in table.colnames else None
    if ids is None or not np.array_equal(ids, meta["candidate_id"]):
        raise BadInputError(source.truth, f"its candidate_id column does not list the candidates of the shard "
                                          f"{source.shard} in order")
    clash = [name for name in table.colnames if name in meta and name != "candidate_id"]
    if clash:
        raise BadInputError(source.truth, f"column(s) {clash} are also columns of the shard {source.shard}")
    return meta | {name: _column_values(table[name]) for name in table.colnames if name != "candidate_id"}


def _read_ecsv(path, what: str) -> Table:
    """Read an ECSV table; BadInputError naming it if it is missing or unreadable."""
    if not Path(path).is_file():
        raise BadInputError(path, f"{what} does not exist")
    try:
        return Table.read(path, format="ascii.ecsv")
    except Exception as error:  # astropy raises several types for malformed ECSV
        raise BadInputError(path, f"not a readable ECSV table ({type(error).__name__}: {error})") from error


def _read_label_table(path) -> Table:
    """Read a label table; BadInputError if it is missing, unreadable, or has bad columns, labels or ids."""
    table = _read_ecsv(path, "label table")
    missing = [name for name in _LABEL_KEYS if name not in table.colnames]
    if missing:
        raise BadInputError(path, f"label table lacks column(s) {missing}")
    labels = table["label"]
    if np.ma.is_masked(labels) or not np.isin(np.asarray(labels), (0, 1)).all():
        bad = sorted({str(v) for v in np.ma.asarray(labels).tolist(fill_value=None) if v not in (0, 1)})
        raise BadInputError(path, f"labels must be 0 or 1, found {bad[:_SHOWN]}")
    ids = np.asarray(table["candidate_id"], dtype=str)
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise BadInputError(path, f"candidate_id(s) listed more than once: {values[counts > 1][:_SHOWN].tolist()}")
    return table


def _augment_meta(meta: dict[str, np.ndarray], path) -> dict[str, np.ndarray]:
    """Return an augmentation shard's meta, marked as augmentation; every row must be labelled 0 or 1."""
    if not np.isin(meta["label"], (0, 1)).all():
        raise BadInputError(path, "every row of an augmentation shard must be labelled 0 or 1")
    return meta | {"label_source": np.full(len(meta["label"]), "augment")}


def _labelled_rows(source: VisitSource, meta: dict, augment: dict | None) -> _VisitRows:
    """Keep the labelled shard rows of a visit, add its augmentation rows, and note where every stamp is."""
    keep = np.flatnonzero(meta["label"] >= 0)
    parts = [{name: values[keep] for name, values in meta.items()}]
    n_augment = 0
    if augment is not None:
        parts.append(augment)
        n_augment = len(augment["candidate_id"])
    return _VisitRows(source=source, meta=_concat_columns(parts),
                      from_augment=np.concatenate([np.zeros(len(keep), bool), np.ones(n_augment, bool)]),
                      index=np.concatenate([keep, np.arange(n_augment)]))


def _check_unique_ids(visits: list[_VisitRows]) -> None:
    ids = np.concatenate([v.meta["candidate_id"] for v in visits])
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"{int(np.sum(counts > 1))} candidate_id(s) occur more than once across the shards, "
                         f"e.g. {values[counts > 1][:_SHOWN].tolist()}")


def _assign_fields(visits: list[_VisitRows], fractions, seed: int, sources) -> dict[str, str]:
    """Map every field to a split from its number of rows."""
    counts: dict[str, int] = {}
    for visit in visits:
        counts[visit.source.field] = counts.get(visit.source.field, 0) + len(visit.index)
    return assign_splits(counts, fractions, seed, {s.field for s in sources if s.evaluation})


def _order_rows(visits: list[_VisitRows], assignment: dict[str, str], seed: int) -> list[_VisitRows]:
    """Return the visits in data-set order, each with ``field`` and ``split`` columns and its rows permuted."""
    ordered = []
    for split in SPLITS:
        members = sorted((v for v in visits if assignment[v.source.field] == split), key=lambda v: v.source.visit)
        for position in rng_for(seed, "visit-order", split).permutation(len(members)):
            ordered.append(_permuted(members[position], split, seed))
    return ordered


def _permuted(visit: _VisitRows, split: str, seed: int) -> _VisitRows:
    """Return the visit's rows in a seeded random permutation, with ``field`` and ``split`` columns added."""
    n = len(visit.index)
    order = rng_for(seed, "row-order", visit.source.visit).permutation(n)
    meta = {name: values[order] for name, values in visit.meta.items()}
    meta |= {"field": np.full(n, visit.source.field), "split": np.full(n, split)}
    return _VisitRows(source=visit.source, meta=meta, from_augment=visit.from_augment[order],
                      index=visit.index[order])


def _check_evaluation_only(meta: dict[str, np.ndarray], eval_fields: set[str]) -> None:
    """Raise ValueError if an injected_* row or a row of an evaluation field is outside the eval split."""
    outside = meta["split"] != EVAL_SPLIT
    problems = {
        f"kind {INJECTED_PREFIX}*": np.char.startswith(meta["kind"], INJECTED_PREFIX) & outside,
        "an evaluation field": np.isin(meta["field"], sorted(eval_fields)) & outside,
    }
    for what, bad in problems.items():
        if bad.any():
            visits = sorted(set(meta["visit"][bad].tolist()))
            raise ValueError(f"{int(bad.sum())} row(s) of {what} would go to a training split (visits "
                             f"{visits[:_SHOWN]}); evaluation-only data must never reach training")


def _summary(meta, assignment, geometry: _Geometry, human_summary, fractions, seed: int) -> dict[str, Any]:
    """Return the data set's own group attrs."""
    split, kind, label = meta["split"], meta["kind"], meta["label"]
    stops = np.cumsum([np.sum(split == s) for s in SPLITS]).tolist()
    starts = [0, *stops[:-1]]
    return {
        "channels": list(geometry.channels),
        "stamp_size": int(geometry.shape[0]),
        "units": geometry.units,
        "pixel_scale_arcsec": geometry.pixel_scale_arcsec,
        "n_stamps": int(len(split)),
        "split_ranges": {s: [a, b] for s, a, b in zip(SPLITS, starts, stops, strict=True)},
        "split_fields": {s: sorted(f for f, fs in assignment.items() if fs == s) for s in SPLITS},
        "kind_counts": {s: value_counts(kind[split == s]) for s in SPLITS},
        "class_counts": {s: {CLASS_NAMES[c]: int(np.sum(label[split == s] == c)) for c in (REAL, BOGUS)}
                         for s in SPLITS},
        "human_labels": human_summary,
        "fractions": check_fractions(fractions),
        "seed": int(seed),
        "bayesrb_version": __version__,
    }


def _merge_attrs(summary: dict[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    clash = sorted(set(attrs) & set(summary))
    if clash:
        raise ValueError(f"attrs must not set the data set's own key(s) {clash}")
    return summary | dict(attrs)


def _create_stamps(group: zarr.Group, n: int, geometry: _Geometry, chunk_stamps: int, shard_stamps: int):
    """Create the sharded ``stamps`` array with its channel names, units and axes."""
    array = group.create_array(
        "stamps",
        shape=(n, *geometry.shape),
        dtype=np.float32,
        chunks=(chunk_stamps, *geometry.shape),
        shards=(shard_stamps, *geometry.shape),
        compressors=STAMP_CODECS,
        fill_value=0.0,
    )
    array.attrs.update(channels=list(geometry.channels), units=geometry.units,
                       axes=["stamp", "row", "col", "channel"])
    return array


def _write_stamps(array: zarr.Array, ordered: list[_VisitRows], shard_stamps: int) -> None:
    """Second pass: read the visits in data-set order and write their stamps one whole shard at a time."""
    buffer = np.empty((max(1, min(shard_stamps, array.shape[0])), *array.shape[1:]), dtype=np.float32)
    start = filled = 0
    for visit in ordered:
        stamps = _visit_stamps(visit, array.shape[1:])
        while len(stamps):
            take = min(len(stamps), len(buffer) - filled)
            buffer[filled:filled + take] = stamps[:take]
            filled, stamps = filled + take, stamps[take:]
            if filled == len(buffer):
                array[start:start + filled] = buffer
                start, filled = start + filled, 0
    if filled:
        array[start:start + filled] = buffer[:filled]


def _visit_stamps(visit: _VisitRows, shape: tuple[int, ...]) -> np.ndarray:
    """Read one visit's stamps (shard and augmentation rows) in its data-set row order."""
    stamps = np.empty((len(visit.index), *shape), np.float32)
    for path, mask in ((visit.source.shard, ~visit.from_augment), (visit.source.augment, visit.from_augment)):
        if mask.any():
            source = read_shard(path).stamps
            if source.shape[1:] != shape:
                raise BadInputError(path, f"stamps of shape {source.shape[1:]} disagree with its attrs {shape}")
            stamps[mask] = source[visit.index[mask]]
    return stamps


def _concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate column dicts; a column missing from a part is filled with NaN, -1 or "" for that part."""
    lengths = [len(part["candidate_id"]) for part in parts]
    names = list(dict.fromkeys(name for part in parts for name in part))
    columns = {}
    for name in names:
        present = [part[name] for part in parts if name in part]
        dtype = _common_dtype(name, present)
        if len(present) < len(parts):
            dtype, fill = _with_missing(dtype)
            present = [part[name] if name in part else np.full(n, fill, dtype)
                       for part, n in zip(parts, lengths, strict=True)]
        columns[name] = np.concatenate(present).astype(dtype, copy=False)
    return columns


def _common_dtype(name: str, arrays: list[np.ndarray]) -> np.dtype:
    kinds = {a.dtype.kind for a in arrays}
    if kinds <= set("U") or kinds <= set("biuf"):
        return np.result_type(*(a.dtype for a in arrays))
    raise ValueError(f"meta column {name!r} has incompatible types across the inputs: {sorted(kinds)}")


def _with_missing(dtype: np.dtype) -> tuple[np.dtype, Any]:
    """Return a dtype able to mark missing values (bool widened to int8) and the missing value itself."""
    if dtype.kind == "U":
        return dtype, ""
    if dtype.kind == "f":
        return dtype, np.nan
    return np.result_type(dtype, np.int8), -1


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Return a length-``n`` column with ``values`` at ``rows`` and the missing value elsewhere."""
    dtype, fill = _with_missing(values.dtype)
    column = np.full(n, fill, dtype)
    column[rows] = values
    return column


def _column_values(column) -> np.ndarray:
    """Return a table column as a plain array: text as ``str``, masked entries as the missing value."""
    values = np.ma.asarray(column)
    if values.dtype.kind in "OSU":
        values = values.astype(str)
    dtype, fill = _with_missing(values.dtype)
    return np.ma.filled(values.astype(dtype), fill)


def _order_columns(meta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the columns in data-set order: SHARD_META_COLUMNS, DATASET_COLUMNS, then the rest by name."""
    first = [*SHARD_META_COLUMNS, *DATASET_COLUMNS]
    return {name: meta[name] for name in [*first, *sorted(set(meta) - set(first))]}
