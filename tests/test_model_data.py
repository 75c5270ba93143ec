"""Tests for bayesrb.model.data: streamed, shuffled mini-batches and the in-order scoring reader."""

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zarr
from astropy.table import Table

from bayesrb.dataset import VisitSource, build_dataset
from bayesrb.errors import BadInputError
from bayesrb.model.data import (
    READ_THREADS,
    BatchStream,
    StampSource,
    _prefetched,
    check_compatible,
    class_weights,
    iter_stamps,
)
from bayesrb.stamps import CHANNELS_BASE, SHARD_META_COLUMNS, write_shard

CHANNELS = ("science", "template", "difference")
SIZE = 6
N_ROWS = 1000
#: Deliberately not aligned with the chunks of 16 rows.
SPLITS = {"train": [0, 613], "val": [613, 800], "test": [800, 1000]}


def write_store(path: Path, labels: np.ndarray, *, split_ranges=SPLITS, chunk=16, shard=64, size=SIZE,
                channels=CHANNELS, stamps=None) -> Path:
    """A data-set-like store (split_ranges given) or shard-like store; pixel values equal the row number."""
    n = len(labels)
    if stamps is None:
        stamps = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, size, size, len(channels)))
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs.update(channels=list(channels), stamp_size=size, n_stamps=n)
    if split_ranges is not None:
        group.attrs["split_ranges"] = split_ranges
    array = group.create_array("stamps", shape=stamps.shape, dtype=np.float32, chunks=(chunk, *stamps.shape[1:]),
                               shards=(shard, *stamps.shape[1:]))
    array[...] = stamps
    meta = group.create_group("meta")
    meta.create_array("label", shape=(n,), dtype=np.int8, chunks=(n,))[...] = labels
    meta.create_array("candidate_id", shape=(n,), dtype=str, chunks=(n,))[...] = np.array([f"c{i}" for i in range(n)])
    return path


def quarter_real(n: int) -> np.ndarray:
    return (np.arange(n) % 4 == 0).astype(np.int8)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_store(tmp_path_factory.mktemp("store") / "data.zarr", quarter_real(N_ROWS))


@pytest.mark.parametrize(("split", "batch_size", "buffer_chunks"),
                         [("train", 50, 4), ("train", 300, 1), ("val", 7, 3), ("test", 64, 100)])
def test_epoch_yields_every_row_of_the_split_once(store, split, batch_size, buffer_chunks):
    stream = BatchStream(store, split, batch_size, seed=1, buffer_chunks=buffer_chunks)
    batches = list(stream.epoch(0))
    start, stop = SPLITS[split]
    index = np.concatenate([b.index for b in batches])

    assert np.array_equal(np.sort(index), np.arange(start, stop))  # each row once, no other split's rows
    n_full, rest = divmod(stop - start, batch_size)
    assert [len(b.index) for b in batches] == [batch_size] * n_full + ([rest] if rest else [])
    assert len(stream) == len(batches) and stream.n_rows == stop - start
    for b in batches:
        assert b.x.dtype == np.float32 and b.x.shape == (len(b.index), SIZE, SIZE, len(CHANNELS))
        assert b.y.dtype == np.int8 and b.weight.dtype == np.float32 and b.index.dtype == np.int64
        assert np.array_equal(b.x[:, 2, 3, 1], b.index)  # the stamp of each row is that row's
        assert np.array_equal(b.y, quarter_real(N_ROWS)[b.index])


def test_drop_last_gives_only_full_batches(store):
    stream = BatchStream(store, "train", 50, seed=1, buffer_chunks=4, drop_last=True)
    batches = list(stream.epoch(3))
    assert len(stream) == len(batches) == 12
    assert {len(b.index) for b in batches} == {50}
    assert len(np.unique(np.concatenate([b.index for b in batches]))) == 600


