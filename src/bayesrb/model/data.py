"""Streaming input from zarr stamp stores: shuffled training mini-batches and an in-order scoring reader.

Both kinds of stamp store are read: the consolidated data set (:mod:`bayesrb.dataset.store`, rows grouped into
contiguous splits) and a per-visit stamp shard (:mod:`bayesrb.stamps.shard`, no splits). Each has a ``stamps``
array ``float32`` ``(N, H, W, C)`` indexed ``[stamp, row, col, channel]`` and a ``meta/`` group of 1-D columns,
which :func:`bayesrb.stamps.store.open_store` checks when :class:`StampSource` opens the store.

Stamps are never held in memory as a whole. :class:`BatchStream` reads whole zarr chunks (the inner chunks of a
sharded array) of a split in a seeded random order, gathers ``buffer_chunks`` of them into a buffer, and serves
mini-batches from the buffer in a seeded random row order, while background threads read the next
:data:`READ_THREADS` buffers (their decompression runs in parallel: a GPU consumes stamps faster than one thread
reads them). At most ``READ_THREADS + 1`` buffers are alive at a time, so memory is about ``(READ_THREADS + 1) *
buffer_chunks * chunk_rows * H * W * C * 4`` bytes plus two or three batches, whatever the size of the store. Only
the ``label`` (training) or ``candidate_id`` (scoring) meta column is held whole (a few bytes per row). The sequence
of batches depends only on ``(seed, epoch)``, never on thread timing.

A :class:`BatchStream` can also transform each block of stamps as it is read, in the reading thread (training
normalises the stamps there: :func:`bayesrb.model.preprocess.normalise_on_host`), and keep the transformed blocks
of a split whose stamps fit in ``cache_bytes`` (:data:`DEFAULT_CACHE_BYTES`), so that every epoch after the first
reads, decompresses and transforms nothing; a larger split is streamed as above.
"""

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from bayesrb.errors import BadInputError
from bayesrb.seeding import rng_for
from bayesrb.stamps.store import open_store

__all__ = ["Batch", "BatchStream", "StampSource", "check_compatible", "class_weights", "iter_stamps"]

#: Default number of zarr chunks in one shuffle buffer.
DEFAULT_BUFFER_CHUNKS: int = 16
#: Buffers read ahead at once, each in its own thread.
READ_THREADS: int = min(4, os.cpu_count() or 1)
#: Largest split (bytes of its stamps as served) whose transformed blocks a :class:`BatchStream` keeps in memory.
DEFAULT_CACHE_BYTES: int = 2 * 2**30
_SHOWN = 5  # rows quoted in a message


