"""Per-visit stamp shards: one zarr v3 group per visit, written atomically.

Layout of a shard directory::

    zarr.json                 group attrs: the caller's attrs (units, pixel_scale_arcsec, stamp_size, seed,
                              config_hash, ...) plus bayesrb_version, n_candidates, channels
    stamps/                   float32 (N, H, W, C) = [candidate, row, col, channel], chunked along N;
                              attrs: channels (list of str), units
    meta/<column>/            one 1-D array of length N per column (see SHARD_META_COLUMNS), plus any
                              extra columns such as truth_*

Stamp pixel ``[i, j]`` is at array ``[row, col]``; the meta columns ``x`` and ``y`` are pixel coordinates with
``x`` the column and ``y`` the row (0-based), as produced by :func:`bayesrb.stamps.extract.extract_stamps`.

A shard is read through :func:`bayesrb.stamps.store.open_store`, which checks the layout every stamp store shares;
this module adds the required meta columns (:data:`SHARD_META_COLUMNS`).

Identical input gives byte-identical files (zarr v3 writes no timestamps, the codecs are deterministic and
JSON keys keep the order in which they are given).
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from bayesrb import __version__
from bayesrb.atomic import atomic_path
from bayesrb.stamps.store import as_numpy, open_store

__all__ = [
    "SHARD_META_COLUMNS",
    "SHARD_REQUIRED_ATTRS",
    "STAMPS_PER_CHUNK",
    "Shard",
    "write_shard",
    "read_shard",
    "read_shard_meta",
]

#: Required meta columns and the dtype each is stored with (``str`` = variable-length UTF-8).
#: ``x``, ``y`` are 0-based pixel coordinates (x = column); ``ra``, ``dec`` in degrees; ``mag`` and
#: ``mag_err`` in magnitudes; ``fwhm`` in pixels; ``sign`` is +1 for a positive and -1 for a negative
#: (``-D``) detection; ``flags`` a bitmask (see :mod:`bayesrb.stamps.extract`); ``label`` is 1 real,
#: 0 bogus, -1 unlabelled; ``kind`` the source class, ``""`` if unknown.
SHARD_META_COLUMNS: dict[str, type | np.dtype] = {
    "candidate_id": str,
    "visit": str,
    "x": np.dtype(np.float64),
    "y": np.dtype(np.float64),
    "ra": np.dtype(np.float64),
    "dec": np.dtype(np.float64),
    "mag": np.dtype(np.float32),
    "mag_err": np.dtype(np.float32),
    "snr": np.dtype(np.float32),
    "fwhm": np.dtype(np.float32),
    "sign": np.dtype(np.int8),
    "flags": np.dtype(np.int32),
    "label": np.dtype(np.int8),
    "kind": str,
}

#: Group attrs the caller must pass to :func:`write_shard`.
SHARD_REQUIRED_ATTRS: tuple[str, ...] = ("units", "pixel_scale_arcsec", "stamp_size", "seed", "config_hash")

#: Number of stamps per chunk of the ``stamps`` array (fewer if the shard is smaller).
STAMPS_PER_CHUNK: int = 256

STAMP_CODECS = (zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle=zarr.codecs.BloscShuffle.shuffle),)
META_CODECS = (zarr.codecs.ZstdCodec(level=3),)


@dataclass
class Shard:
    """A stamp shard loaded into memory.

    Attributes
    ----------
    stamps : numpy.ndarray
        ``float32`` ``(N, H, W, C)`` indexed ``[candidate, row, col, channel]``.
    channels : tuple of str
        Channel names in the order of the last axis of ``stamps``.
    meta : dict of str to numpy.ndarray
        One 1-D array of length ``N`` per column; string columns come back as NumPy ``str`` (``<U``) arrays.
    attrs : dict
        The group attributes (units, pixel scale, stamp size, seed, config hash, package version, ...).
    """

    stamps: np.ndarray
    channels: tuple[str, ...]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.stamps.shape[0])


def write_shard(
    path: str | os.PathLike,
    stamps: np.ndarray,
    channels: Sequence[str],
    meta: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
) -> None:
    """Write one stamp shard as a zarr v3 group directory, atomically.

    The group is written to a temporary sibling directory and renamed onto ``path`` only when complete, so a
    failure leaves no directory at ``path`` (or the previous shard there untouched).

    Parameters
    ----------
    path : str or os.PathLike
        The shard directory to create or replace.
    stamps : numpy.ndarray
        ``(N, H, W, C)`` stamps, ``[candidate, row, col, channel]``; stored as ``float32``. ``N`` may be 0.
    channels : sequence of str
        ``C`` distinct channel names, e.g. :data:`bayesrb.stamps.extract.CHANNELS_BASE`.
    meta : mapping of str to array-like
        Per-candidate columns, each 1-D of length ``N``. Every column of :data:`SHARD_META_COLUMNS` is
        required and cast to its dtype (integer columns must hold representable integers); extra columns
        (e.g. ``truth_*``) are kept with their own dtype, text as ``str``.
    attrs : mapping
        JSON-serialisable group attributes; must include :data:`SHARD_REQUIRED_ATTRS`. ``units`` is also
        attached to the ``stamps`` array. The keys ``bayesrb_version``, ``n_candidates`` and ``channels``
        are set by this function.

    Raises
    ------
    ValueError
        If the stamps are not 4-D, the channel names do not match the last axis, a required meta column or
        attr is missing, a column has the wrong length or cannot be cast, or ``stamp_size`` disagrees with
        the stamps.
    """
    stamps, channels = _check_stamps(stamps, channels)
    columns = _check_meta(meta, stamps.shape[0])
    group_attrs = _group_attrs(attrs, stamps, channels)
    with atomic_path(path, directory_signature="zarr.json") as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        group.attrs.update(group_attrs)
        _write_stamps(group, stamps, channels, group_attrs["units"])
        write_meta_columns(group.create_group("meta"), columns)


def read_shard(path: str | os.PathLike) -> Shard:
    """Read a stamp shard written by :func:`write_shard`.

    Parameters
    ----------
    path : str or os.PathLike
        The shard directory.

    Returns
    -------
    Shard
        Stamps, channel names, meta columns and group attributes.

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``path`` is missing, is not a zarr v3 group, lacks ``stamps`` or ``meta``, is inconsistent (channel
        count, required meta columns, column lengths), or a file of it is damaged.
    """
    store = open_store(path, "stamp shard")
    meta = store.read_meta(tuple(SHARD_META_COLUMNS))
    return Shard(stamps=store.read_stamps(), channels=store.channels, meta=meta, attrs=store.attrs)


def read_shard_meta(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read only the meta columns and group attributes of a stamp shard (no stamps).

    Parameters
    ----------
    path : str or os.PathLike
        The shard directory.

    Returns
    -------
    meta : dict of str to numpy.ndarray
        The meta columns, as in :class:`Shard`.
    attrs : dict
        The group attributes.

    Raises
    ------
    bayesrb.errors.BadInputError
        As :func:`read_shard`.
    """
    store = open_store(path, "stamp shard")
    return store.read_meta(tuple(SHARD_META_COLUMNS)), store.attrs


