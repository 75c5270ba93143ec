"""The benchmark tools of ``bayesrb.bench`` that run here: ``resize`` makes a valid data set of another size."""

import numpy as np
import pytest
from test_model_data import quarter_real, write_store

from bayesrb.bench.resize import resize
from bayesrb.errors import BadInputError
from bayesrb.model.data import BatchStream, StampSource


def test_resized_dataset_repeats_each_split_cyclically(tmp_path):
    n = 200
    stamps = np.random.default_rng(0).normal(size=(n, 8, 8, 2)).astype(np.float32)
    source = write_store(tmp_path / "small.zarr", quarter_real(n), split_ranges={"train": [0, 150], "val": [150, 200]},
                         size=8, channels=("science", "difference"), stamps=stamps)
    resize(str(source), str(tmp_path / "big.zarr"), {"train": 400, "val": 30}, block=128)
    big = StampSource(tmp_path / "big.zarr")
    assert big.attrs["split_ranges"] == {"train": [0, 400], "val": [400, 430]}
    assert big.attrs["n_stamps"] == 430 and big.stamps.chunks == StampSource(source).stamps.chunks
    rows = np.r_[np.arange(400) % 150, 150 + np.arange(30)]
    np.testing.assert_array_equal(big.stamps[:], stamps[rows])
    np.testing.assert_array_equal(big.column("label"), quarter_real(n)[rows])
    assert sum(len(batch.y) for batch in BatchStream(big.path, "train", 32, seed=0).epoch(0)) == 400
    with pytest.raises(BadInputError, match=r"small\.zarr: no split\(s\) \['test'\]; it has \['train', 'val'\]"):
        resize(str(source), str(tmp_path / "other.zarr"), {"test": 10})
    assert not (tmp_path / "other.zarr").exists()