def test_order_depends_only_on_seed_and_epoch(store, monkeypatch):
    def order(seed, epoch):
        return np.concatenate([b.index for b in BatchStream(store, "train", 32, seed=seed, buffer_chunks=4)
                               .epoch(epoch)])

    first = order(5, 0)
    assert np.array_equal(first, order(5, 0))
    assert np.array_equal(first, np.concatenate([b.index for b in BatchStream(store, "train", 32, seed=5,
                                                                               buffer_chunks=4)]))
    assert not np.array_equal(first, order(5, 1))
    assert not np.array_equal(first, order(6, 0))
    # shuffled across chunks and rows: the first batch of 32 draws from 4 chunks of 16 at random, so it spans
    # more than two chunks, and consecutive rows are rarely neighbours in the store
    assert len(np.unique(first[:32] // 16)) > 2
    assert np.mean(np.abs(np.diff(first)) == 1) < 0.2

    real_read = StampSource.read_stamps

    def slow_read(self, rows, channel_index=None):  # random delays in the reader thread must not change anything
        time.sleep(np.random.default_rng().uniform(0, 0.003))
        return real_read(self, rows, channel_index)

    monkeypatch.setattr(StampSource, "read_stamps", slow_read)
    assert np.array_equal(first, order(5, 0))


def test_without_shuffle_rows_come_in_store_order(store):
    batches = list(BatchStream(store, "val", 40, seed=1, shuffle=False, buffer_chunks=2).epoch(7))
    assert np.array_equal(np.concatenate([b.index for b in batches]), np.arange(613, 800))


def test_transform_runs_once_per_stamp_when_the_split_fits_the_cache(store):
    transformed = []

    def doubled(stamps):
        transformed.append(len(stamps))
        return stamps * 2

    cached = BatchStream(store, "train", 50, seed=1, buffer_chunks=4, transform=doubled)
    streamed = BatchStream(store, "train", 50, seed=1, buffer_chunks=4, transform=doubled, cache_bytes=0)
    assert cached.caches and not streamed.caches
    for epoch in range(3):
        batches = list(cached.epoch(epoch))
        for batch, expected in zip(batches, streamed.epoch(epoch), strict=True):
            assert np.array_equal(batch.index, expected.index) and np.array_equal(batch.x, expected.x)
            assert np.array_equal(batch.x[:, 2, 3, 1], 2 * batch.index)
            batch.x[...] = -1  # batches are copies: the cache stays intact
    assert sum(transformed) == 613 + 3 * 613  # the cached stream transformed each row once, the other every epoch


def test_the_cache_holds_a_split_only_if_its_served_channels_fit(store):
    split_bytes = 613 * SIZE * SIZE * 4  # one channel
    assert BatchStream(store, "train", 50, seed=1, channels=("template",), cache_bytes=split_bytes).caches
    assert not BatchStream(store, "train", 50, seed=1, channels=("template",), cache_bytes=split_bytes - 1).caches
    assert not BatchStream(store, "train", 50, seed=1, cache_bytes=split_bytes).caches  # three channels


def test_class_weights_are_balanced(store):
    labels = quarter_real(N_ROWS)[0:613]
    n1 = int(labels.sum())
    weights = class_weights(store, "train")
    assert weights == pytest.approx({0: 613 / (2 * (613 - n1)), 1: 613 / (2 * n1)}, rel=1e-12)

    batches = list(BatchStream(store, "train", 64, seed=2, buffer_chunks=4).epoch(0))
    y, w = np.concatenate([b.y for b in batches]), np.concatenate([b.weight for b in batches])
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum(), rel=1e-6)
    assert w.sum() == pytest.approx(613, rel=1e-6)
    unweighted = list(BatchStream(store, "train", 64, seed=2, class_weighting=False).epoch(0))
    assert np.all(np.concatenate([b.weight for b in unweighted]) == 1.0)


def test_unlabelled_row_in_a_training_split_is_rejected(tmp_path):
    labels = quarter_real(N_ROWS)
    labels[321] = -1
    path = write_store(tmp_path / "data.zarr", labels)
    with pytest.raises(BadInputError, match=r"data\.zarr.*split 'train' has 1 row.*rows \[321\]"):
        BatchStream(path, "train", 32, seed=1)
    assert len(BatchStream(path, "val", 32, seed=1)) == 6  # other splits are fine


def test_one_class_split_has_no_balanced_weights(tmp_path):
    path = write_store(tmp_path / "data.zarr", np.zeros(N_ROWS, np.int8))
    with pytest.raises(BadInputError, match="no rows of class 1"):
        class_weights(path, "val")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_stamp_names_the_store_and_row(tmp_path, bad_value):
    stamps = np.zeros((N_ROWS, SIZE, SIZE, len(CHANNELS)), np.float32)
    stamps[437, 1, 2, 0] = bad_value
    path = write_store(tmp_path / "data.zarr", quarter_real(N_ROWS), stamps=stamps)
    with pytest.raises(BadInputError, match=r"data\.zarr: stamp row 437 holds NaN or inf"):
        list(BatchStream(path, "train", 32, seed=1).epoch(0))
    with pytest.raises(BadInputError, match="stamp row 437"):
        list(iter_stamps(path, 100))


def test_check_compatible_says_expected_and_found(store):
    assert check_compatible(store, CHANNELS, SIZE).stamp_shape == (SIZE, SIZE)
    assert check_compatible(StampSource(store), 3, SIZE).channels == CHANNELS
    assert check_compatible(store, ("difference", "science"), SIZE).channels == CHANNELS  # a subset, any order
    with pytest.raises(BadInputError, match=r"data\.zarr: the model expects channels \['science', 'template', "
                                            r"'difference', 'subframe_ptp'\] but the store has channels \['science', "
                                            r"'template', 'difference'\]"):
        check_compatible(store, CHANNELS_BASE, SIZE)
    with pytest.raises(BadInputError, match="expects 4 channel.* has 3 channel"):
        check_compatible(store, 4, SIZE)
    with pytest.raises(BadInputError, match=r"expects 55x55 stamps but the store has 6x6"):
        check_compatible(store, CHANNELS, 55)


def test_stream_serves_kept_rows_and_chosen_channels_only(tmp_path):
    labels = quarter_real(N_ROWS)
    pixel = np.arange(N_ROWS, dtype=np.float32)[:, None, None, None] * 10 + np.arange(3, dtype=np.float32)
    path = write_store(tmp_path / "data.zarr", labels, stamps=np.broadcast_to(pixel, (N_ROWS, SIZE, SIZE, 3)))
    start, stop = SPLITS["train"]
    keep = np.arange(start, stop) % 3 != 0
    stream = BatchStream(path, "train", 50, seed=1, buffer_chunks=4, keep=keep,
                         channels=("difference", "science"))
    batches = list(stream.epoch(0))
    index = np.concatenate([b.index for b in batches])
    x = np.concatenate([b.x for b in batches])

    assert np.array_equal(np.sort(index), np.arange(start, stop)[keep]) and stream.n_rows == keep.sum()
    assert np.array_equal(x[:, 0, 0, :], np.stack([index * 10 + 2, index * 10], axis=1))  # difference, science
    n_real = labels[start:stop][keep].sum()
    assert stream.class_weights[1] == pytest.approx(keep.sum() / (2 * n_real))
    assert np.array_equal(np.concatenate([ids for _, ids in iter_stamps(path, 64, ("template",))]),
                          np.array([f"c{i}" for i in range(N_ROWS)]))
    with pytest.raises(BadInputError, match=r"has no channel\(s\) \['subframe_ptp'\]"):
        BatchStream(path, "train", 8, seed=0, channels=("science", "subframe_ptp"))
    with pytest.raises(BadInputError, match="no rows left after the selection"):
        BatchStream(path, "train", 8, seed=0, keep=np.zeros(stop - start, bool))
    with pytest.raises(ValueError, match="one entry per row"):
        BatchStream(path, "train", 8, seed=0, keep=np.ones(3, bool))


def test_missing_or_foreign_store_is_rejected(tmp_path, store):
    with pytest.raises(BadInputError, match="does not exist"):
        StampSource(tmp_path / "absent.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="not a zarr v3 group"):
        BatchStream(tmp_path / "empty", "train", 8, seed=0)
    zarr.open_group(tmp_path / "bare.zarr", mode="w", zarr_format=3)
    with pytest.raises(BadInputError, match="no 4-D 'stamps'"):
        iter_stamps(tmp_path / "bare.zarr", 8).__next__()
    with pytest.raises(BadInputError, match=r"no split 'eval'; the data set has \['train', 'val', 'test'\]"):
        BatchStream(store, "eval", 8, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(store, "train", 0, seed=0)


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A real per-visit shard of 300 candidates (one chunk of 256 and one of 44), unlabelled."""
    n = 300
    rng = np.random.default_rng(4)
    stamps = rng.normal(size=(n, SIZE, SIZE, len(CHANNELS_BASE))).astype(np.float32)
    meta = {name: np.zeros(n, dtype) for name, dtype in SHARD_META_COLUMNS.items() if dtype is not str}
    meta |= {"candidate_id": np.array([f"v1-{i:04d}" for i in range(n)]), "visit": np.full(n, "v1"),
             "kind": np.full(n, ""), "label": np.full(n, -1, np.int8)}
    path = tmp_path_factory.mktemp("shard") / "v1.zarr"
    attrs = {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": SIZE, "seed": 1, "config_hash": "h"}
    write_shard(path, stamps, CHANNELS_BASE, meta, attrs)
    return path, stamps, meta["candidate_id"]


def test_iter_stamps_covers_a_shard_in_order(shard):
    path, stamps, ids = shard
    batches = list(iter_stamps(path, 64))
    assert [len(x) for x, _ in batches] == [64, 64, 64, 64, 44]
    assert all(x.dtype == np.float32 and i.dtype.kind == "U" for x, i in batches)
    assert np.array_equal(np.concatenate([x for x, _ in batches]), stamps)
    assert np.array_equal(np.concatenate([i for _, i in batches]), ids)


def test_iter_stamps_batches_across_stores(shard):
    """Several small shards give full batches: only the last is short, rows in store order."""
    path, stamps, ids = shard
    batches = list(iter_stamps([path, path, path], 256))
    assert [len(x) for x, _ in batches] == [256, 256, 256, 132]
    assert np.array_equal(np.concatenate([x for x, _ in batches]), np.concatenate([stamps] * 3))
    assert np.array_equal(np.concatenate([i for _, i in batches]), np.concatenate([ids] * 3))


def test_a_shard_has_no_splits_and_no_training_labels(shard):
    path = shard[0]
    assert not StampSource(path).is_dataset and StampSource(path).rows(None) == slice(0, 300)
    with pytest.raises(BadInputError, match="a stamp shard has no splits"):
        BatchStream(path, "train", 8, seed=0)
    with pytest.raises(BadInputError, match=r"split None has 300 row\(s\) with a label other than 0 or 1"):
        BatchStream(path, None, 8, seed=0)


def test_streams_a_store_built_by_build_dataset(tmp_path):
    """The real data-set writer (sharded stamps, inner chunks of 4): each split streams its own rows."""
    sources, by_id = [], {}
    rng = np.random.default_rng(9)
    for f in range(5):
        n = 20 + 3 * f
        stamps = rng.normal(size=(n, SIZE, SIZE, len(CHANNELS_BASE))).astype(np.float32)
        ids = np.array([f"F{f}-{i:03d}" for i in range(n)])
        meta = {name: np.zeros(n, dtype) for name, dtype in SHARD_META_COLUMNS.items() if dtype is not str}
        meta |= {"candidate_id": ids, "visit": np.full(n, f"F{f}v0"), "kind": np.full(n, ""),
                 "label": np.full(n, -1, np.int8)}
        attrs = {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": SIZE, "seed": 1, "config_hash": "h"}
        write_shard(tmp_path / f"F{f}.zarr", stamps, CHANNELS_BASE, meta, attrs)
        Table({"candidate_id": ids, "label": (np.arange(n) % 3 == 0).astype(np.int8),
               "kind": np.full(n, "mp")}).write(tmp_path / f"F{f}.ecsv", format="ascii.ecsv")
        sources.append(VisitSource(f"F{f}v0", f"F{f}", tmp_path / f"F{f}.zarr", tmp_path / f"F{f}.ecsv"))
        by_id.update(zip(ids, stamps, strict=True))
    path = tmp_path / "data.zarr"
    summary = build_dataset(path, sources, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=3,
                            chunk_stamps=4, shard_stamps=16)
    source = StampSource(path)
    ids = source.column("candidate_id")
    assert source.is_dataset and source.chunk_rows == 4
    for split in ("train", "val", "test"):
        start, stop = summary["split_ranges"][split]
        batches = list(BatchStream(path, split, 5, seed=0, buffer_chunks=2).epoch(1))
        index = np.concatenate([b.index for b in batches])
        assert np.array_equal(np.sort(index), np.arange(start, stop)), split
        for b in batches:
            assert np.array_equal(b.x, np.stack([by_id[cid] for cid in ids[b.index]]))


def test_streaming_memory_is_bounded_by_the_buffers(tmp_path):
    """12,000 stamps of 16x16x2 (2 KiB each, 23.4 MiB in all) in chunks of 64; a buffer of 4 chunks is 512 KiB.

    Bound on the traced peak of an epoch, with ``R = READ_THREADS``: ``R + 1`` buffers (the one served and those
    being read), 0.5 MiB of zarr's own buffers per read in flight (measured 0.37), four batches of 64 (0.5 MiB: the
    batch held by the caller, the pieces of the next and its concatenation) and 0.25 MiB of bookkeeping: 3.25 MiB
    for R = 2 (measured 2.7-2.9 MiB), 5.25 MiB for R = 4, under 30 % of the store. The epoch traced is the second,
    so that one-time set-up (zarr, the thread pools, the interpreter's string table: up to 1.9 MiB) is not counted.
    """
    n, size, batch_size, buffer_chunks = 12000, 16, 64, 4
    stamps = np.random.default_rng(0).normal(size=(n, size, size, 2)).astype(np.float32)
    path = write_store(tmp_path / "big.zarr", quarter_real(n), split_ranges={"train": [0, n]}, chunk=64, shard=512,
                       size=size, channels=("science", "difference"), stamps=stamps)
    stamp_bytes, store_bytes = stamps[0].nbytes, stamps.nbytes
    del stamps
    stream = BatchStream(path, "train", batch_size, seed=0, buffer_chunks=buffer_chunks)
    assert sum(len(b.index) for b in stream.epoch(0)) == n
    tracemalloc.start()
    try:
        seen = sum(len(b.index) for b in stream.epoch(1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == n
    buffer_bytes = buffer_chunks * 64 * stamp_bytes
    bound = ((READ_THREADS + 1) * buffer_bytes + READ_THREADS * 0.5 * 2**20 + 4 * batch_size * stamp_bytes
             + 0.25 * 2**20)
    assert peak < bound < 0.3 * store_bytes


def test_prefetched_reads_ahead_in_parallel_and_yields_in_job_order():
    # Later jobs finish first; the results still come in job order, and never more than threads + 1 are started
    # before the caller has taken the first.
    started = []

    def read(job):
        started.append(job)
        time.sleep(0.02 * (5 - job % 5))
        return job * job

    results = _prefetched(read, range(12), threads=3)
    first = next(results)
    assert first == 0 and len(started) <= 4
    assert [first, *results] == [j * j for j in range(12)]
