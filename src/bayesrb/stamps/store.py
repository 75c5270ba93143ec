"""Opening a zarr v3 stamp store and checking its layout: the one reader of every kind of stamp store.

A per-visit stamp shard (:mod:`bayesrb.stamps.shard`), an augmentation shard and the consolidated data set
(:mod:`bayesrb.dataset.store`) share one layout::

    zarr.json      group attrs
    stamps/        float32 (N, H, W, C) = [stamp, row, col, channel]; attrs: channels (one name per channel)
    meta/<column>/ one 1-D array of length N per column

:func:`open_store` opens any of them for its readers (shards, the data set, the model's input in
:mod:`bayesrb.model.data`) and checks that layout; what is particular to one kind of store (a shard's required
columns, a data set's splits) its own module checks. Every problem, a damaged file included, is one
:class:`~bayesrb.errors.BadInputError` naming the store.
"""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from bayesrb.errors import BadInputError

__all__ = ["StampStore", "as_numpy", "open_store"]


@dataclass(frozen=True)
class StampStore:
    """A stamp store whose layout is checked; stamps and meta columns stay on disk until read.

    Attributes
    ----------
    path : pathlib.Path
        The store directory.
    what : str
        What kind of store it is (``"stamp shard"``, ``"data-set store"``, ...), for the messages.
    stamps : zarr.Array
        ``float32`` ``(N, H, W, C)`` indexed ``[stamp, row, col, channel]``.
    channels : tuple of str
        Channel names in the order of the last axis of ``stamps``.
    attrs : dict
        The group attributes.
    columns : dict of str to zarr.Array
        The meta columns, each 1-D of length ``N``.
    """

    path: Path
    what: str
    stamps: zarr.Array
    channels: tuple[str, ...]
    attrs: dict[str, Any]
    columns: dict[str, zarr.Array]

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    def read_stamps(self, rows: slice = slice(None)) -> np.ndarray:
        """Read a block of stamps as ``float32`` ``(n, H, W, C)``.

        Raises
        ------
        bayesrb.errors.BadInputError
            If a chunk of it is damaged.
        """
        with _read_errors(self.path, self.what):
            return np.asarray(self.stamps[rows], dtype=np.float32)

    def column(self, name: str) -> np.ndarray:
        """Read one meta column (text as a NumPy ``str`` array).

        Raises
        ------
        bayesrb.errors.BadInputError
            If the column is missing or damaged.
        """
        self._require([name])
        with _read_errors(self.path, self.what):
            return as_numpy(self.columns[name][...])

    def read_meta(self, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Read every meta column (text as NumPy ``str`` arrays): the ``required`` ones first, the others by name.

        Raises
        ------
        bayesrb.errors.BadInputError
            If a required column is missing, or a column is damaged.
        """
        self._require(required)
        order = [*required, *sorted(set(self.columns) - set(required))]
        with _read_errors(self.path, self.what):
            return {name: as_numpy(self.columns[name][...]) for name in order}

    def _require(self, names: Sequence[str]) -> None:
        """Raise BadInputError naming the store unless it has every meta column of ``names``."""
        missing = [name for name in names if name not in self.columns]
        if missing:
            raise BadInputError(self.path, f"meta is missing required column(s): {', '.join(missing)}")


def open_store(path: str | os.PathLike, what: str = "stamp store") -> StampStore:
    """Open a stamp store read-only and check its layout.

    Parameters
    ----------
    path : str or os.PathLike
        The store directory.
    what : str
        What the directory should be (``"stamp shard"``, ``"data-set store"``, ...), for the messages.

    Returns
    -------
    StampStore

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``path`` is missing or not a zarr v3 group, has no 4-D ``stamps`` array, the ``channels`` attr of
        ``stamps`` (or, for stores written without it, of the group) does not name one channel per channel of
        ``stamps``, there is no ``meta`` group, a meta column's length differs from the number of stamps, or a file
        of it is damaged.
    """
    with _read_errors(path, what):
        group = _open_group(path, what)
        stamps = group.get("stamps")
        if not isinstance(stamps, zarr.Array) or stamps.ndim != 4:
            raise BadInputError(path, f"not a {what}: no 4-D 'stamps' array")
        channels = tuple(stamps.attrs.get("channels", group.attrs.get("channels", ())))
        if len(channels) != stamps.shape[3]:
            raise BadInputError(path, f"'stamps' has {stamps.shape[3]} channels but its attrs name {len(channels)}")
        return StampStore(Path(path), what, stamps, channels, dict(group.attrs),
                          _meta_columns(path, group, what, stamps.shape[0]))


@contextmanager
def _read_errors(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn any error raised while reading the zarr store ``path`` into a :class:`BadInputError` naming it.

    zarr and its codecs raise many types for damaged files (JSON errors for a broken ``zarr.json``, codec
    ``RuntimeError`` for a corrupt chunk, ``ValueError``, ``KeyError``, ...).
    """
    try:
        yield
    except BadInputError:
        raise
    except Exception as error:
        raise BadInputError(path, f"corrupt {what} ({type(error).__name__}: {error})") from error


def as_numpy(values: np.ndarray) -> np.ndarray:
    """Return string columns (NumPy ``StringDType`` or object) as ``str`` (``<U``) arrays."""
    values = np.asarray(values)
    if values.dtype.kind in "OT":
        return np.array(values.tolist(), dtype=str).reshape(values.shape)
    return values


def _open_group(path: str | os.PathLike, what: str) -> zarr.Group:
    """Open ``path`` read-only as a zarr v3 group, or raise BadInputError naming it."""
    if not Path(path).exists():
        raise BadInputError(path, f"{what} directory does not exist")
    if not Path(path).is_dir():
        raise BadInputError(path, f"not a {what}: not a directory")
    try:
        return zarr.open_group(path, mode="r", zarr_format=3)
    except Exception as error:  # zarr raises several types for a missing or malformed zarr.json
        raise BadInputError(path, f"not a zarr v3 group ({type(error).__name__}: {error})") from error


def _meta_columns(path, group: zarr.Group, what: str, n: int) -> dict[str, zarr.Array]:
    """The arrays of the ``meta`` group, each checked to be 1-D of length ``n``."""
    meta = group.get("meta")
    if not isinstance(meta, zarr.Group):
        raise BadInputError(path, f"not a {what}: no 'meta' group")
    columns = dict(meta.arrays())
    wrong = {name: column.shape for name, column in columns.items() if column.shape != (n,)}
    if wrong:
        raise BadInputError(path, f"meta columns do not match the {n} stamps: shapes {wrong}")
    return columns