class StampSource:
    """A data-set store or a per-visit stamp shard, opened lazily (stamps and meta stay on disk until read).

    Parameters
    ----------
    path : str or os.PathLike
        The zarr v3 group directory.

    Attributes
    ----------
    path : pathlib.Path
        The store directory.
    stamps : zarr.Array
        ``float32`` ``(N, H, W, C)`` indexed ``[stamp, row, col, channel]``.
    attrs : dict
        The group attributes.
    channels : tuple of str
        Channel names in the order of the last axis of ``stamps``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``path`` is not a stamp store (:func:`bayesrb.stamps.store.open_store`).
    """

    def __init__(self, path: str | os.PathLike):
        self._store = open_store(path, "stamp store")
        self.path, self.stamps, self.attrs = self._store.path, self._store.stamps, self._store.attrs
        self.channels = self._store.channels

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    @property
    def is_dataset(self) -> bool:
        """Whether the store is a data set (has splits) rather than a per-visit shard."""
        return "split_ranges" in self.attrs

    @property
    def stamp_shape(self) -> tuple[int, int]:
        """``(H, W)`` = (rows, columns) of one stamp."""
        return int(self.stamps.shape[1]), int(self.stamps.shape[2])

    @property
    def chunk_rows(self) -> int:
        """Stamps per zarr chunk (the inner chunk of a sharded array): the unit of a read."""
        return int(self.stamps.chunks[0])

    def rows(self, split: str | None) -> slice:
        """Return the contiguous rows of a split.

        Parameters
        ----------
        split : str or None
            A split of a data set (``train``, ``val``, ...), or None for every row of the store.

        Returns
        -------
        slice
            ``slice(start, stop)`` with ``0 <= start <= stop <= N``.

        Raises
        ------
        bayesrb.errors.BadInputError
            If the store is a shard and ``split`` is not None, or the data set has no such split or a malformed
            range.
        """
        if split is None:
            return slice(0, len(self))
        if not self.is_dataset:
            raise BadInputError(self.path, f"a stamp shard has no splits, but split {split!r} was asked for")
        ranges = self.attrs["split_ranges"]
        if split not in ranges:
            raise BadInputError(self.path, f"no split {split!r}; the data set has {list(ranges)}")
        start, stop = ranges[split]
        if not 0 <= start <= stop <= len(self):
            raise BadInputError(self.path, f"split {split!r} range [{start}, {stop}) is outside the {len(self)} rows")
        return slice(start, stop)

    def column(self, name: str, rows: slice | None = None) -> np.ndarray:
        """Read one meta column (text as a NumPy ``str`` array).

        Parameters
        ----------
        name : str
            Column name, e.g. ``label`` or ``candidate_id``.
        rows : slice, optional
            Rows to return (all by default). The whole column is read either way (columns are one chunk).

        Returns
        -------
        numpy.ndarray
            1-D.

        Raises
        ------
        bayesrb.errors.BadInputError
            If the column is missing or damaged.
        """
        return self._store.column(name)[rows if rows is not None else slice(None)]

    def channel_index(self, channels: Sequence[str] | None) -> np.ndarray | None:
        """Positions of named channels on the last axis of :attr:`stamps`.

        Parameters
        ----------
        channels : sequence of str or None
            Channel names in the wanted order; None: every channel as stored.

        Returns
        -------
        numpy.ndarray or None
            ``int`` positions, or None for every channel as stored.

        Raises
        ------
        bayesrb.errors.BadInputError
            Naming the store, the missing channels and the channels it has.
        """
        if channels is None or tuple(channels) == self.channels:
            return None
        missing = [name for name in channels if name not in self.channels]
        if missing:
            raise BadInputError(self.path, f"has no channel(s) {missing}; it has channels {list(self.channels)}")
        return np.array([self.channels.index(name) for name in channels])

    def read_stamps(self, rows: slice, channel_index: np.ndarray | None = None) -> np.ndarray:
        """Read a block of stamps and check that every pixel is finite.

        Parameters
        ----------
        rows : slice
            Contiguous rows (best chunk-aligned).
        channel_index : numpy.ndarray, optional
            Channels to keep, in order (:meth:`channel_index`); all by default.

        Returns
        -------
        numpy.ndarray
            ``float32`` ``(n, H, W, C)``.

        Raises
        ------
        bayesrb.errors.BadInputError
            Naming the store and the first row whose stamp holds NaN or inf.
        """
        stamps = self._store.read_stamps(rows)
        if channel_index is not None:
            stamps = stamps[..., channel_index]
        bad = np.flatnonzero(~np.isfinite(stamps).all(axis=(1, 2, 3)))
        if len(bad):
            rows_bad = (rows.start + bad[:_SHOWN]).tolist()
            raise BadInputError(self.path, f"stamp row {rows_bad[0]} holds NaN or inf pixels "
                                           f"({len(bad)} bad row(s) in rows [{rows.start}, {rows.stop}): {rows_bad})")
        return stamps

    def chunk_blocks(self, rows: slice) -> list[slice]:
        """Split a range of rows at the chunk boundaries of ``stamps``.

        Parameters
        ----------
        rows : slice
            ``slice(start, stop)``.

        Returns
        -------
        list of slice
            Consecutive, non-empty blocks covering ``rows``, each within one chunk.
        """
        size = self.chunk_rows
        edges = [rows.start, *range((rows.start // size + 1) * size, rows.stop, size), rows.stop]
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def check_compatible(source: StampSource | str | os.PathLike, channels: Sequence[str] | int,
                     stamp_size: int) -> StampSource:
    """Check that a store holds the stamps a model expects.

    Parameters
    ----------
    source : StampSource or str or os.PathLike
        The store (opened if a path).
    channels : sequence of str or int
        The channel names the model reads (the store must hold each; it may hold more, in any order), or the
        number of channels the store must have.
    stamp_size : int
        The expected stamp side in pixels (stamps are ``stamp_size`` x ``stamp_size``).

    Returns
    -------
    StampSource
        The opened store.

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the store, with the expected and the found channels or stamp size.
    """
    source = _as_source(source)
    if isinstance(channels, int):
        has_them = channels == len(source.channels)
        expected, found = f"{channels} channel(s)", f"{len(source.channels)} channel(s)"
    else:
        has_them = set(channels) <= set(source.channels)
        expected, found = f"channels {list(channels)}", f"channels {list(source.channels)}"
    if not has_them:
        raise BadInputError(source.path, f"the model expects {expected} but the store has {found}")
    if source.stamp_shape != (stamp_size, stamp_size):
        raise BadInputError(source.path, f"the model expects {stamp_size}x{stamp_size} stamps but the store has "
                                         f"{source.stamp_shape[0]}x{source.stamp_shape[1]}")
    return source


def class_weights(store: StampSource | str | os.PathLike, split: str | None) -> dict[int, float]:
    """Return balanced class weights of a split: ``n / (2 n_c)`` for class ``c`` (0 bogus, 1 real).

    Parameters
    ----------
    store : StampSource or str or os.PathLike
        The store (opened if a path).
    split : str or None
        The split (None: every row).

    Returns
    -------
    dict of int to float
        ``{0: w0, 1: w1}``; ``w0 n_0 = w1 n_1 = n / 2``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If a label of the split is not 0 or 1, or a class has no rows.
    """
    source = _as_source(store)
    return _balanced(source, split, _binary_labels(source, split))


class Batch(NamedTuple):
    """One mini-batch (a JAX pytree, being a NamedTuple).

    Attributes
    ----------
    x : numpy.ndarray
        ``float32`` ``(B, H, W, C)`` stamps, ``[stamp, row, col, channel]``.
    y : numpy.ndarray
        ``int8`` ``(B,)`` labels, 1 real, 0 bogus.
    weight : numpy.ndarray
        ``float32`` ``(B,)`` class weight of each row (all ones when class weighting is off).
    index : numpy.ndarray
        ``int64`` ``(B,)`` row of each stamp in the store.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    index: np.ndarray


class BatchStream:
    """Shuffled mini-batches of one split, streamed from a store with bounded memory.

    Each epoch visits the chunk-aligned blocks of the split in a random order, ``buffer_chunks`` blocks to a
    buffer, and serves the rows of each buffer in a random order; rows that do not fill a batch at the end of a
    buffer start the next batch. Every row appears exactly once per epoch (less the short last batch when
    ``drop_last``). A background thread reads the next buffer while the caller consumes the current one.

    Parameters
    ----------
    path : str or os.PathLike
        A data-set store or a per-visit shard with labels.
    split : str or None
        The split to stream (None: every row; the only choice for a shard).
    batch_size : int
        Rows per batch.
    seed : int
        Seed of the order; the order of epoch ``e`` depends only on ``(seed, e)``.
    shuffle : bool
        Whether to shuffle; if False, rows come in store order.
    buffer_chunks : int
        Zarr chunks per shuffle buffer.
    drop_last : bool
        Whether to drop the last batch of an epoch if it is short.
    class_weighting : bool
        Whether :attr:`Batch.weight` holds the balanced class weights (:func:`class_weights`) or ones.
    channels : sequence of str, optional
        Channels to serve, in this order (:meth:`StampSource.channel_index`); all as stored by default.
    keep : numpy.ndarray, optional
        ``bool`` per row of the split: only rows marked True are served and counted (class weights included);
        all rows by default. The batch order over the kept rows still depends only on ``(seed, epoch)``.
    transform : callable, optional
        Applied to each block of stamps (``float32`` ``(n, H, W, C)``, after the channel selection) in the reading
        thread; must return an array of the same shape and treat every stamp on its own (blocks of any size).
    cache_bytes : int
        If the split's stamps (the served channels) take at most this many bytes, the transformed blocks are kept
        after the first epoch reads them and later epochs serve them from memory; 0 never keeps any.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the store cannot be opened, lacks a channel, the split is missing or empty (after ``keep``), a label
        is not 0 or 1, or (with class weighting) a class has no rows. NaN or inf in a stamp is reported while
        streaming, naming the row.
    ValueError
        If ``batch_size`` or ``buffer_chunks`` is below 1, or ``keep`` does not have one entry per split row.

    Attributes
    ----------
    source : StampSource
        The opened store.
    rows : slice
        The split's rows in the store.
    class_weights : dict of int to float
        The weight of label 0 and of label 1 in :attr:`Batch.weight`.
    """

    def __init__(self, path: str | os.PathLike, split: str | None, batch_size: int, *, seed: int,
                 shuffle: bool = True, buffer_chunks: int = DEFAULT_BUFFER_CHUNKS, drop_last: bool = False,
                 class_weighting: bool = True, channels: Sequence[str] | None = None,
                 keep: np.ndarray | None = None, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if batch_size < 1 or buffer_chunks < 1:
            raise ValueError(f"batch_size ({batch_size}) and buffer_chunks ({buffer_chunks}) must be at least 1")
        self.source = StampSource(path)
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.shuffle, self.buffer_chunks, self.drop_last = shuffle, buffer_chunks, drop_last
        self.rows = self.source.rows(split)
        self._channel_index = self.source.channel_index(channels)
        self._keep = _checked_keep(keep, self.rows)
        if not self._keep.any():
            raise BadInputError(self.source.path, f"split {split!r} has no rows" + ("" if keep is None else
                                                                                     " left after the selection"))
        self._labels = _binary_labels(self.source, split)
        kept_labels = self._labels[self._keep]
        weights = _balanced(self.source, split, kept_labels) if class_weighting else {0: 1.0, 1: 1.0}
        self.class_weights = weights
        self._weight_of_label = np.array([weights[0], weights[1]], dtype=np.float32)
        self._transform = transform or (lambda stamps: stamps)
        self._cache: dict[int, np.ndarray] | None = {} if self._split_bytes() <= cache_bytes else None

    @property
    def n_rows(self) -> int:
        """Rows of the split that are served (all, or those kept)."""
        return int(self._keep.sum())

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n_rows, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Batch]:
        """Iterate over epoch 0 (see :meth:`epoch`)."""
        return self.epoch(0)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Iterate over the batches of one epoch.

        Parameters
        ----------
        epoch : int
            Non-negative epoch number; with the seed it fixes the order.

        Yields
        ------
        Batch
            Fresh arrays (not views of the buffer), ``B = batch_size`` except perhaps the last.

        Raises
        ------
        bayesrb.errors.BadInputError
            Naming the store and row when a stamp holds NaN or inf.
        """
        rng = rng_for(self.seed, "batch_stream", epoch)
        blocks = self.source.chunk_blocks(self.rows)
        if self.shuffle:
            blocks = [blocks[i] for i in rng.permutation(len(blocks))]
        groups = [blocks[i:i + self.buffer_chunks] for i in range(0, len(blocks), self.buffer_chunks)]
        buffers = _prefetched(self._read_buffer, self._with_order(groups, rng))
        for x, index in _rebatch(buffers, self.batch_size, self.drop_last):
            y = self._labels[index - self.rows.start]
            yield Batch(x=x, y=y, weight=self._weight_of_label[y], index=index)

    def _with_order(self, groups: list[list[slice]], rng: np.random.Generator):
        """Attach to each buffer's blocks the order in which its rows are served.

        The orders are drawn lazily, buffer after buffer, in the caller's thread, so they do not depend on timing.
        """
        for group in groups:
            positions = np.concatenate([np.arange(b.start, b.stop) for b in group]) - self.rows.start
            kept = np.flatnonzero(self._keep[positions])
            yield group, (kept[rng.permutation(len(kept))] if self.shuffle else kept)

    @property
    def caches(self) -> bool:
        """Whether the transformed blocks are kept in memory after the first epoch."""
        return self._cache is not None

    def _split_bytes(self) -> int:
        """Bytes of the split's stamps as served (the selected channels, float32)."""
        height, width = self.source.stamp_shape
        channels = self.source.stamps.shape[3] if self._channel_index is None else len(self._channel_index)
        return (self.rows.stop - self.rows.start) * height * width * channels * 4

    def _read_buffer(self, job: tuple[list[slice], np.ndarray]):
        """Read the blocks of one buffer; return (stamps, store rows) in read order and the serving order."""
        group, order = job
        return _read_blocks(group, self._read_block), order

    def _read_block(self, block: slice) -> np.ndarray:
        """The transformed stamps of one block, from the cache or read (and then cached, if caching)."""
        stamps = None if self._cache is None else self._cache.get(block.start)
        if stamps is None:
            stamps = self._transform(self.source.read_stamps(block, self._channel_index))
            if self._cache is not None:
                self._cache[block.start] = stamps  # blocks of one epoch are distinct: no two threads write a key
        return stamps


def iter_stamps(paths: str | os.PathLike | Sequence[str | os.PathLike], batch_size: int,
                channels: Sequence[str] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Read every stamp of one or several stores in store order, for scoring, with bounded memory.

    Reads chunk-aligned blocks of at least ``batch_size`` rows (:data:`READ_THREADS` blocks ahead, in background
    threads). Batches run across the boundaries of consecutive stores, so only the last batch is short however
    small the stores (per-visit shards hold about a hundred stamps each).

    Parameters
    ----------
    paths : str or os.PathLike, or a sequence of them
        A data-set store or a per-visit shard, or several, read one after the other.
    batch_size : int
        Rows per batch.
    channels : sequence of str, optional
        Channels to read, in this order; all as stored by default.

    Yields
    ------
    x : numpy.ndarray
        ``float32`` ``(b, H, W, C)``, ``b = batch_size`` except perhaps the last.
    candidate_ids : numpy.ndarray
        ``str`` ``(b,)``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If a store cannot be opened, lacks ``candidate_id`` or a channel, or a stamp holds NaN or inf (naming
        the row).
    ValueError
        If ``batch_size`` is below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    stores = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    buffers = (buffer for path in stores for buffer in _identified_buffers(path, batch_size, channels))
    yield from _rebatch(buffers, batch_size, drop_last=False)


def _identified_buffers(path: str | os.PathLike, batch_size: int, channels: Sequence[str] | None):
    """The read-ahead buffers of one store, each ``((stamps, candidate_ids), None)`` for :func:`_rebatch`."""
    source = StampSource(path)
    channel_index = source.channel_index(channels)
    ids = source.column("candidate_id")
    chunks_per_block = -(-batch_size // source.chunk_rows)
    blocks = source.chunk_blocks(source.rows(None))
    groups = [blocks[i:i + chunks_per_block] for i in range(0, len(blocks), chunks_per_block)]

    def read(group: list[slice]):
        return _read_blocks(group, lambda block: source.read_stamps(block, channel_index)), None

    for (stamps, index), order in _prefetched(read, groups):
        yield (stamps, ids[index]), order


def _as_source(store: StampSource | str | os.PathLike) -> StampSource:
    return store if isinstance(store, StampSource) else StampSource(store)


def _binary_labels(source: StampSource, split: str | None) -> np.ndarray:
    """The ``int8`` labels of a split; BadInputError naming the store if any is not 0 or 1."""
    rows = source.rows(split)
    labels = source.column("label", rows)
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        shown = (rows.start + bad[:_SHOWN]).tolist()
        raise BadInputError(source.path, f"split {split!r} has {len(bad)} row(s) with a label other than 0 or 1 "
                                         f"(e.g. rows {shown}: {labels[bad[:_SHOWN]].tolist()}); training needs "
                                         f"1 (real) or 0 (bogus)")
    return labels.astype(np.int8)


def _balanced(source: StampSource, split: str | None, labels: np.ndarray) -> dict[int, float]:
    """Balanced weights ``n / (2 n_c)`` from 0/1 labels; BadInputError if a class is absent."""
    counts = np.bincount(labels, minlength=2)
    if not counts.all():
        raise BadInputError(source.path, f"split {split!r} has no rows of class {int(np.argmin(counts))} "
                                         f"(counts {counts.tolist()}); class weights need both classes")
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1)}


def _checked_keep(keep: np.ndarray | None, rows: slice) -> np.ndarray:
    """The ``bool`` row selection of a split (all True when None); ValueError if its length is not the split's."""
    n = rows.stop - rows.start
    if keep is None:
        return np.ones(n, dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (n,):
        raise ValueError(f"keep must have one entry per row of the split ({n}), got shape {keep.shape}")
    return keep


def _read_blocks(blocks: list[slice], read_block: Callable[[slice], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Read blocks of rows with ``read_block`` into one array; return it with the store row of each stamp."""
    stamps = np.concatenate([read_block(block) for block in blocks])
    index = np.concatenate([np.arange(block.start, block.stop, dtype=np.int64) for block in blocks])
    return stamps, index


def _prefetched(read: Callable[[Any], Any], jobs: Iterable[Any], threads: int = READ_THREADS) -> Iterator[Any]:
    """Yield ``read(job)`` for each job in order, reading up to ``threads`` later jobs in background threads.

    At most ``threads + 1`` results are alive: the one the caller holds and those being read.
    """
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bayesrb-read") as pool:
        pending: deque[Future] = deque()
        for job in jobs:
            pending.append(pool.submit(read, job))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _rebatch(buffers: Iterable[tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None]], batch_size: int,
             drop_last: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Regroup the rows of consecutive buffers into batches of ``batch_size``.

    Each buffer is ``((stamps, index), order)``: its rows are served in ``order`` (None: as stored). Batches are
    gathered copies, so none keeps a buffer alive.
    """
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    held = 0
    for (stamps, index), order in buffers:
        order = np.arange(len(index)) if order is None else order
        start = 0
        while start < len(order):
            take = order[start:start + batch_size - held]
            pieces.append((stamps[take], index[take]))
            held, start = held + len(take), start + len(take)
            if held == batch_size:
                yield _join(pieces)
                pieces, held = [], 0
        del stamps, index, order  # free this buffer before the next one is read
    if pieces and not drop_last:
        yield _join(pieces)


def _join(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
