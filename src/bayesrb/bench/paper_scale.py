"""Training and scoring at paper scale on this machine (e.g. a GPU node), with the real streaming input.

``bayesrb benchmark-model`` times the model on stamps held in memory. This module times what a paper-scale
``train_model`` and ``score_dataset`` job does: a data-set store read from disk in shuffled chunk-aligned blocks
(zarr, Blosc-compressed), the model of ``config/paper.yaml``, early-stopping validation every epoch, and scoring
with the paper's posterior samples. The store is a real data set resized with :mod:`bayesrb.bench.resize`; from the
repository root::

    python -m bayesrb.bench.resize results/dataset/dataset.zarr /tmp/paper.zarr \
        --rows train=270000 val=5000 test=1000 eval=1000
    python -m bayesrb.bench.paper_scale /tmp/paper.zarr --epochs 2

It prints the input pipeline's own speed (reading and batching only), each epoch's training speed and, with
``--score``, the time to score the whole store.
"""

import argparse
import tempfile
import time
from pathlib import Path

import jax
import yaml

from bayesrb.model.data import BatchStream
from bayesrb.model.score import score_store
from bayesrb.model.train import train


def reader_speed(store: str, batch_size: int, batches: int) -> float:
    """Stamps per second of :class:`BatchStream` alone over the ``train`` split (``batches`` batches)."""
    stream = BatchStream(store, "train", batch_size, seed=0)
    start, served = time.perf_counter(), 0
    for n, batch in enumerate(stream.epoch(0)):
        served += len(batch.y)
        if n + 1 == batches:
            break
    return served / (time.perf_counter() - start)


def main() -> None:
    """Command line: ``STORE [--config YAML] [--epochs E] [--samples S] [--score]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a data-set store (see the module docstring)")
    parser.add_argument("--config", type=Path, default=Path("config/paper.yaml"),
                        help="the config whose model and scoring are run (default config/paper.yaml)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to train (default 2)")
    parser.add_argument("--samples", type=int, help="posterior samples when scoring (default: the paper config's)")
    parser.add_argument("--score", action="store_true", help="also score every row of the store")
    args = parser.parse_args()
    paper = yaml.safe_load(args.config.read_text())
    model = paper["model"] | {"epochs": args.epochs, "patience": args.epochs}
    samples = args.samples or paper["scoring"]["n_samples"]
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}); model {model}", flush=True)
    print(f"input pipeline alone: {reader_speed(args.store, model['batch_size'], 400):.0f} stamps/s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        result = train(args.store, Path(work) / "training", model)
        for entry in result.history:
            print(f"epoch {entry['epoch']}: {entry['stamps_per_second']:.0f} stamps/s training, "
                  f"{entry['seconds']:.1f} s with validation", flush=True)
        if args.score:
            start = time.perf_counter()
            n = score_store(result.model_dir, args.store, Path(work) / "scores.parquet", n_samples=samples)
            seconds = time.perf_counter() - start
            print(f"scoring: {n} candidates x {samples} samples in {seconds:.1f} s "
                  f"({n / seconds:.0f} candidates/s)", flush=True)


if __name__ == "__main__":
    main()
