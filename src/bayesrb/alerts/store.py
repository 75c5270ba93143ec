"""Writing a stamp store block by block while records stream in, so that memory does not grow with their number.

:class:`BlockWriter` appends each stamp and its meta row to a zarr v3 group with the layout of a stamp shard
(:mod:`bayesrb.stamps.shard`: ``stamps`` and ``meta/<column>``, the same attrs): the stamps are written one chunk
of :data:`~bayesrb.stamps.shard.STAMPS_PER_CHUNK` rows at a time, the meta columns one chunk of ``meta_blocks``
stamp chunks at a time (buffered as columns in between, so that there are few meta files), and the arrays grow as
they are written, so the total need not be known in advance. The store reads back exactly as the one
:func:`~bayesrb.stamps.shard.write_shard` writes for the same rows; only its chunks (fixed, not sized by the total)
and the stamps' compression (:data:`ALERT_STAMP_CODECS`) differ.

The writer writes into the directory it is given; atomicity is the caller's (write into
:func:`bayesrb.atomic.atomic_path`'s temporary directory, which is removed if anything fails).
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from bayesrb import __version__
from bayesrb.stamps.shard import META_CODECS, STAMPS_PER_CHUNK

__all__ = ["ALERT_STAMP_CODECS", "BlockWriter"]

#: Compression of the stamps: none, unlike the shards' zstd level 5 (:data:`bayesrb.stamps.shard.STAMP_CODECS`).
#: Alert cutouts are noise-dominated ``float32``, which compresses little (ZTF's: about 1.18:1 with Blosc lz4, 1.32:1
#: with zstd), and compressing costs more than the rest of writing (lz4's CPU time and the page faults of its
#: freshly mapped output buffer per chunk: README.md, *Real alert packets*, gives the measurement).
#: Uncompressed chunks are also the fastest to read back. Every reader decodes either.
ALERT_STAMP_CODECS: tuple = ()


class BlockWriter:
    """Append stamps and meta rows to a new stamp store, writing them in blocks as they fill.

    Parameters
    ----------
    path : str or os.PathLike
        The store directory to create (a temporary one: see the module docstring).
    channels : sequence of str
        Channel names, in the order of the stamps' last axis.
    columns : mapping of str to numpy.dtype or type
        The meta columns and their dtypes (``str``: variable-length text), required ones first.
    stamp_shape : tuple of int
        ``(H, W)`` of a stamp.
    units : str
        Units of the pixels (attrs of ``stamps``).
    block_rows : int
        Stamps per chunk, written when it fills.
    meta_blocks : int
        Stamp chunks per chunk of the meta columns.
    """

    def __init__(self, path: str | os.PathLike, channels: Sequence[str], columns: Mapping[str, Any],
                 stamp_shape: tuple[int, int], units: str, block_rows: int = STAMPS_PER_CHUNK, meta_blocks: int = 64):
        self.channels, self.columns, self.count = tuple(channels), dict(columns), 0
        self.group = zarr.open_group(path, mode="w", zarr_format=3)
        self._block = np.empty((block_rows, *stamp_shape, len(self.channels)), dtype=np.float32)
        self._rows: list[Mapping[str, Any]] = []
        self._pieces: dict[str, list[np.ndarray]] = {name: [] for name in self.columns}
        self._meta_rows, self._buffered = block_rows * meta_blocks, 0
        self._stamps = self.group.create_array(
            "stamps", shape=(0, *self._block.shape[1:]), dtype=np.float32, chunks=self._block.shape,
            compressors=ALERT_STAMP_CODECS, fill_value=0.0)
        self._stamps.attrs.update(channels=list(self.channels), units=units,
                                  axes=["candidate", "row", "col", "channel"])
        meta = self.group.create_group("meta")
        self._meta = {name: meta.create_array(name, shape=(0,), dtype=dtype, chunks=(self._meta_rows,),
                                              compressors=META_CODECS) for name, dtype in self.columns.items()}

    def append(self, stamps: np.ndarray, row: Mapping[str, Any]) -> None:
        """Add one stamp and its meta row; write the block when it is full.

        Parameters
        ----------
        stamps : numpy.ndarray
            ``(H, W, C)`` ``[row, col, channel]``.
        row : mapping
            One value per meta column (extra keys are ignored).
        """
        self._block[len(self._rows)] = stamps
        self._rows.append(row)
        self.count += 1
        if len(self._rows) == len(self._block):
            self._flush_block()

    def close(self, attrs: Mapping[str, Any]) -> int:
        """Write what is buffered and the group attrs (those of a shard: ``attrs`` plus version, count, channels).

        Parameters
        ----------
        attrs : mapping
            JSON-serialisable group attrs (units, pixel scale, stamp size, seed, config hash, ...).

        Returns
        -------
        int
            Rows written.
        """
        self._flush_block()
        self._flush_meta()
        self.group.attrs.update({**attrs, "bayesrb_version": __version__, "n_candidates": self.count,
                                 "channels": list(self.channels)})
        return self.count

    def _flush_block(self) -> None:
        """Write the buffered stamps; turn their meta rows into column pieces, written when a meta chunk is full."""
        if not self._rows:
            return
        self._stamps.append(self._block[:len(self._rows)])
        for name, dtype in self.columns.items():
            self._pieces[name].append(np.array([row[name] for row in self._rows], dtype=dtype))
        self._buffered += len(self._rows)
        self._rows.clear()
        if self._buffered == self._meta_rows:
            self._flush_meta()

    def _flush_meta(self) -> None:
        """Write the buffered meta column pieces."""
        if self._buffered:
            for name, pieces in self._pieces.items():
                self._meta[name].append(np.concatenate(pieces))
                pieces.clear()
        self._buffered = 0