def _check_stamps(stamps, channels) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return stamps as C-contiguous ``float32`` and channels as a tuple, after checking they agree."""
    stamps = np.ascontiguousarray(stamps, dtype=np.float32)
    channels = tuple(str(c) for c in channels)
    if stamps.ndim != 4:
        raise ValueError(f"stamps must be 4-D (N, H, W, C), got shape {stamps.shape}")
    if len(channels) != stamps.shape[3] or len(set(channels)) != len(channels):
        raise ValueError(f"need {stamps.shape[3]} distinct channel names for stamps, got {list(channels)}")
    return stamps, channels


def _check_meta(meta: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Validate and cast the meta columns; return them in a new dict, required columns first."""
    missing = [name for name in SHARD_META_COLUMNS if name not in meta]
    if missing:
        raise ValueError(f"meta is missing required column(s): {', '.join(missing)}")
    columns = {name: _cast_column(name, meta[name], dtype) for name, dtype in SHARD_META_COLUMNS.items()}
    for name, values in meta.items():
        if name not in columns:
            columns[str(name)] = _cast_column(str(name), values, None)
    wrong = {name: len(col) for name, col in columns.items() if col.shape != (n,)}
    if wrong:
        raise ValueError(f"meta columns must be 1-D of length {n} (number of stamps), got lengths {wrong}")
    return columns


def _cast_column(name: str, values, dtype) -> np.ndarray:
    """Return ``values`` as a 1-D array of ``dtype`` (``None``: keep numeric dtypes, text as ``str``)."""
    if not name or "/" in name or name.startswith("__"):
        raise ValueError(f"invalid meta column name {name!r}")
    array = np.asarray(values)
    if dtype is str or (dtype is None and array.dtype.kind in "OUST"):
        return np.atleast_1d(as_numpy(array) if array.dtype.kind in "OT" else array.astype(str))
    if dtype is None:
        return np.atleast_1d(array)
    try:
        cast = np.atleast_1d(array.astype(dtype))
    except (TypeError, ValueError) as error:
        raise ValueError(f"meta column {name!r} cannot be cast to {dtype}: {error}") from error
    if dtype.kind in "iu" and not np.array_equal(cast, np.atleast_1d(array)):
        raise ValueError(f"meta column {name!r} holds values not representable as {dtype}")
    return cast


def _group_attrs(attrs: Mapping[str, Any], stamps: np.ndarray, channels: tuple[str, ...]) -> dict:
    """Merge the caller's attrs with the ones this module owns; check the required ones."""
    missing = [key for key in SHARD_REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"attrs is missing required key(s): {', '.join(missing)}")
    size = attrs["stamp_size"]
    if np.ndim(size) != 0 or stamps.shape[1:3] != (size, size):
        raise ValueError(f"attrs stamp_size={size!r} disagrees with stamps of shape {stamps.shape}")
    merged = {str(key): _jsonable(value) for key, value in attrs.items()}
    merged.update(bayesrb_version=__version__, n_candidates=int(stamps.shape[0]), channels=list(channels))
    return merged


def _jsonable(value):
    """Convert NumPy scalars/arrays and tuples (recursively) to plain JSON-serialisable Python objects."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _write_stamps(group: zarr.Group, stamps: np.ndarray, channels: tuple[str, ...], units) -> None:
    """Write the ``stamps`` array, chunked along the candidate axis, with its channel names and units."""
    n, height, width, n_channels = stamps.shape
    array = group.create_array(
        "stamps",
        shape=stamps.shape,
        dtype=np.float32,
        chunks=(max(1, min(n, STAMPS_PER_CHUNK)), height, width, n_channels),
        compressors=STAMP_CODECS,
        fill_value=0.0,
    )
    array.attrs.update(channels=list(channels), units=units, axes=["candidate", "row", "col", "channel"])
    if n:
        array[...] = stamps


def write_meta_columns(meta_group: zarr.Group, columns: dict[str, np.ndarray]) -> None:
    """Write each meta column as a single-chunk 1-D array."""
    for name, values in columns.items():
        is_text = values.dtype.kind in "UST"
        array = meta_group.create_array(
            name,
            shape=values.shape,
            dtype=str if is_text else values.dtype,
            chunks=(max(1, len(values)),),
            compressors=META_CODECS,
        )
        if len(values):
            array[...] = values
