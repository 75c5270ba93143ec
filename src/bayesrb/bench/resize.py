"""A copy of a data-set store with a chosen number of rows per split, for measuring training at another scale.

The rows of each split are taken in order and repeated cyclically until the split has the rows asked for (or cut
short), so the copy is a valid data set (contiguous splits, the same columns, chunks, shards and codecs) whose
speed of streaming and training is that of a real one of that size; its class balance and contents are those of
the source. It is a benchmark input, not a data set to evaluate on::

    python -m bayesrb.bench.resize results/dataset/dataset.zarr /tmp/big.zarr --rows train=270000 val=4000

Splits not named keep their size.
"""

import argparse
import time

import numpy as np
import zarr

from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError
from bayesrb.stamps.shard import STAMP_CODECS, write_meta_columns
from bayesrb.stamps.store import open_store


def _cyclic_rows(start: int, stop: int, n: int) -> np.ndarray:
    """``n`` row numbers of ``[start, stop)``, repeating from ``start`` when the split runs out."""
    return start + np.arange(n) % (stop - start)


def _row_plan(ranges: dict[str, list[int]], sizes: dict[str, int]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Source rows of the copy, in order, and the copy's split ranges."""
    rows, new_ranges, start = [], {}, 0
    for split, (lo, hi) in ranges.items():
        n = sizes.get(split, hi - lo)
        rows.append(_cyclic_rows(lo, hi, n))
        new_ranges[split] = [start, start + n]
        start += n
    return np.concatenate(rows), new_ranges


def resize(source: str, destination: str, sizes: dict[str, int], block: int = 8192) -> None:
    """Write ``destination``: ``source`` with ``sizes[split]`` rows in each split named (see the module docstring).

    Parameters
    ----------
    source, destination : str
        Data-set stores (zarr v3 groups); the destination is written atomically.
    sizes : dict of str to int
        Rows wanted per split.
    block : int
        Rows copied at a time (bounded memory).

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``source`` is not a stamp store, or has none of a split named in ``sizes``.
    """
    src = open_store(source, "data-set store")
    unknown = set(sizes) - set(src.attrs["split_ranges"])
    if unknown:
        raise BadInputError(source, f"no split(s) {sorted(unknown)}; it has {list(src.attrs['split_ranges'])}")
    rows, ranges = _row_plan(src.attrs["split_ranges"], sizes)
    stamps = src.stamps
    with atomic_path(destination) as tmp:
        out = zarr.open_group(tmp, mode="w", zarr_format=3)
        out.attrs.update(src.attrs | {"n_stamps": len(rows), "split_ranges": ranges})
        copy = out.create_array("stamps", shape=(len(rows), *stamps.shape[1:]), dtype=stamps.dtype,
                                chunks=stamps.chunks, shards=stamps.shards, compressors=STAMP_CODECS, fill_value=0.0)
        copy.attrs.update(dict(stamps.attrs))
        block = max(block // stamps.shards[0], 1) * stamps.shards[0]
        for start in range(0, len(rows), block):
            wanted = rows[start:start + block]
            distinct = np.unique(wanted)
            copy[start:start + len(wanted)] = stamps.get_orthogonal_selection((distinct,))[
                np.searchsorted(distinct, wanted)]
        write_meta_columns(out.create_group("meta"), {name: column[rows] for name, column in src.read_meta().items()})


def main() -> None:
    """Command line: ``SOURCE DESTINATION --rows split=N ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--rows", nargs="+", required=True, metavar="SPLIT=N", help="rows wanted per split")
    args = parser.parse_args()
    sizes = {split: int(n) for split, n in (item.split("=", 1) for item in args.rows)}
    start = time.perf_counter()
    resize(args.source, args.destination, sizes)
    print(f"{args.destination}: {sizes} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
